# Sourced by gpu-check.sh and gpu-train.sh on a GPU machine: unpacks the kit's ddn and
# finds the CUDA libraries it links (cudart, cublas, cublasLt, curand, nvrtc of CUDA 13), in
# CUDA_LIBS, the system's CUDA, or the NVIDIA wheels of an installed PyTorch.

# unpack_ddn KIT DEST: the kit's xz-compressed build as an executable at DEST, with the
# built-in models put back where gpu-kit.sh zeroed them (ddn.models: offset and file,
# relative to the repository root).
unpack_ddn() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    python3 - "$1" "$2" "$root" <<'PY'
import lzma, os, sys
kit, dest, root = sys.argv[1:]
data = bytearray(lzma.open(os.path.join(kit, "ddn.xz")).read())
manifest = os.path.join(kit, "ddn.models")
for line in open(manifest) if os.path.exists(manifest) else []:
    at, model = line.split(maxsplit=1)
    blob = open(os.path.join(root, model.strip()), "rb").read()
    data[int(at):int(at) + len(blob)] = blob
open(dest, "wb").write(data)
PY
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
    find /opt /usr/local /usr/lib -name 'libcublas.so.13' -printf '%h\n' 2>/dev/null || true
}

# cuda_library_path: the folders holding the libraries, ':'-joined; each missing one is
# named on stderr, and the status is then 1.
cuda_library_path() {
    local path= missing=0 lib dir
    for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
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
