#!/usr/bin/env bash
# A second set of photographs the model never saw, of another kind than Kodak: the twelve
# nature photographs of Debian's mate-backgrounds package (macro shots with soft, blurred
# backgrounds, 1280-2560 px wide, stored as JPEGs), box-averaged by the whole factor that
# brings each near 768 px wide (that also averages away most of their JPEG blocks).
#
# Usage: scripts/wallpapers.sh DIR   (needs apt-get and python3 with Pillow)
set -euo pipefail
dir=${1:?usage: scripts/wallpapers.sh DIR}
version=1.26.0-1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "mate-backgrounds=$version" >/dev/null)
dpkg-deb -x "$work"/mate-backgrounds_"$version"_all.deb "$work/x"
mkdir -p "$dir"
python3 - "$work/x/usr/share/backgrounds/mate/nature" "$dir" <<'EOF'
import glob, os, sys
from PIL import Image
src, dst = sys.argv[1:]
for path in sorted(glob.glob(os.path.join(src, "*.jpg"))):
    image = Image.open(path).convert("RGB")
    factor = max(1, image.width // 768)
    name = os.path.basename(path)[:-4].lower() + ".png"
    image.reduce(factor).save(os.path.join(dst, name))
    print(name, image.size, "/", factor)
EOF
