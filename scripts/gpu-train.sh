#!/usr/bin/env bash
# On a GPU machine: trains the next model from the newest shipped one on the kit's
# training photos (scripts/gpu-kit.sh), and leaves the model, its checkpoint and its log
# in OUT to bring back (each well under the 16 MiB a file may be).
#
# Usage: scripts/gpu-train.sh KIT MINUTES [OUT]   (OUT default $OUT or /tmp/gpu-train)
# Environment: CUDA_LIBS as for gpu-check.sh; INIT (default models/v4.safetensors);
# BATCH (default 128); STEPS (the schedule's length for --decay, default 20000: the run
# stops at MINUTES and can be resumed from the checkpoint).
set -euo pipefail

kit=${1:?usage: scripts/gpu-train.sh KIT MINUTES [OUT]}
minutes=${2:?usage: scripts/gpu-train.sh KIT MINUTES [OUT]}
out=${3:-${OUT:-/tmp/gpu-train}}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source "$(dirname "$0")/gpu-env.sh"
unpack_ddn "$kit" "$work/ddn"
path=$(cuda_library_path)
export LD_LIBRARY_PATH=$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

"$work/ddn" train --device cuda --data "$kit/train" --out "$out/model.safetensors" \
    --init "${INIT:-$root/models/v4.safetensors}" --batch "${BATCH:-128}" \
    --steps "${STEPS:-20000}" --decay --warmup 50 --lr 2e-4 --minutes "$minutes" --quiet
ls -la "$out"
