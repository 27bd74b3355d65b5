#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine into one folder small enough
# to carry there (the device tool carries at most 64 MiB): the CUDA build of ddn,
# stripped and xz-compressed (Python's lzma unpacks it there), a few Kodak images to
# code, and as many training photos as fit in the rest, for timing and training.
#
# Usage: scripts/gpu-kit.sh [KIT]   (default target/gpu-kit; run scripts/build-cuda.sh first)
# Environment: KODAK (default ../shared/data/kodak), TRAIN (default ../shared/data/train),
# KODAK_IMAGES (default 4), KIT_MIB (the whole kit's budget, default 60).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kit=${1:-$root/target/gpu-kit}
kodak=${KODAK:-$root/../shared/data/kodak}
train=${TRAIN:-$root/../shared/data/train}
binary=${CARGO_TARGET_DIR:-$root/target/cuda}/release/ddn
budget=$(( ${KIT_MIB:-60} * 1024 * 1024 ))

[[ -x $binary ]] || { echo "gpu-kit: no CUDA build at $binary; run scripts/build-cuda.sh" >&2; exit 1; }
rm -rf "$kit"
mkdir -p "$kit/kodak" "$kit/train"
strip -o "$kit/ddn" "$binary"
xz -9 -T0 "$kit/ddn"
find "$kodak" -maxdepth 1 -name '*.png' | sort | head -n "${KODAK_IMAGES:-4}" \
    | xargs -I{} cp {} "$kit/kodak/"

used=$(du -sb "$kit" | cut -f1)
find "$train" -maxdepth 1 \( -name '*.jpg' -o -name '*.png' \) | sort | while read -r photo; do
    size=$(stat -c %s "$photo")
    (( used + size > budget )) && break
    cp "$photo" "$kit/train/"
    used=$(( used + size ))
done
echo "gpu-kit: $(ls "$kit/kodak" | wc -l) Kodak images, $(ls "$kit/train" | wc -l) training photos," \
    "$(du -sh "$kit" | cut -f1) in all" >&2
echo "$kit"
