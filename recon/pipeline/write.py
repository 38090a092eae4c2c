"""The last stage, write: a ``ReconstructResult`` to the output folder of DESIGN.md's contract.

``gaussians.ply`` (always), ``gaussians.splat`` and mesh files on request, ``cameras.json`` and
``report.json`` (last). Every file is written under a temporary name and renamed, so a failure
never leaves a half-written file.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from recon.core.errors import ReconError
from recon.core.text import utf8_text
from recon.export import MeshExportOptions, export_mesh
from recon.io import write_cameras_json
from recon.pipeline.options import FORMATS
from recon.pipeline.result import ReconstructResult
from renderer.io.atomic import atomic_output, make_output_dir
from renderer.io.ply import write_ply
from renderer.io.splat import write_splat

MESH_FILES = {"glb": "mesh.glb", "obj": "mesh.obj.zip"}


@dataclass
class Written:
    """The files written (``report.json`` last) and the report as written."""

    files: list[Path]
    report: dict


def export_result_mesh(result: ReconstructResult, path: Path | list[Path],
                       options: MeshExportOptions | None = None) -> dict:
    """Write a game-ready mesh of ``result`` (``recon.export.export_mesh``; ``path`` one path or a list,
    one per format): +Y up from ``result.up_direction()``, texture from ``result.photos`` when kept."""
    opts = dataclasses.replace(options if options is not None else MeshExportOptions(), up=result.up_direction())
    return export_mesh(result.mesh_source(), path, opts, photos=result.photos)


def check_formats(formats: tuple[str, ...] | list[str]) -> None:
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ReconError(f"unknown export format(s) {', '.join(bad)}; available: {', '.join(FORMATS)}")


def write_outputs(result: ReconstructResult, out_dir: str | Path, formats: tuple[str, ...] | list[str] = ("ply",),
                  mesh_options: MeshExportOptions | None = None) -> Written:
    """Write ``result`` into ``out_dir`` (see the module docstring). ``mesh_options`` apply to glb/obj
    (default: 20k faces, 1024 texture, +Y up). Returns the files and the report as written.

    An output folder that cannot be created or written, and any ``OSError`` while writing, is a
    one-line ``ReconError`` naming the folder (``check_output_dir`` tells the first before any work)."""
    out = Path(out_dir)
    check_formats(formats)
    make_output_dir(out)
    try:
        return _write_all(result, out, formats, mesh_options)
    except OSError as e:
        raise ReconError(f"{out}: cannot write the outputs: {e.strerror or e}") from None


def _write_all(result: ReconstructResult, out: Path, formats: tuple[str, ...] | list[str],
               mesh_options: MeshExportOptions | None) -> Written:
    t0 = time.perf_counter()
    report = copy.deepcopy(result.report)  # the result keeps its report as built
    files = [out / "gaussians.ply"]
    write_ply(files[0], result.gaussians)
    if "splat" in formats:
        files.append(out / "gaussians.splat")
        write_splat(files[-1], result.gaussians)
    files += _write_meshes(result, out, [fmt for fmt in MESH_FILES if fmt in formats], mesh_options, report)
    files.append(write_cameras_json(out / "cameras.json", result.cameras, files=result.names,
                                    extra={"mode": report.get("mode"), "pose_method": report.get("pose_method")}))
    report["timings"]["export"] = round(time.perf_counter() - t0, 4)
    report["timings"]["total"] = round(report["timings"].get("total_before_export", 0.0) + report["timings"]["export"], 4)
    report["outputs"] = [p.name for p in files] + ["report.json"]
    with atomic_output(out / "report.json") as f:
        f.write(utf8_text(json.dumps(report, indent=1, ensure_ascii=False)).encode("utf-8"))
    return Written([*files, out / "report.json"], report)


def _write_meshes(result: ReconstructResult, out: Path, mesh_formats: list[str],
                  mesh_options: MeshExportOptions | None, report: dict) -> list[Path]:
    """One surface, clean-up, UV layout and texture for every mesh format; their counts go in ``report``."""
    if not mesh_formats:
        return []
    rep = export_result_mesh(result, [out / MESH_FILES[fmt] for fmt in mesh_formats], mesh_options)
    report["meshes"] = {fmt: {k: rep[k] for k in ("faces", "vertices", "texture_size", "colors_from", "topology")}
                        for fmt in mesh_formats}
    if result.mesh_seconds is not None:
        report["timings"]["mesh"] = result.mesh_seconds
    report["timings"]["mesh_export"] = {k: round(v, 4) for k, v in rep["seconds"].items()}
    return [Path(f) for f in rep["files"]]
