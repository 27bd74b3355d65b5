#!/usr/bin/env bash
# Builds ddn with `--features cuda` on a machine with no GPU and no system CUDA.
#
# The CUDA 13.0 toolkit comes from NVIDIA's wheels on the Python package registry,
# unpacked (no root, no pip install) into one tree, `nvidia/cu13/`, with nvcc, the
# headers and the libraries candle links (cublas, cublasLt, curand, nvrtc). The driver
# library, libcuda, ships with the GPU driver and has no wheel: a link stub with its
# soname (`libcuda.so.1`) stands in for it, in `lib/stubs/` as in NVIDIA's own toolkit.
# Its functions all answer CUDA_ERROR_NO_DEVICE, so where no driver is installed the
# build still starts and runs on the CPU; on a GPU machine the real driver is loaded.
#
# The last line printed is the path of `ddn-cuda`, a wrapper that runs this build with
# the toolkit's libraries on the library path (and the stub only where the system has
# no libcuda.so.1).
#
# Environment: DDN_CUDA_HOME (where the toolkit is unpacked; default target/cuda-toolkit),
# CUDA_COMPUTE_CAP (the GPU generation the kernels are built for; default 90, Hopper),
# CARGO_TARGET_DIR (default target/cuda, apart from the CPU build's target/).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
home=${DDN_CUDA_HOME:-$root/target/cuda-toolkit}
target_dir=${CARGO_TARGET_DIR:-$root/target/cuda}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

# The toolkit's parts; 13.0 because its PTX loads on a 13.0 driver (newer nvcc
# releases emit PTX that an older driver refuses). curand has its own numbering.
wheels=(
    "nvidia-cuda-nvcc==13.0.*"
    "nvidia-cuda-crt==13.0.*"
    "nvidia-cuda-runtime==13.0.*"
    "nvidia-nvvm==13.0.*"
    "nvidia-cuda-cccl==13.0.*"
    "nvidia-cuda-nvrtc==13.0.*"
    "nvidia-cublas==13.0.*"
    "nvidia-curand==10.4.0.*"
)
cuda=$home/nvidia/cu13

unpack_toolkit() {
    local downloads=$home/wheels
    mkdir -p "$downloads"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        -d "$downloads" "${wheels[@]}" >&2
    for wheel in "$downloads"/*.whl; do
        python3 -m zipfile -e "$wheel" "$home" >&2
    done
    rm -r "$downloads"
    chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/* 2>/dev/null || true
}

# The linker looks for unversioned names (-lcublas); the wheels carry only sonames.
link_unversioned_names() {
    local lib
    for lib in "$cuda"/lib/lib*.so.*; do
        local base=${lib##*/}
        base=${base%%.so.*}
        [[ -e $cuda/lib/$base.so ]] || ln -s "${lib##*/}" "$cuda/lib/$base.so"
    done
}

# Every driver function cuda.h declares, each returning CUDA_ERROR_NO_DEVICE (100).
# Preprocessed twice: once as a program sees the header (versioned names such as
# cuCtxCreate_v2) and once with the internal switch that also declares the old names.
build_driver_stub() {
    local stubs=$cuda/lib/stubs
    mkdir -p "$stubs"
    {
        gcc -E -P -I"$cuda/include" "$cuda/include/cuda.h"
        gcc -E -P -D__CUDA_API_VERSION_INTERNAL -I"$cuda/include" "$cuda/include/cuda.h"
    } | tr '\n' ' ' | grep -oE 'CUresult +cu[A-Za-z0-9_]+ *\(' \
        | sed -E 's/CUresult +(cu[A-Za-z0-9_]+).*/\1/' | sort -u \
        | sed 's/.*/int &(void) { return 100; }/' >"$stubs/libcuda-stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda-stub.c"
    ln -sf libcuda.so "$stubs/libcuda.so.1"
}

if [[ ! -x $cuda/bin/nvcc || ! -e $cuda/lib/stubs/libcuda.so ]]; then
    echo "build-cuda: unpacking the CUDA 13.0 toolkit into $home" >&2
    unpack_toolkit
    link_unversioned_names
    build_driver_stub
fi

export CUDA_ROOT=$cuda CUDA_PATH=$cuda
export PATH=$cuda/bin:$PATH
nvcc --version | tail -n 2 >&2
CARGO_TARGET_DIR=$target_dir cargo build --release --features cuda --bin ddn >&2

wrapper=$target_dir/release/ddn-cuda
cat >"$wrapper" <<EOF
#!/usr/bin/env bash
# ddn built with --features cuda (scripts/build-cuda.sh), with the CUDA libraries it links.
lib=$cuda/lib
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    lib=\$lib:$cuda/lib/stubs
fi
export LD_LIBRARY_PATH=\$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
exec "$target_dir/release/ddn" "\$@"
EOF
chmod +x "$wrapper"
echo "$wrapper"
