"""Geometry accuracy and texture fidelity of game-ready mesh export (issue 6), both extraction paths.

    python -m bench.export_accuracy [--synthetic-limit 10] [--gt-meshes all|cow,spot,...]
                                    [--analytic sphere,torus] [--paths sdf,gaussians]
                                    [--input-views 32] [--json bench/results/export_accuracy.json]
                                    [--md docs/export_accuracy.md] [--keep DIR] [--fresh]

Cases (every one through ``export_mesh`` to a GLB with ``faces=20000, texture_size=1024, up=(0,1,0),
pivot="none", scale=1`` -- the identity placement, so the file stays in the source's world frame --,
read back with ``recon.export.preview.load_mesh_file`` and scored by ``mesh_metrics`` against the GT
mesh: 100k samples per surface, tau = 1% of the GT bounding-box diagonal):

- ``analytic``: a sphere (r 0.8) and a torus (0.6 / 0.25) with a seeded solid texture. SDF path:
  ``mesh_from_sdf`` of the exact field (128^3 over [-1, 1]^3, colours from the material). Gaussians
  path: 100k flat discs (sigma 0.6x the sample spacing in-plane, 0.05x that across, opacity 0.95)
  on exact surface samples, oriented to the normal, coloured by the albedo. GT: a fine trimesh
  tessellation (icosphere level 6; torus 256 x 128 sections).
- ``synthetic``: the first N synthetic-val items, reconstructed posed by ``checkpoints/default`` from
  the protocol's 4 input views. SDF path: ``Reconstructor.mesh`` (128^3); Gaussians path: the
  reconstruction's Gaussians (``export_mesh`` surfaces them by render + TSDF). GT: the protocol's
  ``ground_truth_mesh(object_for_seed(seed), 128)``.
- ``gt``: meshes of ``../shared/eval_data/gt_meshes`` (read by path, never copied), normalised by
  ``mesh_object`` (radius 0.9, +Y in the file -> +Z), rendered by ``render_sdf`` from 32 cameras on
  a spiral over the sphere (elevations -20..65 degrees like training, 128 px = the model's working
  size, default key light, white background) and reconstructed from ``--input-views`` of them.
  GT: the normalised mesh itself (``object_mesh``).

Texture fidelity: the exported GLB (texture sampled bilinearly) and the source -- the Gaussians
(``renderer.render``) or the pre-export marching-cubes mesh with vertex colours
(``render_mesh``) -- rendered from 8 held-out cameras (a ring at 10 degrees elevation, 256 px,
azimuths between the input views), PSNR over the union of both masks (white background).
For reconstructed cases also against the ground truth at held-out views, for the texture baked
from the source's colours and for one projected from the input photos (``versus_ground_truth``).

Resumable: finished cases stay in the JSON and are skipped unless ``--fresh``. Seconds are wall
time of the whole case (reconstruction, export, read back, metrics, renders).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon.core.types import Mesh
from recon.eval.metrics import mesh_metrics, psnr
from recon.export import MeshExportOptions, export_mesh, mesh_from_sdf
from recon.export.preview import load_mesh_file, render_mesh
from renderer import Cameras, Gaussians, render

GT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "eval_data" / "gt_meshes"
GT_MESHES = {  # name -> path under GT_ROOT (all +Y up)
    "bunny": "common-3d-test-models/stanford-bunny.obj",
    "cow": "common-3d-test-models/cow.obj",
    "teapot": "common-3d-test-models/teapot.obj",
    "spot": "common-3d-test-models/spot/spot_triangulated.obj",
    "fandisk": "common-3d-test-models/fandisk.obj",
    "duck": "trimesh/Duck.glb",
}
CHECKPOINT = "checkpoints/default"
RIG_VIEWS = 32
RIG_SIZE = 128  # the model's working resolution (config image_size)
HELD_OUT = 8
HELD_OUT_SIZE = 256
FOV_DEG = 40.0
WHITE = (1.0, 1.0, 1.0)


def export_options() -> MeshExportOptions:
    """The export settings of every case: 20k faces, 1024^2 texture, identity placement (source frame)."""
    return MeshExportOptions(faces=20_000, texture_size=1024, up=(0.0, 1.0, 0.0), pivot="none", scale=1.0)


# ---- cameras -------------------------------------------------------------------------------------


def _distance(radius: float, fov_deg: float, fill: float) -> float:
    """Camera distance at which the sphere of ``radius`` spans ``fill`` of the half-width."""
    return radius / math.sin(math.atan(fill * math.tan(math.radians(fov_deg) / 2)))


def sphere_rig(n: int = RIG_VIEWS, size: int = RIG_SIZE, radius: float = 0.9, fov_deg: float = FOV_DEG,
               fill: float = 0.85, elevation_deg: tuple[float, float] = (-20.0, 65.0)) -> Cameras:
    """``n`` OpenCV cameras (world z up) on a spiral over the sphere band ``elevation_deg``, equal
    area per camera, golden-angle azimuths, all looking at the origin with ``fov_deg``."""
    lo, hi = (math.sin(math.radians(e)) for e in elevation_deg)
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = lo + (hi - lo) * i / n
    az = math.pi * (3 - math.sqrt(5)) * i
    r = (1 - z * z).sqrt()
    eye = torch.stack([r * torch.cos(az), r * torch.sin(az), z], -1) * _distance(radius, fov_deg, fill)
    return Cameras.look_at(eye.float(), torch.zeros(3), (0.0, 0.0, 1.0), fov_deg, size, size)


def held_out_cameras(n: int = HELD_OUT, size: int = HELD_OUT_SIZE, radius: float = 0.9) -> Cameras:
    """``n`` cameras on a ring at 10 degrees elevation, azimuths offset by 11 degrees from 0."""
    return Cameras.orbit(n, _distance(radius, FOV_DEG, 0.85), 10.0, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), FOV_DEG,
                         size, size, azimuth0_deg=11.0)


# ---- sources -------------------------------------------------------------------------------------


@dataclass
class Case:
    """One benchmark case before export: the ``source`` (Mesh or Gaussians, world frame), its GT
    ``Mesh``, held-out ``cameras`` and the input views shown in pictures (``inputs``, may be None)."""

    group: str
    name: str
    path: str  # "sdf" or "gaussians"
    source: Mesh | Gaussians
    gt: Mesh
    cameras: Cameras
    inputs: object = None
    prep_seconds: float = 0.0
    targets: object = None  # GT Views (images, cameras, masks) of held-out views, for texture vs ground truth


def analytic_object(name: str, seed: int = 0):
    """A ``ProceduralObject`` sphere (r 0.8) or torus (0.6 / 0.25) with a seeded solid texture, and its
    fine GT tessellation (``Mesh``)."""
    import trimesh

    from recon.data.procedural.objects import ProceduralObject
    from recon.data.procedural.primitives import Sphere, Torus
    from recon.data.procedural.texture import random_material, random_palette

    gen = torch.Generator().manual_seed(seed)
    material = random_material(gen, random_palette(gen, 4), 0.15)
    if name == "sphere":
        shape, lo, hi = Sphere(radius=0.8), (-0.8,) * 3, (0.8,) * 3
        tm = trimesh.creation.icosphere(subdivisions=6, radius=0.8)
    elif name == "torus":
        shape, lo, hi = Torus(major=0.6, minor=0.25), (-0.85, -0.85, -0.25), (0.85, 0.85, 0.25)
        tm = trimesh.creation.torus(major_radius=0.6, minor_radius=0.25, major_sections=256, minor_sections=128)
    else:
        raise ValueError(f"unknown analytic shape {name!r}: sphere or torus")
    obj = ProceduralObject(shape, [material], lo, hi, info={"kind": "analytic", "style": name, "complexity": 0.0})
    gt = Mesh(torch.tensor(tm.vertices, dtype=torch.float32), torch.tensor(tm.faces, dtype=torch.long))
    return obj, gt


def sdf_mesh_of(obj, resolution: int = 128, extent: float = 1.0) -> Mesh:
    """Marching-cubes ``Mesh`` of a ``ProceduralObject``'s exact field, colours from its material."""
    return mesh_from_sdf(lambda p: (obj.sdf(p), obj.albedo(p)), resolution, extent)


def surface_gaussians(obj, area: float, n: int = 100_000, seed: int = 0) -> Gaussians:
    """``n`` flat discs on exact surface samples of ``obj`` (world frame) whose surface has ``area``:
    local z along the normal, in-plane sigma 0.6x the mean sample spacing ``sqrt(area / n)``, 0.05x
    that across, opacity 0.95, albedo colour."""
    from recon.data.procedural.mesh import surface_samples

    pts, normals, colors = surface_samples(obj, torch.Generator().manual_seed(seed), n)
    spacing = math.sqrt(area / len(pts))
    z = torch.tensor([0.0, 0.0, 1.0]).expand_as(normals)
    axis = torch.linalg.cross(z, normals)
    s, c = axis.norm(dim=-1), (normals * z).sum(-1)
    half = torch.atan2(s, c) / 2
    axis = torch.where(s[:, None] > 1e-8, axis / s.clamp_min(1e-8)[:, None], torch.tensor([1.0, 0.0, 0.0]))
    quats = torch.cat([torch.cos(half)[:, None], torch.sin(half)[:, None] * axis], -1)
    scales = torch.tensor([0.6, 0.6, 0.05]) * spacing
    return Gaussians.from_rgb(pts, colors.clamp(0, 1), scales.expand(len(pts), 3).clone(),
                              torch.full((len(pts),), 0.95), quats_wxyz=quats)


def mesh_area(mesh: Mesh) -> float:
    v, f = mesh.vertices.double(), mesh.faces.long()
    return float(0.5 * torch.linalg.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]).norm(dim=-1).sum())


def analytic_cases(names: list[str], paths: list[str], done=lambda key: False):
    for name in names:
        for path in paths:
            if done(f"analytic/{name}/{path}"):
                continue
            t0 = time.perf_counter()
            obj, gt = analytic_object(name)
            source = sdf_mesh_of(obj) if path == "sdf" else surface_gaussians(obj, mesh_area(gt))
            yield Case("analytic", name, path, source, gt, held_out_cameras(), None, time.perf_counter() - t0)


_RECON = {}


def reconstructor():
    """The shipped checkpoint, loaded once per process (CPU)."""
    if "r" not in _RECON:
        from recon.inference import Reconstructor

        _RECON["r"] = Reconstructor.from_pretrained(CHECKPOINT)
    return _RECON["r"]


def reconstruct_source(views, path: str) -> Mesh | Gaussians:
    rec = reconstructor()
    return rec.mesh(views) if path == "sdf" else rec.reconstruct(views).gaussians


def synthetic_items(limit: int):
    """``(name, inputs Views, gt_mesh callable)`` of the first ``limit`` synthetic-val objects."""
    from recon.eval.protocols_synthetic import SyntheticVal

    for item in SyntheticVal().items(limit):
        yield item.item_id, item.inputs, item.extras["gt_mesh"], item.targets


def synthetic_cases(limit: int, paths: list[str], done=lambda key: False):
    for name, inputs, gt_fn, targets in synthetic_items(limit):
        todo = [p for p in paths if not done(f"synthetic/{name}/{p}")]
        if not todo:
            continue
        t0 = time.perf_counter()
        gt = gt_fn()
        shared = time.perf_counter() - t0
        for path in todo:
            t0 = time.perf_counter()
            source = reconstruct_source(inputs, path)
            yield Case("synthetic", name, path, source, gt, held_out_cameras(), inputs,
                       shared + time.perf_counter() - t0, targets)


def gt_views(name: str, input_views: int = RIG_VIEWS):
    """``(object, all 32 rendered Views, the input subset Views)`` of GT mesh ``name``."""
    from recon.core.types import Views
    from recon.data.procedural.mesh_object import mesh_object
    from recon.data.procedural.trace import Lighting, render_sdf

    obj = mesh_object(GT_ROOT / GT_MESHES[name], seed=7)
    rendered = render_sdf(obj, sphere_rig(), Lighting(), background=WHITE)
    keep = np.linspace(0, RIG_VIEWS - 1, input_views).round().astype(int).tolist()
    sub = rendered.select(keep)
    return obj, rendered, Views(sub.images, sub.cameras, masks=sub.masks, names=[f"view{i}" for i in keep])


def gt_cases(names: list[str], paths: list[str], input_views: int, done=lambda key: False):
    from recon.data.procedural.mesh_object import object_mesh
    from recon.data.procedural.trace import Lighting, render_sdf

    for name in names:
        todo = [p for p in paths if not done(f"gt/{name}/{p}")]
        if not todo:
            continue
        t0 = time.perf_counter()
        obj, _, inputs = gt_views(name, input_views)
        gt = object_mesh(obj, colors=False)
        targets = render_sdf(obj, held_out_cameras(), Lighting(), background=WHITE)
        shared = time.perf_counter() - t0
        for path in todo:
            t0 = time.perf_counter()
            source = reconstruct_source(inputs, path)
            yield Case("gt", name, path, source, gt, held_out_cameras(), inputs, shared + time.perf_counter() - t0,
                       targets)


# ---- scoring -------------------------------------------------------------------------------------


def source_render(source: Mesh | Gaussians, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb [C, H, W, 3]``, ``alpha [C, H, W]`` of the source over white: Gaussians by ``render``
    (in chunks of 4 cameras), a mesh by ``render_mesh`` with its vertex colours."""
    if isinstance(source, Gaussians):
        rgbs, alphas = [], []
        for s in range(0, len(cameras), 4):
            out = render(source, cameras[list(range(s, min(s + 4, len(cameras))))], background=WHITE)
            rgbs.append(out.rgb.clamp(0, 1))
            alphas.append(out.alpha[..., 0])
        return torch.cat(rgbs), torch.cat(alphas)
    out = render_mesh(source.vertices, source.faces, cameras, vertex_colors=source.vertex_colors,
                      shading="vertex" if source.vertex_colors is not None else "shaded", background=WHITE)
    return out.rgb, out.alpha


_FLOOR: dict[tuple[str, str], float] = {}


def chamfer_floor(case: Case) -> float:
    """Chamfer-L1 of the GT against itself resampled (other seed): what 100k samples resolve."""
    key = (case.group, case.name)
    if key not in _FLOOR:
        _FLOOR[key] = mesh_metrics(case.gt, case.gt)["chamfer_l1"]
    return _FLOOR[key]


def _glb_render(glb: Path, cameras: Cameras):
    back = load_mesh_file(glb)
    return render_mesh(back.vertices, back.faces, cameras, uvs=back.uvs, texture=back.texture, background=WHITE)


def versus_ground_truth(case: Case, glb: Path, out_dir: Path) -> dict:
    """Texture against the ground truth: PSNR (whole image, and over the GT mask) at ``case.targets``
    of the GLB baked from the source's colours, of a GLB baked from the input photos
    (``export_mesh(..., photos=case.inputs)``) and of the source itself."""
    t = case.targets
    photos_glb = glb.with_name(glb.stem + "_photos.glb")
    rep = export_mesh(case.source, photos_glb, export_options(), photos=case.inputs)
    mask = t.masks.float() if t.masks is not None else None
    renders = {"model": _glb_render(glb, t.cameras).rgb, "photos": _glb_render(photos_glb, t.cameras).rgb,
               "source": source_render(case.source, t.cameras)[0]}
    out = {"photo_bake_seconds": rep["seconds"]["bake"]}
    for k, rgb in renders.items():
        out[f"gt_psnr_{k}"] = psnr(rgb, t.images)
        out[f"gt_psnr_{k}_mask"] = psnr(rgb, t.images, mask) if mask is not None else None
    return out


def export_and_score(case: Case, out_dir: Path) -> dict:
    """Export ``case.source`` to ``out_dir/<group>_<name>_<path>.glb``, read it back, score it."""
    t0 = time.perf_counter()
    glb = out_dir / f"{case.group}_{case.name}_{case.path}.glb"
    report = export_mesh(case.source, glb, export_options())
    if not (np.allclose(report["rotation"], np.eye(3)) and np.allclose(report["translation"], 0)):
        raise RuntimeError("export placement is not the identity: the file left the source frame")
    back = load_mesh_file(glb)
    metrics = mesh_metrics(Mesh(torch.from_numpy(back.vertices).float(), torch.from_numpy(back.faces)), case.gt)
    ref_rgb, ref_alpha = source_render(case.source, case.cameras)
    mesh_out = render_mesh(back.vertices, back.faces, case.cameras, uvs=back.uvs, texture=back.texture, background=WHITE)
    union = ((ref_alpha > 0.5) | (mesh_out.alpha > 0.5)).float()[..., None]
    level = report["topology"]["levels"][0]
    vs_gt = versus_ground_truth(case, glb, out_dir) if case.inputs is not None and case.targets is not None else {}
    return {**vs_gt,
        "group": case.group, "name": case.name, "path": case.path,
        "chamfer_l1": metrics["chamfer_l1"], "chamfer_floor": chamfer_floor(case), "fscore": metrics["fscore"], "precision": metrics["precision"],
        "recall": metrics["recall"], "tau": metrics["tau"], "gt_diagonal": metrics["gt_diagonal"],
        "faces": report["faces"], "watertight": level["watertight"], "components": level["components"],
        "genus": level["genus"], "uv_coverage": report["uv_coverage"],
        "texture_psnr": psnr(mesh_out.rgb, ref_rgb, union),
        "texture_psnr_common": psnr(mesh_out.rgb, ref_rgb, ((ref_alpha > 0.5) & (mesh_out.alpha > 0.5)).float()[..., None]),
        "mask_iou": float(((ref_alpha > 0.5) & (mesh_out.alpha > 0.5)).sum() / union.sum().clamp_min(1)),
        "export_seconds": report["seconds"], "prep_seconds": case.prep_seconds,
        "seconds": case.prep_seconds + time.perf_counter() - t0, "file": str(glb),
    }


# ---- report --------------------------------------------------------------------------------------


def _fmt(x, digits=4):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(results: dict) -> str:
    cfg, rows = results["config"], list(results["cases"].values())
    lines = [
        "# Mesh export accuracy (`bench/export_accuracy.py`)",
        "",
        f"Command: `{cfg['command']}`  ",
        f"Run: {cfg['date']}, {cfg['machine']}. {cfg.get('note', '')}",
        "",
        ("Every case goes through `export_mesh(..., MeshExportOptions(faces=20000, texture_size=1024, up=(0, 1, 0), "
        "pivot=\"none\", scale=1))` to a GLB (identity placement: the file keeps the source's world frame), is read back "
        "and scored with `mesh_metrics` against the GT mesh (100k samples per surface; Chamfer-L1 in world units; "
        "F-score at tau = 1% of the GT bounding-box diagonal, given per row; floor: the Chamfer-L1 of the GT against "
        "itself resampled, what 100k samples can resolve). Objects are about 1.8 units across "
        "(radius 0.9; analytic: 0.8). Texture PSNR: exported GLB (baked texture) vs the source (Gaussians rendered "
        "by `renderer.render`; SDF path: the pre-export marching-cubes mesh with vertex colours) from 8 held-out "
        "views at 256 px, over the union of both masks (silhouette errors count), and over their intersection "
        "(colour only: what the bake loses), white background. `watertight`: the decimated mesh before "
        "UV seams are split. Seconds: the whole case (reconstruction, export, read back, metrics, renders)."),
        "",
        "| group | case | path | Chamfer-L1 | floor | F-score | tau | faces | watertight | texture PSNR union / common (dB) | mask IoU | export s | total s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['group']} | {r['name']} | {r['path']} | {_fmt(r['chamfer_l1'])} | {_fmt(r.get('chamfer_floor'))} | {_fmt(r['fscore'], 3)} | "
                     f"{_fmt(r['tau'])} | {r['faces']} | {_fmt(r['watertight'])} | {_fmt(r['texture_psnr'], 2)} / {_fmt(r.get('texture_psnr_common'), 2)} | "
                     f"{_fmt(r['mask_iou'], 3)} | {r['export_seconds']['total']:.1f} | {r['seconds']:.1f} |")
    lines += ["", "Means per group and path:", "",
              "| group | path | cases | Chamfer-L1 | F-score | texture PSNR (dB) | total s |", "|---|---|---|---|---|---|---|"]
    groups = sorted({(r["group"], r["path"]) for r in rows})
    for g, p in groups:
        sel = [r for r in rows if r["group"] == g and r["path"] == p]
        m = {k: float(np.mean([r[k] for r in sel])) for k in ("chamfer_l1", "fscore", "texture_psnr", "seconds")}
        lines.append(f"| {g} | {p} | {len(sel)} | {m['chamfer_l1']:.4f} | {m['fscore']:.3f} | "
                     f"{m['texture_psnr']:.2f} | {m['seconds']:.1f} |")
    gt_rows = [r for r in rows if "gt_psnr_model" in r]
    if gt_rows:
        lines += ["", ("Texture against the ground truth (mean PSNR in dB, whole image / over the GT mask) at held-out "
                       "views (synthetic: the protocol's 4 target views; gt: the 8 held-out ring views rendered by "
                       "`render_sdf`): the GLB with the texture baked from the source's colours (`model`), baked from "
                       "the input photos (`photos`, `export_mesh(..., photos=inputs)`: visibility-tested projection, "
                       "model colours where no photo sees the surface), and the source itself (Gaussians splatted, "
                       "or the SDF mesh with vertex colours). Geometry errors count in all three."), "",
                  "| group | path | cases | GLB, model colours | GLB, photo colours | source | photo bake s |",
                  "|---|---|---|---|---|---|---|"]
        for g, p in sorted({(r["group"], r["path"]) for r in gt_rows}):
            sel = [r for r in gt_rows if r["group"] == g and r["path"] == p]

            def pair(k, sel=sel):
                mask = [r[f"{k}_mask"] for r in sel if r.get(f"{k}_mask") is not None]
                return f"{np.mean([r[k] for r in sel]):.2f} / " + (f"{np.mean(mask):.2f}" if mask else "-")

            lines.append(f"| {g} | {p} | {len(sel)} | {pair('gt_psnr_model')} | {pair('gt_psnr_photos')} | "
                         f"{pair('gt_psnr_source')} | {np.mean([r['photo_bake_seconds'] for r in sel]):.1f} |")
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic-limit", type=int, default=10, help="first N synthetic-val objects (0 = none)")
    p.add_argument("--gt-meshes", default="all", help=f"comma list of {','.join(GT_MESHES)}, 'all' or 'none'")
    p.add_argument("--analytic", default="sphere,torus", help="comma list of sphere,torus or 'none'")
    p.add_argument("--paths", default="sdf,gaussians", help="extraction paths: sdf, gaussians")
    p.add_argument("--input-views", type=int, default=RIG_VIEWS, help="GT-mesh views given to the model (of 32)")
    p.add_argument("--json", default="bench/results/export_accuracy.json")
    p.add_argument("--md", default="docs/export_accuracy.md")
    p.add_argument("--keep", default=None, help="folder for the GLBs (default: a temporary folder)")
    p.add_argument("--note", default="", help="free text for the report header (e.g. machine load)")
    p.add_argument("--fresh", action="store_true", help="ignore finished cases in --json")
    args = p.parse_args(argv)
    split = lambda s: [] if s in ("", "none") else [x.strip() for x in s.split(",") if x.strip()]
    gt_names = list(GT_MESHES) if args.gt_meshes == "all" else split(args.gt_meshes)
    for n in gt_names:
        if n not in GT_MESHES:
            p.error(f"unknown GT mesh {n!r}: one of {', '.join(GT_MESHES)}")
    paths = split(args.paths)
    if not set(paths) <= {"sdf", "gaussians"}:
        p.error("--paths takes sdf and/or gaussians")
    json_path = Path(args.json)
    results = {"cases": {}}
    if json_path.is_file() and not args.fresh:
        results = json.loads(json_path.read_text())
    results["config"] = {
        "command": "python -m bench.export_accuracy " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"), "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} CPU",
        "note": args.note, "export": {"faces": 20000, "texture_size": 1024, "up": [0, 1, 0], "pivot": "none"},
        "metrics": {"samples": 100_000, "tau_rel": 0.01}, "held_out": {"views": HELD_OUT, "size": HELD_OUT_SIZE},
        "gt_rig": {"views": RIG_VIEWS, "size": RIG_SIZE, "input_views": args.input_views},
    }
    done = lambda key: key in results["cases"]
    out_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="export_accuracy_"))
    out_dir.mkdir(parents=True, exist_ok=True)

    def cases():
        yield from analytic_cases(split(args.analytic), paths, done)
        if args.synthetic_limit > 0:
            yield from synthetic_cases(args.synthetic_limit, paths, done)
        yield from gt_cases(gt_names, paths, args.input_views, done)

    for case in cases():
        key = f"{case.group}/{case.name}/{case.path}"
        row = export_and_score(case, out_dir)
        results["cases"][key] = row
        print(json.dumps({k: row[k] for k in ("group", "name", "path", "chamfer_l1", "fscore", "faces", "watertight",
                                              "texture_psnr", "seconds")}), flush=True)
        _write_text(json_path, json.dumps(results, indent=1))
    _write_text(json_path, json.dumps(results, indent=1))
    _write_text(Path(args.md), markdown(results))


if __name__ == "__main__":
    main()
