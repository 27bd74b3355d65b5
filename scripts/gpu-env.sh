# Sourced by gpu-check.sh and gpu-train.sh on a GPU machine: unpacks the kit's ddn and
# finds the CUDA libraries it links (cublas, cublasLt, curand, nvrtc of CUDA 13), in
# CUDA_LIBS, the system's CUDA, or the NVIDIA wheels of an installed PyTorch.

# unpack_ddn KIT DEST: the kit's xz-compressed build as an executable at DEST.
unpack_ddn() {
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$1/ddn.xz" "$2"
    chmod +x "$2"
}

library_dirs() {
    echo "${CUDA_LIBS:-}" | tr ':' '\n'
    ls -d /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu 2>/dev/null || true
    python3 - <<'PY' 2>/dev/null || true
import glob, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()] + sys.path
for root in roots:
    for d in glob.glob(root + "/nvidia/**/lib", recursive=True) + glob.glob(root + "/torch/lib"):
        print(d)
PY
}

# cuda_library_path: the folders holding the libraries, ':'-joined; each missing one is
# named on stderr, and the status is then 1.
cuda_library_path() {
    local path= missing=0 lib dir
    for lib in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
        dir=$(library_dirs | while read -r d; do [[ -n $d && -e $d/$lib ]] && { echo "$d"; break; }; done)
        if [[ -z $dir ]]; then
            echo "$lib not found (set CUDA_LIBS to its folder)" >&2
            missing=1
        elif [[ ":$path:" != *":$dir:"* ]]; then
            path=${path:+$path:}$dir
        fi
    done
    echo "$path"
    return "$missing"
}
