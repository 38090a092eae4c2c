"""Contact sheets of the procedural data engine: what the training data looks like at a glance.

    python -m bench.contact_sheet [--out docs] [--cell 128] [--objects 64] [--scenes 16]

Writes ``procedural_objects.png`` (an 8 x 8 grid: seeds 0..63, each the first input view that
``make_item(seed)`` renders) and ``procedural_scenes.png`` (4 x 4: ``make_item(seed, scene=True)``
for seeds 0..15). Prints one JSON line per cell (seed, style, parts, seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from recon.data.procedural.item import make_item


def _sheet(tiles: list[np.ndarray], cols: int, gap: int = 2) -> Image.Image:
    rows = math.ceil(len(tiles) / cols)
    h, w, _ = tiles[0].shape
    out = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        out[y : y + h, x : x + w] = tile
    return Image.fromarray(out)


def _render(seeds: list[int], scene: bool, cell: int) -> tuple[list[np.ndarray], list[dict]]:
    tiles, rows = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        item = make_item(seed, n_inputs=1, n_targets=0, size=cell, scene=scene)
        dt = time.perf_counter() - t0
        tiles.append((item.inputs.images[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))
        m = item.meta
        rows.append({"seed": seed, "kind": m["kind"], "n_parts": m["n_parts"], "seconds": round(dt, 3),
                     "style": m.get("style", m.get("styles"))})
        print(json.dumps(rows[-1]), flush=True)
    return tiles, rows


def _save_png(img: Image.Image, path: Path) -> None:
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp, optimize=True)
    os.replace(tmp, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs")
    p.add_argument("--cell", type=int, default=128, help="pixels per cell")
    p.add_argument("--objects", type=int, default=64)
    p.add_argument("--scenes", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: best on a shared small CPU)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    obj_rows, scene_rows = [], []
    if args.objects:
        obj_tiles, obj_rows = _render(list(range(args.objects)), False, args.cell)
        _save_png(_sheet(obj_tiles, cols=max(1, round(math.sqrt(args.objects)))), out / "procedural_objects.png")
    if args.scenes:
        scene_tiles, scene_rows = _render(list(range(args.scenes)), True, args.cell)
        _save_png(_sheet(scene_tiles, cols=max(1, round(math.sqrt(args.scenes)))), out / "procedural_scenes.png")
    total = sum(r["seconds"] for r in obj_rows + scene_rows)
    print(json.dumps({"cells": len(obj_rows) + len(scene_rows), "seconds": round(total, 1), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
