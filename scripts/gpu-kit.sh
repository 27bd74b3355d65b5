#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh and scripts/gpu-train.sh need on a GPU machine into one
# folder small enough to carry there. The device tool carries at most 64 MiB, the
# repository's tracked files included, so:
#   - the CUDA build of ddn is stripped, the built-in models' bytes are zeroed out of it
#     (they travel anyway as models/*.safetensors, and unpack_ddn in gpu-env.sh puts them
#     back at the offsets listed in ddn.models) and it is xz-compressed;
#   - one or more Kodak images to code;
#   - training photos in a fixed shuffled order (so every source is represented) until
#     the budget is spent; PNGs are re-encoded as JPEG quality 95, as the BSDS500 photos
#     are stored, which makes a photo about a fifth of its size.
#
# Usage: scripts/gpu-kit.sh [KIT]   (default target/gpu-kit; run scripts/build-cuda.sh first)
# Environment: KODAK (default ../shared/data/kodak), TRAIN (default ../shared/data/train),
# KODAK_IMAGES (default 2), KIT_MIB (the kit's budget; default 63 MiB less the tracked files).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kit=${1:-$root/target/gpu-kit}
kodak=${KODAK:-$root/../shared/data/kodak}
train=${TRAIN:-$root/../shared/data/train}
binary=${CARGO_TARGET_DIR:-$root/target/cuda}/release/ddn
tracked=$(cd "$root" && git ls-files -z | xargs -0 stat -c %s | awk '{ s += $1 } END { print s }')
budget=${KIT_MIB:+$(( KIT_MIB * 1024 * 1024 ))}
budget=${budget:-$(( 63 * 1024 * 1024 - tracked ))}

[[ -x $binary ]] || { echo "gpu-kit: no CUDA build at $binary; run scripts/build-cuda.sh" >&2; exit 1; }
rm -rf "$kit"
mkdir -p "$kit/kodak" "$kit/train"
strip -o "$kit/ddn" "$binary"
python3 - "$kit/ddn" "$root" "$kit/ddn.models" <<'PY'
import glob, os, sys
path, root, manifest = sys.argv[1:]
data = bytearray(open(path, "rb").read())
lines = []
for model in sorted(glob.glob(os.path.join(root, "models", "*.safetensors"))):
    blob = open(model, "rb").read()
    at = data.find(blob)
    if at < 0:
        continue
    data[at:at + len(blob)] = bytes(len(blob))
    lines.append(f"{at} {os.path.relpath(model, root)}\n")
open(path, "wb").write(data)
open(manifest, "w").writelines(lines)
PY
xz -9 -T0 "$kit/ddn"
find "$kodak" -maxdepth 1 -name '*.png' | sort | head -n "${KODAK_IMAGES:-2}" \
    | xargs -I{} cp {} "$kit/kodak/"

used=$(du -sb "$kit" | cut -f1)
python3 - "$train" "$kit/train" "$(( budget - used ))" <<'PY'
import glob, io, os, random, shutil, sys
from PIL import Image
source, dest, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
photos = sorted(glob.glob(os.path.join(source, "*.jpg")) + glob.glob(os.path.join(source, "*.png")))
random.Random(1).shuffle(photos)
for photo in photos:
    name = os.path.basename(photo)
    if photo.endswith(".png"):
        buffer = io.BytesIO()
        Image.open(photo).convert("RGB").save(buffer, "JPEG", quality=95)
        blob, name = buffer.getvalue(), name[:-4] + ".jpg"
    else:
        blob = open(photo, "rb").read()
    if len(blob) > budget:
        continue
    open(os.path.join(dest, name), "wb").write(blob)
    budget -= len(blob)
PY
echo "gpu-kit: $(ls "$kit/kodak" | wc -l) Kodak images, $(ls "$kit/train" | wc -l) training photos" \
    "($(ls "$kit/train" | grep -c urban100 || true) Urban100), $(du -sh "$kit" | cut -f1) in all," \
    "$(( tracked / 1048576 )) MiB of tracked files beside it" >&2
echo "$kit"
