"""Picture sheet of exported meshes next to their inputs (issue 6).

    python -m bench.export_sheet [--out docs/export_sheet.png] [--synthetic 2] [--gt-meshes spot,teapot]
                                 [--paths sdf,gaussians] [--glb-dir out/export_accuracy] [--cell 160]

One row per case (the first ``--synthetic`` synthetic-val objects, then the GT meshes rendered by the
data engine as in ``bench.export_accuracy``): three input views | for each extraction path, the
exported GLB shaded (grey, headlight Lambert), textured with the model's colours and textured from
the input photos (``export_mesh(..., photos=inputs)``; baked base colour, unlit), all outputs
from the same novel camera (the second held-out camera of ``bench.export_accuracy``). GLBs named
``<group>_<name>_<path>[_photos].glb`` in ``--glb-dir`` (``bench.export_accuracy --keep DIR`` writes them)
are reused; missing ones are exported here with the same options.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.export_accuracy import (
    GT_MESHES,
    export_options,
    gt_views,
    held_out_cameras,
    reconstruct_source,
    synthetic_items,
)
from recon.export import export_mesh
from recon.export.preview import load_mesh_file, render_mesh

LABEL_H = 18
GAP = 3


def _tile(img, cell: int) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] (tensor or array) -> ``cell x cell`` uint8."""
    a = (np.clip(np.asarray(img, np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.asarray(Image.fromarray(a).resize((cell, cell), Image.LANCZOS))


def _glb(group: str, name: str, path: str, inputs, glb_dir: Path, scratch: Path, photos: bool = False) -> Path:
    glb = glb_dir / f"{group}_{name}_{path}{'_photos' if photos else ''}.glb"
    if glb.is_file():
        return glb
    out = scratch / glb.name
    export_mesh(reconstruct_source(inputs, path), out, export_options(), photos=inputs if photos else None)
    return out


def _row(label: str, group: str, name: str, inputs, paths: list[str], glb_dir: Path, scratch: Path, cell: int):
    cams = held_out_cameras(size=2 * cell)[[1]]
    idx = np.linspace(0, len(inputs) - 1, 3).round().astype(int)
    tiles = [_tile(inputs.images[int(i)], cell) for i in idx]
    for path in paths:
        m = load_mesh_file(_glb(group, name, path, inputs, glb_dir, scratch))
        shaded = render_mesh(m.vertices, m.faces, cams, shading="shaded").rgb[0]
        textured = render_mesh(m.vertices, m.faces, cams, uvs=m.uvs, texture=m.texture).rgb[0]
        q = load_mesh_file(_glb(group, name, path, inputs, glb_dir, scratch, photos=True))
        photo = render_mesh(q.vertices, q.faces, cams, uvs=q.uvs, texture=q.texture).rgb[0]
        tiles += [_tile(shaded, cell), _tile(textured, cell), _tile(photo, cell)]
    return label, tiles


def _sheet(rows, headers: list[str], cell: int) -> Image.Image:
    cols = len(headers)
    W = cols * cell + (cols + 1) * GAP
    H = LABEL_H + len(rows) * (cell + LABEL_H + GAP) + GAP
    img = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for c, h in enumerate(headers):
        draw.text((GAP + c * (cell + GAP) + 2, 3), h, fill=(0, 0, 0))
    y = LABEL_H
    for label, tiles in rows:
        draw.text((GAP + 2, y + 2), label, fill=(60, 60, 60))
        y += LABEL_H
        for c, t in enumerate(tiles):
            img.paste(Image.fromarray(t), (GAP + c * (cell + GAP), y))
        y += cell + GAP
    return img


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/export_sheet.png")
    p.add_argument("--synthetic", type=int, default=2, help="first N synthetic-val objects")
    p.add_argument("--gt-meshes", default="spot,teapot", help=f"comma list of {','.join(GT_MESHES)}")
    p.add_argument("--paths", default="sdf,gaussians")
    p.add_argument("--input-views", type=int, default=32, help="GT-mesh views given to the model (of 32)")
    p.add_argument("--glb-dir", default="out/export_accuracy", help="reuse GLBs written by bench.export_accuracy --keep")
    p.add_argument("--cell", type=int, default=160, help="pixels per picture")
    args = p.parse_args(argv)
    paths = [x for x in args.paths.split(",") if x]
    gt_names = [x for x in args.gt_meshes.split(",") if x]
    for n in gt_names:
        if n not in GT_MESHES:
            p.error(f"unknown GT mesh {n!r}: one of {', '.join(GT_MESHES)}")
    glb_dir, scratch = Path(args.glb_dir), Path(tempfile.mkdtemp(prefix="export_sheet_"))
    rows = []
    t0 = time.perf_counter()
    for name, inputs, *_ in synthetic_items(args.synthetic):
        rows.append(_row(f"synthetic-val {name} (4 inputs)", "synthetic", name, inputs, paths, glb_dir, scratch, args.cell))
        print(json.dumps({"row": name, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    for name in gt_names:
        _, _, inputs = gt_views(name, args.input_views)
        rows.append(_row(f"{name} (data-engine render, {len(inputs)} inputs)", "gt", name, inputs, paths, glb_dir,
                         scratch, args.cell))
        print(json.dumps({"row": name, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    headers = ["input", "input", "input"]
    for path in paths:
        headers += [f"{path}: shaded", f"{path}: model colours", f"{path}: photo colours"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    _sheet(rows, headers, args.cell).save(tmp, optimize=True)
    os.replace(tmp, out)
    print(json.dumps({"out": str(out), "bytes": out.stat().st_size}))


if __name__ == "__main__":
    main()
