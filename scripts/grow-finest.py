#!/usr/bin/env python3
"""Grow a model's finest level by copies of its last layer with a given cell size.

Usage: scripts/grow-finest.py IN.safetensors OUT.safetensors COPIES [CELL_LOG2]

The copies go right after that layer (CELL_LOG2 3: the last 8x8-pixel-cell layer), and
the finest level's later layers move up by COPIES. The ladder stored in the file's
metadata ("ddn.config") grows with them, so OUT is a model `ddn` loads as it is, and the
start of `ddn train --init OUT --config` (the config as written next to OUT, .json).
A copy starts from weights that already make useful candidates for a nearly finished
image, where a fresh layer would start from noise. Only the standard library is used.
"""
import json
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        blob = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        tensors[name] = (entry["dtype"], entry["shape"], blob[start:end])
    return meta, tensors


def write_safetensors(path, meta, tensors):
    header = {"__metadata__": meta}
    offset = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(tensors[name][2])


def grow(meta, tensors, copies, cell_log2):
    config = json.loads(meta["ddn.config"])
    finest = config["levels"][-1]
    prefix = f"level{len(config['levels']) - 1}.layer"
    source = max(i for i, layer in enumerate(finest["layers"]) if layer["cell_log2"] == cell_log2)
    grown = {}
    for name, tensor in tensors.items():
        if not name.startswith(prefix):
            grown[name] = tensor
            continue
        index, rest = name[len(prefix):].split(".", 1)
        index = int(index)
        if index > source:
            grown[f"{prefix}{index + copies}.{rest}"] = tensor
            continue
        grown[name] = tensor
        if index == source:
            for c in range(1, copies + 1):
                grown[f"{prefix}{index + c}.{rest}"] = tensor
    finest["layers"][source + 1:source + 1] = [dict(finest["layers"][source]) for _ in range(copies)]
    return {**meta, "ddn.config": json.dumps(config, separators=(",", ":"))}, grown


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.strip().splitlines()[2])
    src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cell_log2 = int(sys.argv[4]) if len(sys.argv) == 5 else 3
    meta, tensors = grow(*read_safetensors(src), copies, cell_log2)
    write_safetensors(dst, meta, tensors)
    with open(dst.rsplit(".", 1)[0] + ".json", "w") as f:
        f.write(meta["ddn.config"])
    layers = sum(len(level["layers"]) for level in json.loads(meta["ddn.config"])["levels"])
    print(f"{dst}: {len(tensors)} tensors, {layers} layers")


if __name__ == "__main__":
    main()
