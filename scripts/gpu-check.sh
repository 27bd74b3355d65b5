#!/usr/bin/env bash
# On a GPU machine, in one short run: does ddn's CUDA build work, agree with its CPU
# path, and how fast is it?
#   1. finds the CUDA libraries the build links (cublas, cublasLt, curand, nvrtc);
#   2. encodes each Kodak image of the kit at 0.25 bpp on CUDA and on the CPU, decodes
#      every file on both, and checks that a file from either decodes on the other and
#      that the two decodes of one file agree (PSNR between them >= 50 dB);
#   3. times encode and decode per image on each, and decoding many files at once;
#   4. times training steps on CUDA at a large batch.
# Writes a Markdown report to OUT/gpu-check.md (and prints it); exits non-zero when a
# check fails.
#
# Usage: scripts/gpu-check.sh KIT [OUT]   (KIT from scripts/gpu-kit.sh; OUT default $OUT
# or /tmp/gpu-check). Environment: CUDA_LIBS, extra folders to look for the libraries in;
# GPU_DEVICE (default cuda; `cpu` rehearses the whole script on a machine without a GPU);
# TRAIN_BATCHES (default "16 256").
set -euo pipefail

kit=${1:?usage: scripts/gpu-check.sh KIT [OUT]}
out=${2:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
report=$out/gpu-check.md
: >"$report"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
gpu=${GPU_DEVICE:-cuda}

say() { echo "$*" | tee -a "$report"; }
fail() { say "**FAILED**: $*"; failed=1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# --- 1. the binary and its libraries -------------------------------------------------
source "$(dirname "$0")/gpu-env.sh"
ddn=$work/ddn
unpack_ddn "$kit" "$ddn"
path=$(cuda_library_path 2>"$work/missing") || fail "$(tr '\n' ' ' <"$work/missing")"
export LD_LIBRARY_PATH=$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

say "# ddn on a GPU: $(date -u +%F)"
say
say "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo unknown)"
say "- glibc: $(ldd --version | head -n 1)"
say "- CPU: $(nproc) cores"
say "- libraries: $path"
if ldd "$ddn" | grep -q 'not found'; then
    fail "unresolved libraries: $(ldd "$ddn" | grep 'not found' | tr -s ' \t' ' ' | tr '\n' ';')"
    exit 1
fi
say "- ddn: $("$ddn" --version)"
say

# --- 2, 3. encode and decode on both, compare, time ----------------------------------
psnr() {
    python3 - "$1" "$2" <<'EOF'
import math, sys
def ppm(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    return fields[1:3], data[pos + 1:]
(sa, a), (sb, b) = ppm(sys.argv[1]), ppm(sys.argv[2])
assert sa == sb, "sizes differ"
se = sum((x - y) ** 2 for x, y in zip(a, b))
print("inf" if se == 0 else "%.2f" % (10 * math.log10(255 ** 2 * len(a) / se)))
EOF
}

at_least() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v == "inf" || v + 0 >= m) }'; }

say "## Kodak at 0.25 bpp (seconds per whole process, model load included)"
say
say "| image | encode cuda | encode cpu | same file | decode cuda | decode cpu | cuda vs cpu decode (dB) | PSNR vs original |"
say "|---|---|---|---|---|---|---|---|"
for image in "$kit"/kodak/*.png; do
    name=$(basename "$image" .png)
    python3 - "$image" "$work/$name.ppm" 2>/dev/null <<'EOF' || true
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2])
EOF
    t=$(now); "$ddn" compress "$image" -o "$work/$name.cuda.ddn" --bpp 0.25 --device "$gpu"; enc_cuda=$(since "$t")
    t=$(now); "$ddn" compress "$image" -o "$work/$name.cpu.ddn" --bpp 0.25 --device cpu; enc_cpu=$(since "$t")
    cmp -s "$work/$name.cuda.ddn" "$work/$name.cpu.ddn" && same=yes || same=no
    for file in cuda cpu; do
        t=$(now); "$ddn" decompress "$work/$name.$file.ddn" -o "$work/$name.$file.on-cuda.ppm" --device "$gpu"
        [[ $file == cuda ]] && dec_cuda=$(since "$t")
        t=$(now); "$ddn" decompress "$work/$name.$file.ddn" -o "$work/$name.$file.on-cpu.ppm" --device cpu
        [[ $file == cpu ]] && dec_cpu=$(since "$t")
    done
    agree_cuda_file=$(psnr "$work/$name.cuda.on-cuda.ppm" "$work/$name.cuda.on-cpu.ppm")
    agree_cpu_file=$(psnr "$work/$name.cpu.on-cuda.ppm" "$work/$name.cpu.on-cpu.ppm")
    quality=-
    [[ -e $work/$name.ppm ]] && quality=$(psnr "$work/$name.ppm" "$work/$name.cpu.on-cpu.ppm")
    say "| $name | $enc_cuda | $enc_cpu | $same | $dec_cuda | $dec_cpu | $agree_cuda_file / $agree_cpu_file | $quality |"
    at_least "$agree_cuda_file" 50 || fail "$name: the CUDA-encoded file decodes differently on CUDA and CPU"
    at_least "$agree_cpu_file" 50 || fail "$name: the CPU-encoded file decodes differently on CUDA and CPU"
done
say
say "(\"cuda vs cpu decode\": the CUDA-encoded file, then the CPU-encoded one, each decoded on both.)"
say

say "## Many files at once (decode on CUDA)"
say
mkdir -p "$work/many"
for copy in $(seq 1 8); do
    for file in "$work"/*.cpu.ddn; do cp "$file" "$work/many/$copy-$(basename "$file")"; done
done
files=$(ls "$work/many" | wc -l)
say "| jobs | files | seconds | images/s |"
say "|---|---|---|---|"
for jobs in 1 4 8; do
    rm -rf "$work/decoded"
    t=$(now)
    "$ddn" decompress "$work"/many/*.ddn --out-dir "$work/decoded" --device "$gpu" --jobs "$jobs" 2>/dev/null
    s=$(since "$t")
    say "| $jobs | $files | $s | $(awk -v n="$files" -v s="$s" 'BEGIN { printf "%.1f", n / s }') |"
done
say

# --- 4. training steps -----------------------------------------------------------------
say "## Training steps on CUDA (64x64 crops, $(ls "$kit/train" | wc -l) photos)"
say
say "| batch | seconds per step | images/s |"
say "|---|---|---|"
for batch in ${TRAIN_BATCHES:-16 256}; do
    "$ddn" train --device "$gpu" --data "$kit/train" --out "$work/train-$batch.safetensors" \
        --steps 50 --batch "$batch" --warmup 5 --checkpoint-every 1000 --quiet 2>/dev/null \
        || { fail "training at batch $batch"; continue; }
    # Seconds between the log lines of step 25 and step 50 (the first 25 include set-up).
    step=$(awk -F, '$1 == 25 { a = $2 } $1 == 50 { b = $2 } END { printf "%.3f", (b - a) / 25 }' \
        "$work/train-$batch.safetensors.log.csv")
    say "| $batch | $step | $(awk -v b="$batch" -v s="$step" 'BEGIN { printf "%.0f", b / s }') |"
done
say
[[ $failed == 0 ]] && say "All checks passed." || say "Some checks FAILED."
exit "$failed"
