#!/usr/bin/env bash
# On a GPU machine, in one run that ends by a deadline: checks that the CUDA build codes
# an image that the CPU decodes alike, times a few training steps, then trains from the
# newest shipped model on the kit's photos (scripts/gpu-kit.sh) with a cosine decay sized
# to end when the time does. Leaves in OUT the model, its log, the checkpoint (in parts
# under the 16 MiB a returned file may be) and a report, gpu-train.md.
#
# Usage: scripts/gpu-train.sh KIT SECONDS [OUT]   (OUT default $OUT or /tmp/gpu-train;
# SECONDS: the whole script's budget, counted from its start)
# Environment: CUDA_LIBS as for gpu-check.sh; INIT (default models/v4.safetensors);
# BATCH (default 64), CROP (default 128), LR (default 2e-4), WARMUP (default 100);
# KEEP_LAMBDA (LO,HI: train with keep as `ddn train --keep-lambda`; default: never keep)
# with SPLIT_START (default 0) and PLAIN_SHARE (share of steps that never keep, default 0);
# GPU_DEVICE (default cuda; `cpu` rehearses the script on a machine without a GPU).
set -uo pipefail

kit=${1:?usage: scripts/gpu-train.sh KIT SECONDS [OUT]}
budget=${2:?usage: scripts/gpu-train.sh KIT SECONDS [OUT]}
out=${3:-${OUT:-/tmp/gpu-train}}
root=$(cd "$(dirname "$0")/.." && pwd)
began=$(date +%s)
mkdir -p "$out"
report=$out/gpu-train.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "$*" | tee -a "$report"; }
left() { echo $(( began + budget - $(date +%s) )); }

source "$(dirname "$0")/gpu-env.sh"
unpack_ddn "$kit" "$work/ddn"
path=$(cuda_library_path 2>"$work/missing") || say "- missing: $(cat "$work/missing")"
export LD_LIBRARY_PATH=$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ddn=$work/ddn
gpu=${GPU_DEVICE:-cuda}
say "# ddn training on a GPU: $(date -u +%FT%TZ)"
say "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
say "- libraries: $path"
say "- ddn: $("$ddn" --version 2>&1)"

# 1. Code one image on the GPU; decode it there and on the CPU.
image=$(ls "$kit"/kodak/*.png | head -n 1)
timed() {
    local t rc
    t=$(date +%s.%N)
    timeout 120 "$@" >>"$work/codec.log" 2>&1
    rc=$?
    echo "$rc $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
}
say "- encode $(basename "$image") on $gpu at 0.25 bpp (rc, s): $(timed "$ddn" compress "$image" --bpp 0.25 --device "$gpu" -o "$work/a.ddn")"
say "- decode on $gpu (rc, s): $(timed "$ddn" decompress "$work/a.ddn" --device "$gpu" -o "$work/cuda.png")"
say "- decode on cpu (rc, s): $(timed "$ddn" decompress "$work/a.ddn" --device cpu -o "$work/cpu.png")"
say "- same file encoded on cpu (rc, s): $(timed "$ddn" compress "$image" --bpp 0.25 --device cpu -o "$work/b.ddn")"
say "- sizes: $gpu $(stat -c %s "$work/a.ddn" 2>/dev/null) B, cpu $(stat -c %s "$work/b.ddn" 2>/dev/null) B"
say "- PSNR $gpu vs cpu decode of the cuda file: $(python3 -c '
import sys, numpy as np; from PIL import Image
a, b = (np.asarray(Image.open(p), dtype=np.float64) for p in sys.argv[1:])
m = ((a - b) ** 2).mean(); print("inf" if m == 0 else "%.2f dB" % (10 * np.log10(255 ** 2 / m)))
' "$work/cuda.png" "$work/cpu.png" 2>&1)"
tail -n 5 "$work/codec.log" | sed 's/^/    /' | tee -a "$report"

# 2. Time training steps (50, logged every 25).
args=(train --device "$gpu" --data "$kit/train" --init "${INIT:-$root/models/v4.safetensors}"
    --batch "${BATCH:-64}" --crop "${CROP:-128}" --lr "${LR:-2e-4}" --warmup "${WARMUP:-100}"
    --split-start "${SPLIT_START:-0}" --checkpoint-every 100000 --quiet)
if [[ -n "${KEEP_LAMBDA:-}" ]]; then
    args+=(--keep-lambda "$KEEP_LAMBDA" --plain-share "${PLAIN_SHARE:-0}")
fi
timeout 300 "$ddn" "${args[@]}" --out "$work/timing.safetensors" --steps 50 >"$work/timing.out" 2>&1
tail -n 3 "$work/timing.out" | sed 's/^/    /' | tee -a "$report"
rate=$(awk -F, '$1 == 25 { a = $2 } $1 == 50 { b = $2 } END { if (b > a) printf "%.4f", 25 / (b - a) }' \
    "$work/timing.safetensors.log.csv" 2>/dev/null)
say "- training: ${rate:-?} steps/s at batch ${BATCH:-64} of ${CROP:-128}² crops"
[[ -n $rate ]] || exit 1

# 3. Train until 30 s before the deadline, the cosine sized to end there.
seconds=$(( $(left) - 30 ))
steps=$(awk -v r="$rate" -v s="$seconds" 'BEGIN { printf "%d", r * s * 0.97 }')
say "- main run: $steps steps in at most $seconds s"
timeout $(( seconds + 20 )) "$ddn" "${args[@]}" --out "$out/model.safetensors" --steps "$steps" --decay \
    --minutes "$(awk -v s="$seconds" 'BEGIN { printf "%.2f", s / 60 }')" 2>&1 | tail -n 5 | tee -a "$report"
split -b 15M -d "$out/model.safetensors.ckpt.safetensors" "$out/ckpt.part" && rm "$out/model.safetensors.ckpt.safetensors"
say "- finished with $(left) s left"
ls -la "$out" | tee -a "$report"
