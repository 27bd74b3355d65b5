#!/usr/bin/env python3
"""Give some layers of a model more candidates per cell by copying their nodes.

Usage: scripts/widen-heads.py IN.safetensors OUT.safetensors FACTOR CELL_LOG2 [NOISE [SEED]]

Every layer of the finest level whose cells are 2^CELL_LOG2 grid pixels gets FACTOR
times its K: node k's copy j (j = 1 .. FACTOR-1) becomes node j*K + k, its head rows
those of node k plus Gaussian noise of NOISE (default 0.05) times the node's own RMS,
drawn from numpy's default_rng(SEED) (default 13) layer by layer, so that training can
pull the copies apart (the nearest copy of each cell takes the gradient). The ladder in
the file's metadata ("ddn.config") says the new K, so OUT is a model `ddn` loads as it
is, and the start of `ddn train --init OUT --config` (the config as written next to OUT,
.json). Needs numpy; the file format is read and written as scripts/grow-finest.py does.
"""
import importlib.util
import json
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("grow_finest", os.path.join(here, "grow-finest.py"))
grow_finest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grow_finest)


def widen(meta, tensors, factor, cell_log2, noise, seed):
    config = json.loads(meta["ddn.config"])
    level = len(config["levels"]) - 1
    finest = config["levels"][level]
    planes = 3 * 4 ** finest.get("s2d_log2", 0)
    rng = np.random.default_rng(seed)
    for index, layer in enumerate(finest["layers"]):
        if layer["cell_log2"] != cell_log2:
            continue
        name = f"level{level}.layer{index}.head"
        dtype, shape, data = tensors[name]
        assert dtype == "F32", name
        k = layer["k"]
        nodes = np.frombuffer(data, dtype="<f4").reshape(k, planes, *shape[1:])
        rms = np.sqrt((nodes**2).mean(axis=tuple(range(1, nodes.ndim)), keepdims=True))
        copies = [nodes]
        for _ in range(1, factor):
            copies.append(nodes + rng.normal(size=nodes.shape).astype(np.float32) * noise * rms)
        wide = np.concatenate(copies, 0).astype("<f4")
        tensors[name] = (dtype, [k * factor * planes, *shape[1:]], wide.tobytes())
        layer["k"] = k * factor
    return dict(meta, **{"ddn.config": json.dumps(config)}), tensors, config


def main():
    if len(sys.argv) not in (5, 6, 7):
        sys.exit(__doc__)
    src, dst, factor, cell_log2 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    noise = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 13
    meta, tensors = grow_finest.read_safetensors(src)
    meta, tensors, config = widen(meta, tensors, factor, cell_log2, noise, seed)
    grow_finest.write_safetensors(dst, meta, tensors)
    with open(os.path.splitext(dst)[0] + ".json", "w") as f:
        json.dump(config, f)


if __name__ == "__main__":
    main()
