"""The bad-input corpus (issue 23): user mistakes against ``reconstruct``, ``render``, ``export``, ``batch``
and the web app's upload check, every input generated here (no binary fixtures).

For each command-line case: exit code 2, exactly one line on stderr (``error: ...``), no traceback, no
path of the program's own files, and nothing written anywhere (the case's whole folder is unchanged,
``--out`` included). For each upload case: an ``UploadError`` of one line that names no server path,
and the session folder left empty. ``CASES`` is the table; ``docs/reliability.md`` is generated from it
(``python -m tools.reliability_doc``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.uploads import UploadError, UploadLimits, stage_uploads
from bench.scenes import random_scene
from recon.cli import main
from recon.io import write_cameras_json
from renderer import Cameras
from renderer.io import write_ply
from tools.reliability_doc import DOC, listed_cases

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "assets" / "examples"
PLY_PROPERTIES = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                  "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")


# ---- the case's folder and its generated files -----------------------------------------------------


@dataclass
class Ctx:
    """One case's folder (``tmp``), the tiny checkpoint, and generators of bad files inside ``tmp``."""

    tmp: Path
    ckpt: Path
    request: pytest.FixtureRequest

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def png(self, name: str, size: tuple[int, int] = (32, 32), seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format="PNG")
        return self.file(name, buf.getvalue())

    def images(self, folder: str, count: int, size: tuple[int, int] = (32, 32)) -> Path:
        for i in range(count):
            self.png(f"{folder}/view_{i:02d}.png", size, seed=i)
        return self.tmp / folder

    def truncated_png(self, name: str) -> Path:
        data = self.png(name, (64, 64)).read_bytes()
        return self.file(name, data[: len(data) // 2])

    def bomb_png(self, name: str, side: int = 30000) -> Path:
        """A PNG whose header declares ``side`` x ``side`` pixels (900 MP) over a few bytes of data."""
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
        return self.file(name, data)

    def loop(self, name: str = "loop") -> Path:
        path = self.tmp / name
        os.symlink(path.name, path)  # a link to itself: ELOOP
        return path

    def immutable(self, name: str = "immutable") -> Path:
        folder = self.tmp / name
        folder.mkdir()
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False).returncode:
            pytest.skip("chattr +i is not permitted here")
        self.request.addfinalizer(lambda: subprocess.run([chattr, "-i", str(folder)], capture_output=True, check=False))
        return folder

    def read_only(self, name: str = "read_only") -> Path:
        if os.geteuid() == 0:
            pytest.skip("root ignores folder permissions")
        folder = self.tmp / name
        folder.mkdir()
        folder.chmod(0o555)
        self.request.addfinalizer(lambda: folder.chmod(0o755))
        return folder

    def cameras(self, name: str, count: int, size: int = 32, files: list[str] | None = None,
                edit: Callable[[dict], None] | None = None) -> Path:
        """A cameras.json of ``count`` views (``view_NN.png``) looking at the origin; ``edit`` changes the JSON."""
        K = torch.tensor([[40.0, 0, size / 2], [0, 40, size / 2], [0, 0, 1]]).expand(count, 3, 3)
        c2w = torch.eye(4).repeat(count, 1, 1)
        c2w[:, 2, 3] = -3.0
        c2w[:, 0, 3] = torch.linspace(-0.5, 0.5, count)
        files = files or [f"view_{i:02d}.png" for i in range(count)]
        path = write_cameras_json(self.tmp / name, Cameras(c2w, K, size, size), files=files)
        if edit is not None:
            doc = json.loads(path.read_text())
            edit(doc)
            path.write_text(json.dumps(doc))  # json writes NaN and Infinity, and reads them back
        return path

    def posed_folder(self, name: str = "posed", count: int = 4, size: int = 32) -> Path:
        folder = self.images(name, count, (size, size))
        self.cameras(f"{name}/cameras.json", count, size)
        return folder

    def scene(self) -> tuple[Path, Path]:
        ply = self.tmp / "scene" / "gaussians.ply"
        ply.parent.mkdir(parents=True, exist_ok=True)
        write_ply(ply, random_scene(40))
        return ply, self.cameras("scene/cameras.json", 2)

    def ply_header(self, name: str, count: int, body_bytes: int) -> Path:
        header = f"ply\nformat binary_little_endian 1.0\nelement vertex {count}\n"
        header += "".join(f"property float {p}\n" for p in PLY_PROPERTIES) + "end_header\n"
        return self.file(name, header.encode() + b"\0" * body_bytes)

    def zip(self, name: str, members: dict[str, bytes]) -> Path:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for member, data in members.items():
                zf.writestr(member, data)
        return self.file(name, buf.getvalue())


@dataclass(frozen=True)
class Case:
    """One bad input: ``command`` (a CLI command, or ``upload`` for the app's check), what it is (one
    line, for docs/reliability.md), ``build`` (the arguments after the command, or for ``upload`` the
    ``stage_uploads`` arguments), a fragment the message must hold, and the reason the case may skip."""

    id: str
    command: str
    what: str
    build: Callable[[Ctx], list]
    expect: str = ""


def bad_values(prefix: str, command: str, flag: str, run, values) -> list[Case]:
    """One case per refused value of ``flag``: ``run(ctx, extra)`` builds the command line with
    ``extra = [flag=value]``, and the one-line message must name the flag."""
    return [Case(f"{prefix}{flag.lstrip('-')}-{v}", command, f"{flag} {v}",
                 lambda c, v=v: run(c, [f"{flag}={v}"]), flag) for v in values]


def R(ctx: Ctx, *inputs, extra=()) -> list:
    """``reconstruct`` arguments: inputs, ``--out``, the tiny checkpoint on the CPU, then ``extra``."""
    return [*inputs, "--out", ctx.out, "--checkpoint", ctx.ckpt, "--device", "cpu", *extra]


def D(ctx: Ctx, gaussians=None, cameras=None, extra=(), out=None) -> list:
    """``render`` arguments (a generated scene unless ``gaussians``/``cameras`` are given)."""
    if gaussians is None or cameras is None:
        ply, cams = ctx.scene()
        gaussians, cameras = gaussians or ply, cameras or cams
    return [gaussians, "--cameras", cameras, "--out", out or ctx.out, "--device", "cpu", *extra]


def E(ctx: Ctx, source=None, extra=(), to=None) -> list:
    """``export`` arguments (the generated scene's Gaussians unless ``source``)."""
    return [source or ctx.scene()[0], "--to", to or ctx.tmp / "mesh.glb", *extra]


def B(ctx: Ctx, root=None, extra=(), out=None) -> list:
    """``batch`` arguments: a root of one posed job unless ``root``."""
    if root is None:
        root = ctx.tmp / "root"
        shutil.copytree(EXAMPLES / "toy_posed", root / "job_a")
    return [root, "--out", out or ctx.out, "--checkpoint", ctx.ckpt, "--device", "cpu", *extra]


def _nan_pose(doc: dict) -> None:
    doc["frames"][1]["c2w"][0][3] = float("nan")


def _inf_pose(doc: dict) -> None:
    doc["frames"][0]["c2w"][1][3] = float("inf")


def _singular_pose(doc: dict) -> None:
    doc["frames"][2]["c2w"] = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


def _zero_focal(doc: dict) -> None:
    doc["frames"][0]["K"][0][0] = 0.0


def _mixed_sizes(ctx: Ctx) -> Path:
    folder = ctx.posed_folder("mixed")
    ctx.png("mixed/view_03.png", (40, 32), seed=3)
    return folder


def _extra_image(ctx: Ctx) -> Path:
    folder = ctx.posed_folder("extra")
    ctx.png("extra/view_04.png", seed=4)
    return folder


RECONSTRUCT = [
    Case("missing-input", "reconstruct", "an input path that does not exist",
         lambda c: R(c, c.tmp / "nowhere"), "no such file"),
    Case("zero-byte-png", "reconstruct", "a zero-byte .png",
         lambda c: R(c, c.file("a.png", b""), c.png("b.png")), "empty"),
    Case("truncated-png", "reconstruct", "a PNG cut in half",
         lambda c: R(c, c.truncated_png("a.png"), c.png("b.png")), "truncated"),
    Case("text-as-png", "reconstruct", "a text file named .png",
         lambda c: R(c, c.file("a.png", "not an image\n"), c.png("b.png")), "not a"),
    Case("bomb-png", "reconstruct", "a PNG whose header declares 30000x30000 pixels",
         lambda c: R(c, c.bomb_png("bomb.png")), "MP"),
    Case("empty-folder", "reconstruct", "a folder without images",
         lambda c: R(c, (c.tmp / "empty").mkdir() or c.tmp / "empty"), "no images"),
    Case("unknown-type", "reconstruct", "a file that is not an image (.obj)",
         lambda c: R(c, c.file("model.obj", "v 0 0 0\n")), "not a"),
    Case("gif-in-folder", "reconstruct", "a folder holding a GIF beside PNGs",
         lambda c: R(c, c.images("g", 2) and (c.file("g/anim.gif", b"GIF89a") and c.tmp / "g")), "GIF"),
    Case("input-symlink-loop", "reconstruct", "an input that is a symbolic link loop",
         lambda c: R(c, c.loop()), "no such file"),
    Case("out-is-file", "reconstruct", "--out names an existing file",
         lambda c: R(c, EXAMPLES / "toy_posed") if c.file("out", "keep") else [], "not a folder"),
    Case("out-under-file", "reconstruct", "--out inside a path that is a file",
         lambda c: R(c, EXAMPLES / "toy_posed")[:1] + ["--out", c.file("f", "x") / "o"] + R(c)[2:], "not a folder"),
    Case("out-immutable", "reconstruct", "--out inside an immutable folder (chattr +i)",
         lambda c: R(c, EXAMPLES / "toy_posed")[:1] + ["--out", c.immutable() / "o"] + R(c)[2:], "permission denied"),
    Case("out-read-only", "reconstruct", "--out inside a read-only folder (mode 555; skipped as root)",
         lambda c: R(c, EXAMPLES / "toy_posed")[:1] + ["--out", c.read_only() / "o"] + R(c)[2:], "permission denied"),
    Case("out-symlink-loop", "reconstruct", "--out is a symbolic link loop",
         lambda c: R(c, EXAMPLES / "toy_posed")[:1] + ["--out", c.loop()] + R(c)[2:], "link loop"),
    Case("export-unknown", "reconstruct", "--export with an unknown format",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--export", "ply,fbx"]), "fbx"),
    *bad_values("", "reconstruct", "--foreground-ratio", lambda c, x: R(c, EXAMPLES / "toy_single", extra=x),
                ("nan", "inf", "-inf", "0", "-1", "1.5", "abc")),
    Case("refine-steps-negative", "reconstruct", "--refine-steps -1",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--refine-steps=-1"]), "--refine-steps"),
    *bad_values("", "reconstruct", "--refine-seconds", lambda c, x: R(c, EXAMPLES / "toy_posed", extra=x),
                ("nan", "inf", "-1")),
    Case("faces-zero", "reconstruct", "--faces 0",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--faces", "0"]), "--faces"),
    Case("texture-size-odd", "reconstruct", "--texture-size 300 (not a power of two offered)",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--texture-size", "300"]), "--texture-size"),
    Case("mode-unknown", "reconstruct", "--mode sideways",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--mode", "sideways"]), "--mode"),
    Case("views-out-of-range", "reconstruct", "--views 99 of 4 views",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--views", "99"]), "out of range"),
    Case("views-no-extension", "reconstruct", "--views view_01 (the extension left out)",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--views", "view_01"]), "did you mean 'view_01.png'"),
    Case("views-empty-range", "reconstruct", "--views 5-2",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--views", "5-2"]), "empty"),
    Case("cameras-missing", "reconstruct", "--cameras names a missing file",
         lambda c: R(c, c.images("i", 2), extra=["--cameras", c.tmp / "nowhere.json"]), "no such file"),
    Case("cameras-not-cameras", "reconstruct", "--cameras names a text file",
         lambda c: R(c, c.images("i", 2), extra=["--cameras", c.file("notes.txt", "hi")]), "not a camera file"),
    Case("cameras-malformed-json", "reconstruct", "--cameras names malformed JSON",
         lambda c: R(c, c.images("i", 2), extra=["--cameras", c.file("c.json", "{\"frames\": [")]), "malformed"),
    Case("cameras-nan", "reconstruct", "a camera file with a NaN pose",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 4, edit=_nan_pose)]), "NaN"),
    Case("cameras-inf", "reconstruct", "a camera file with an infinite pose",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 4, edit=_inf_pose)]), "infinite"),
    Case("cameras-singular", "reconstruct", "a camera file with a singular (all-zero) rotation",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 4, edit=_singular_pose)]),
         "not a proper rotation"),
    Case("cameras-zero-focal", "reconstruct", "a camera file with a zero focal length",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 4, edit=_zero_focal)]), "focal"),
    Case("count-more-images", "reconstruct", "5 images with a camera file of 4",
         lambda c: R(c, c.images("i", 5), extra=["--cameras", c.cameras("c.json", 4)]),
         "no camera for 1 of 5 image(s): view_04.png"),
    Case("count-two-for-four", "reconstruct", "4 images with a camera file of 2",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 2)]), "no camera for 2 of 4"),
    Case("count-folder-extra-image", "reconstruct", "a dataset folder with an image its cameras.json lacks",
         lambda c: R(c, _extra_image(c)), "no camera for 1 image(s)"),
    Case("names-do-not-match", "reconstruct", "a camera file whose frames name other images",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 4, files=[f"o{i}.png" for i in range(4)])]),
         "no camera for 4 of 4"),
    Case("unnamed-count-mismatch", "reconstruct", "a camera file that names no images, 3 cameras for 4 images",
         lambda c: R(c, c.images("i", 4), extra=["--cameras", c.cameras("c.json", 3, files=["0", "1", "2"])]),
         "3 cameras for 4 images"),
    Case("mixed-sizes-posed", "reconstruct", "posed images of two sizes",
         lambda c: R(c, _mixed_sizes(c)), "one size"),
    Case("single-mode-four-images", "reconstruct", "--mode single with 4 images",
         lambda c: R(c, EXAMPLES / "toy_unposed", extra=["--mode", "single"]), "single mode takes one image"),
    Case("posed-mode-no-cameras", "reconstruct", "--mode posed without cameras",
         lambda c: R(c, EXAMPLES / "toy_unposed", extra=["--mode", "posed"]), "needs cameras"),
    Case("unposed-mode-one-image", "reconstruct", "--mode unposed with 1 image",
         lambda c: R(c, EXAMPLES / "toy_single", extra=["--mode", "unposed"]), "at least 2 images"),
    Case("checkpoint-missing", "reconstruct", "--checkpoint names a missing folder",
         lambda c: R(c, EXAMPLES / "toy_posed")[:-4] + ["--checkpoint", c.tmp / "nowhere", "--device", "cpu"],
         "not a checkpoint folder"),
    Case("device-unknown", "reconstruct", "--device tpu",
         lambda c: R(c, EXAMPLES / "toy_posed", extra=["--device", "tpu"]), "--device"),
    Case("mask-unknown", "reconstruct", "--mask magic",
         lambda c: R(c, EXAMPLES / "toy_single", extra=["--mask", "magic"]), "--mask"),
]

RENDER = [
    Case("gaussians-missing", "render", "the Gaussians file does not exist",
         lambda c: D(c, gaussians=c.tmp / "nowhere.ply"), "not found"),
    Case("ply-zero-byte", "render", "a zero-byte .ply",
         lambda c: D(c, gaussians=c.file("g.ply", b"")), "empty"),
    Case("ply-text", "render", "a text file named .ply",
         lambda c: D(c, gaussians=c.file("g.ply", "hello\n")), "not a PLY"),
    Case("ply-huge-count", "render", "a PLY header declaring 10^12 vertices over 200 bytes",
         lambda c: D(c, gaussians=c.ply_header("g.ply", 10**12, 200)), "truncated"),
    Case("ply-truncated", "render", "a PLY of 100 declared vertices holding 3",
         lambda c: D(c, gaussians=c.ply_header("g.ply", 100, 68 * 3)), "truncated"),
    Case("splat-odd-size", "render", "a .splat of 33 bytes (not a multiple of 32)",
         lambda c: D(c, gaussians=c.file("g.splat", bytes(33))), "multiple of 32"),
    Case("render-cameras-missing", "render", "--cameras names a missing file",
         lambda c: D(c, cameras=c.tmp / "nowhere.json"), "no such file"),
    Case("render-cameras-nan", "render", "a camera file with a NaN pose",
         lambda c: D(c, cameras=c.cameras("c.json", 3, edit=_nan_pose)), "NaN"),
    Case("render-cameras-singular", "render", "a camera file with a singular rotation",
         lambda c: D(c, cameras=c.cameras("c.json", 3, edit=_singular_pose)), "not a proper rotation"),
    *bad_values("render-", "render", "--scale", lambda c, x: D(c, extra=x), ("nan", "inf", "0", "-1", "5")),
    Case("background-nan", "render", "--background nan,0,0",
         lambda c: D(c, extra=["--background", "nan,0,0"]), "--background"),
    Case("background-out-of-range", "render", "--background 2,0,0",
         lambda c: D(c, extra=["--background", "2,0,0"]), "--background"),
    Case("sh-degree-too-high", "render", "--sh-degree 9 for a file of degree 3 or less",
         lambda c: D(c, extra=["--sh-degree", "9"]), "--sh-degree"),
    Case("render-views-out-of-range", "render", "--views 99 of 2 cameras",
         lambda c: D(c, extra=["--views", "99"]), "out of range"),
    Case("render-views-unknown", "render", "--views names no camera",
         lambda c: D(c, extra=["--views", "nothing_here"]), "no view named"),
    Case("render-out-is-file", "render", "--out names an existing file",
         lambda c: D(c, out=c.file("o", "keep")), "not a folder"),
    Case("render-out-under-file", "render", "--out inside a path that is a file",
         lambda c: D(c, out=c.file("f", "x") / "o"), "not a folder"),
    Case("render-out-immutable", "render", "--out inside an immutable folder (chattr +i)",
         lambda c: D(c, out=c.immutable() / "o"), "permission denied"),
    Case("render-out-symlink-loop", "render", "--out is a symbolic link loop",
         lambda c: D(c, out=c.loop()), "link loop"),
]

EXPORT = [
    Case("export-source-missing", "export", "the source does not exist",
         lambda c: E(c, source=c.tmp / "nowhere.ply"), "no such file"),
    Case("export-folder-without-ply", "export", "a run folder without gaussians.ply",
         lambda c: E(c, source=(c.tmp / "run").mkdir() or c.tmp / "run"), "no gaussians.ply"),
    Case("export-ply-huge-count", "export", "a PLY header declaring 10^12 vertices",
         lambda c: E(c, source=c.ply_header("g.ply", 10**12, 200)), "truncated"),
    Case("export-splat-odd-size", "export", "a .splat of 33 bytes",
         lambda c: E(c, source=c.file("g.splat", bytes(33))), "multiple of 32"),
    *bad_values("export-", "export", "--scale", lambda c, x: E(c, extra=x), ("nan", "inf", "0", "-1")),
    *bad_values("export-", "export", "--up", lambda c, x: E(c, extra=x), ("nan,0,1", "inf,0,0", "0,0,0", "1,2")),
    *bad_values("export-", "export", "--lod", lambda c, x: E(c, extra=x), ("nan", "2", "0.5,inf")),
    Case("export-faces-zero", "export", "--faces 0",
         lambda c: E(c, extra=["--faces", "0"]), "--faces"),
    Case("export-to-folder", "export", "--to names a folder",
         lambda c: E(c, to=(c.tmp / "dir").mkdir() or c.tmp / "dir"), "is a folder"),
    Case("export-to-missing-folder", "export", "--to inside a folder that does not exist",
         lambda c: E(c, to=c.tmp / "no" / "m.glb"), "does not exist"),
    Case("export-to-unknown-format", "export", "--to mesh.fbx",
         lambda c: E(c, to=c.tmp / "mesh.fbx"), "fbx"),
    Case("export-to-immutable", "export", "--to inside an immutable folder (chattr +i)",
         lambda c: E(c, to=c.immutable() / "m.glb"), "permission denied"),
    Case("export-photos-missing", "export", "--photos names a missing folder",
         lambda c: E(c, extra=["--photos", c.tmp / "nowhere"]), "--photos"),
]

BATCH = [
    Case("batch-root-missing", "batch", "ROOT does not exist",
         lambda c: B(c, root=c.tmp / "nowhere"), "not a folder"),
    Case("batch-root-is-file", "batch", "ROOT is a file",
         lambda c: B(c, root=c.file("root", "x")), "not a folder"),
    Case("batch-root-no-jobs", "batch", "ROOT has no sub-folders",
         lambda c: B(c, root=(c.tmp / "r").mkdir() or c.tmp / "r"), "no job sub-folders"),
    Case("batch-workers-zero", "batch", "--workers 0",
         lambda c: B(c, extra=["--workers", "0"]), "--workers"),
    Case("batch-export-unknown", "batch", "--export fbx",
         lambda c: B(c, extra=["--export", "fbx"]), "fbx"),
    Case("batch-refine-negative", "batch", "--refine-steps -1",
         lambda c: B(c, extra=["--refine-steps=-1"]), "--refine-steps"),
    Case("batch-checkpoint-missing", "batch", "--checkpoint names a missing folder",
         lambda c: B(c)[:-4] + ["--checkpoint", c.tmp / "nowhere", "--device", "cpu"], "checkpoint"),
    Case("batch-out-is-file", "batch", "--out names an existing file",
         lambda c: B(c, out=c.file("o", "keep")), "not a folder"),
    Case("batch-out-under-file", "batch", "--out inside a path that is a file",
         lambda c: B(c, out=c.file("f", "x") / "o"), "not a folder"),
    Case("batch-out-immutable", "batch", "--out inside an immutable folder (chattr +i)",
         lambda c: B(c, out=c.immutable() / "o"), "permission denied"),
    Case("batch-engine-unknown", "batch", "--engine spark",
         lambda c: B(c, extra=["--engine", "spark"]), "--engine"),
]


def U(files, camera=None, **limits) -> list:
    """``stage_uploads`` arguments: image uploads, the camera upload and ``UploadLimits`` fields."""
    return [[str(f) for f in files], str(camera) if camera else None, limits]


UPLOAD = [
    Case("upload-nothing", "upload", "no photos", lambda c: U([]), "no photos"),
    Case("upload-text-file", "upload", "a .txt among the photos",
         lambda c: U([c.png("a.png"), c.file("notes.txt", "hi")]), "only JPEG"),
    Case("upload-camera-as-photo", "upload", "a camera file dropped with the photos",
         lambda c: U([c.png("a.png"), c.file("cameras.json", "{}")]), "Camera file"),
    Case("upload-zero-byte", "upload", "a zero-byte .png",
         lambda c: U([c.file("a.png", b"")]), "not a JPEG"),
    Case("upload-text-as-png", "upload", "a text file named .png",
         lambda c: U([c.file("a.png", "not an image")]), "not a JPEG"),
    Case("upload-bomb", "upload", "a PNG header declaring 30000x30000 pixels (decompression bomb)",
         lambda c: U([c.bomb_png("bomb.png")]), "too large"),
    Case("upload-over-pixel-limit", "upload", "a PNG header over the app's 16 MP limit",
         lambda c: U([c.bomb_png("big.png", side=5000)]), "over the limit"),
    Case("upload-over-byte-limit", "upload", "a photo over the per-file byte limit",
         lambda c: U([c.png("a.png", (64, 64))], max_file_bytes=1000), "MB"),
    Case("upload-too-many", "upload", "more photos than the limit",
         lambda c: U([c.png(f"p{i}.png", (8, 8), seed=i) for i in range(3)], max_files=2), "limit is 2"),
    Case("upload-corrupt-zip", "upload", "a .zip that is not a zip archive",
         lambda c: U([c.file("photos.zip", b"PK\x03\x04 broken")]), "not a readable zip"),
    Case("upload-zip-without-images", "upload", "a zip holding no images",
         lambda c: U([c.zip("photos.zip", {"notes.txt": b"hi"})]), "no JPEG"),
    Case("upload-traversal-zip", "upload", "a zip whose member is ../../evil.png (and not an image)",
         lambda c: U([c.zip("photos.zip", {"../../evil.png": b"not an image"})]), "not a JPEG"),
    Case("upload-zip-bomb", "upload", "a zip member that inflates to 26 MB of zeros",
         lambda c: U([c.zip("photos.zip", {"big.png": bytes(26 * 2**20)})]), "over the limit"),
    Case("upload-zip-too-many", "upload", "a zip with more images than the limit",
         lambda c: U([c.zip("photos.zip", {f"p{i}.png": b"x" for i in range(4)})], max_files=2), "limit is 2"),
    Case("upload-camera-wrong-type", "upload", "a camera upload that is a .txt",
         lambda c: U([c.png("a.png")], camera=c.file("cams.txt", "hi")), "camera files are"),
]

CASES: list[Case] = [*RECONSTRUCT, *RENDER, *EXPORT, *BATCH, *UPLOAD]
CLI_CASES = [c for c in CASES if c.command != "upload"]


def _tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (links not followed) with its type, size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _program_paths(text: str) -> list[str]:
    """Paths of the program's own files (or of the interpreter's) in a message: none belong there."""
    return [p for p in (str(REPO / "recon"), str(REPO / "renderer"), str(REPO / "app"), "site-packages")
            if p in text]


@pytest.fixture
def ctx(tmp_path, tiny_checkpoint, request) -> Ctx:
    folder = tmp_path / "case"
    folder.mkdir()
    return Ctx(folder, tiny_checkpoint, request)


def test_the_corpus_is_large_and_covers_every_command():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert {c.command for c in CASES} == {"reconstruct", "render", "export", "batch", "upload"}


def test_docs_reliability_lists_every_case():
    """docs/reliability.md is generated from this module (``python -m tools.reliability_doc``)."""
    assert listed_cases(DOC.read_text()) == [c.id for c in CASES], "run python -m tools.reliability_doc"


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input(case: Case, ctx: Ctx, capsys):
    args = [str(a) for a in case.build(ctx)]
    before = _tree(ctx.tmp)
    code = main([case.command, *args])
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out and not _program_paths(err), err
    assert case.expect in err, err
    assert _tree(ctx.tmp) == before, "something was written"


UPLOAD_CASES = [c for c in CASES if c.command == "upload"]


@pytest.mark.parametrize("case", UPLOAD_CASES, ids=[c.id for c in UPLOAD_CASES])
def test_upload_bad_input(case: Case, ctx: Ctx):
    files, camera, limits = case.build(ctx)
    session = ctx.tmp / "server" / "session_0"
    before = _tree(ctx.tmp)
    with pytest.raises(UploadError) as info:
        stage_uploads(files, camera, session, UploadLimits(**limits))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert str(ctx.tmp) not in message and "session_" not in message and not _program_paths(message), message
    assert case.expect in message, message
    assert list(session.iterdir()) == [], "a refused upload left files in the session"
    after = {k: v for k, v in _tree(ctx.tmp).items() if not k.startswith("server")}
    assert after == before, "something was written outside the session"
