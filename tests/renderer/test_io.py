"""Gaussian file IO: exact PLY round trips, .splat quantisation, foreign PLYs, bad input, atomic writes."""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.errors import FileFormatError, ReconError
from renderer.gaussians import Gaussians
from renderer.io import (
    PlyArrays,
    read_gaussians,
    read_ply,
    read_ply_raw,
    read_splat,
    write_gaussians,
    write_ply,
    write_ply_raw,
    write_splat,
)
from renderer.io.ply import ply_property_names
from renderer.io.splat import splat_importance
from renderer.sh import SH_C0

plyfile = pytest.importorskip("plyfile")


def random_gaussians(n: int, degree: int = 0, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen) * 3,
        quats_wxyz=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
        scales=torch.exp(torch.randn(n, 3, generator=gen) - 3),
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=gen),
    )


def assert_close_activated(a: Gaussians, b: Gaussians) -> None:
    assert a.sh_degree == b.sh_degree and len(a) == len(b)
    assert torch.equal(a.means, b.means) and torch.equal(a.sh, b.sh)  # stored as they are
    torch.testing.assert_close(b.scales, a.scales, rtol=1e-6, atol=0)
    torch.testing.assert_close(b.opacities, a.opacities, rtol=1e-6, atol=0)
    torch.testing.assert_close(b.quats_wxyz, a.quats_wxyz, rtol=0, atol=1e-6)


def assert_raw_equal(a: PlyArrays, b: PlyArrays) -> None:
    for name in ("means", "f_dc", "f_rest", "opacity_logits", "log_scales", "quats_wxyz"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.float32 and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name  # bit-identical, NaN-free by construction


# ---- PLY round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 1000])
def test_ply_round_trip(tmp_path, degree, n):
    g = random_gaussians(n, degree, seed=degree)
    path = tmp_path / "g.ply"
    write_ply(path, g)
    assert path.stat().st_size == len(header_bytes(path)) + 4 * n * (17 + 3 * ((degree + 1) ** 2 - 1))
    assert_raw_equal(read_ply_raw(path), PlyArrays.from_gaussians(g))
    assert_close_activated(g, read_ply(path))
    # Raw values written as they are come back bit-identically, including unnormalised quaternions.
    raw = PlyArrays.from_gaussians(g)
    raw.quats_wxyz *= 3.0
    write_ply_raw(tmp_path / "raw.ply", raw)
    assert_raw_equal(read_ply_raw(tmp_path / "raw.ply"), raw)


def test_ply_chunked_write_and_read_match_single_chunk(tmp_path):
    g = random_gaussians(2500, degree=2)
    write_ply(tmp_path / "one.ply", g)
    write_ply(tmp_path / "many.ply", g, chunk_rows=1000)
    assert (tmp_path / "one.ply").read_bytes() == (tmp_path / "many.ply").read_bytes()
    assert_raw_equal(read_ply_raw(tmp_path / "one.ply", chunk_rows=999), read_ply_raw(tmp_path / "one.ply"))
    assert_close_activated(g, read_ply(tmp_path / "one.ply", chunk_rows=7))


def test_ply_f_rest_is_channel_major(tmp_path):
    g = random_gaussians(4, degree=3)
    k = 16
    g.sh[:] = torch.arange(k * 3, dtype=torch.float32).reshape(1, k, 3)  # sh[:, k, c] = 3k + c
    write_ply(tmp_path / "g.ply", g)
    v = plyfile.PlyData.read(str(tmp_path / "g.ply"))["vertex"]
    for c in range(3):
        assert v[f"f_dc_{c}"][0] == c
        for kk in range(1, k):
            assert v[f"f_rest_{c * (k - 1) + kk - 1}"][0] == 3 * kk + c
    assert (v["nx"] == 0).all() and (v["ny"] == 0).all() and (v["nz"] == 0).all()
    np.testing.assert_allclose(v["opacity"], torch.logit(g.opacities.double()).numpy(), rtol=1e-6)
    np.testing.assert_allclose(v["scale_1"], torch.log(g.scales[:, 1].double()).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(v["rot_0"], g.quats_wxyz[:, 0].numpy())


def header_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: data.index(b"end_header\n") + len(b"end_header\n")]


def test_ply_header_is_inria_layout(tmp_path):
    write_ply(tmp_path / "g.ply", random_gaussians(5, degree=3))
    lines = header_bytes(tmp_path / "g.ply").decode("ascii").splitlines()
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 5"]
    assert lines[-1] == "end_header"
    expected = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    expected += [f"f_rest_{i}" for i in range(45)]
    expected += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert lines[3:-1] == [f"property float {name}" for name in expected]
    assert ply_property_names(3) == expected


def test_ply_opacity_zero_and_one_are_clamped(tmp_path):
    g = random_gaussians(3)
    g.opacities[:] = torch.tensor([0.0, 1.0, 0.5])
    write_ply(tmp_path / "g.ply", g)
    raw = read_ply_raw(tmp_path / "g.ply")
    assert np.isfinite(raw.opacity_logits).all()
    o = read_ply(tmp_path / "g.ply").opacities
    assert ((o > 0) & (o < 1)).all()
    torch.testing.assert_close(o, torch.tensor([1e-7, 1 - 1e-7, 0.5]), rtol=1e-5, atol=0)


@pytest.mark.parametrize("degree", [0, 1])
def test_ply_empty(tmp_path, degree):
    write_ply(tmp_path / "g.ply", Gaussians.empty(sh_degree=degree))
    h = read_ply(tmp_path / "g.ply")
    assert len(h) == 0 and h.sh_degree == degree
    raw = read_ply_raw(tmp_path / "g.ply")
    write_ply_raw(tmp_path / "raw.ply", raw)
    assert_raw_equal(read_ply_raw(tmp_path / "raw.ply"), raw)


def test_ply_two_million_splats_streams(tmp_path):
    n = 2_000_000
    g = Gaussians(
        means=torch.randn(n, 3),
        quats_wxyz=torch.nn.functional.normalize(torch.randn(n, 4), dim=-1),
        scales=torch.rand(n, 3) + 0.01,
        opacities=torch.rand(n) * 0.9 + 0.05,
        sh=torch.randn(n, 1, 3),
    )
    path = tmp_path / "big.ply"
    file_bytes = n * 17 * 4
    tracemalloc.start()  # numpy reports its buffers to tracemalloc; torch tensors are not counted
    try:
        write_ply(path, g)
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        h = read_ply(path)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size == len(header_bytes(path)) + file_bytes
    assert write_peak < 0.25 * file_bytes  # chunked: never a full-size copy
    assert read_peak < n * 14 * 4 + 0.25 * file_bytes  # the output arrays plus one chunk
    assert torch.equal(h.means, g.means)
    torch.testing.assert_close(h.scales, g.scales, rtol=1e-6, atol=0)


# ---- PLYs written by other tools ----------------------------------------------------------------


def foreign_vertex_array(g: Gaussians, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """A structured vertex array with the INRIA properties shuffled, no normals, and extras."""
    raw = PlyArrays.from_gaussians(g)
    cols = {"x": raw.means[:, 0], "y": raw.means[:, 1], "z": raw.means[:, 2], "opacity": raw.opacity_logits}
    for i in range(3):
        cols[f"f_dc_{i}"] = raw.f_dc[:, i]
        cols[f"scale_{i}"] = raw.log_scales[:, i]
    for i in range(raw.f_rest.shape[1]):
        cols[f"f_rest_{i}"] = raw.f_rest[:, i]
    for i in range(4):
        cols[f"rot_{i}"] = raw.quats_wxyz[:, i]
    names = list(cols)
    rng.shuffle(names)
    fields = [(name, dtype) for name in names] + [("red", "u1"), ("confidence", "f8")]
    arr = np.zeros(len(g), fields)
    for name in names:
        arr[name] = cols[name]
    arr["red"] = 7
    return arr


@pytest.mark.parametrize(
    "text, byte_order, dtype",
    [
        (False, "<", "f4"),
        (False, ">", "f4"),
        (False, "<", "f8"),
        (False, ">", "f8"),
        (True, "=", "f4"),
        (True, "=", "f8"),
    ],
)
def test_read_ply_written_by_plyfile(tmp_path, text, byte_order, dtype):
    g = random_gaussians(50, degree=1)
    arr = foreign_vertex_array(g, dtype, np.random.default_rng(1))
    faces = plyfile.PlyElement.describe(np.zeros(2, [("vertex_indices", "i4", (3,))]), "face")
    path = tmp_path / "foreign.ply"
    vertex = plyfile.PlyElement.describe(arr, "vertex")
    plyfile.PlyData([vertex, faces], text=text, byte_order=byte_order, comments=["made by a test"]).write(str(path))
    h = read_ply(path)
    if text:  # plyfile prints floats with ~9 significant digits: exact for f4, close for f8
        torch.testing.assert_close(h.means, g.means, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(h.sh, g.sh, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(h.scales, g.scales, rtol=1e-5, atol=0)
        torch.testing.assert_close(h.opacities, g.opacities, rtol=1e-5, atol=0)
        torch.testing.assert_close(h.quats_wxyz, g.quats_wxyz, rtol=0, atol=1e-6)
    else:
        assert_close_activated(g, h)


def test_read_ply_with_element_before_vertex(tmp_path):
    g = random_gaussians(10)
    arr = foreign_vertex_array(g, "f4", np.random.default_rng(2))
    ids = np.zeros(3, [("id", "i2")])
    ids["id"] = [4, 5, 6]
    other = plyfile.PlyElement.describe(ids, "camera")
    for text in (False, True):
        path = tmp_path / f"pre{text}.ply"
        plyfile.PlyData([other, plyfile.PlyElement.describe(arr, "vertex")], text=text).write(str(path))
        assert_close_activated(g, read_ply(path))


# ---- bad input ----------------------------------------------------------------------------------


def write_plyfile(path: Path, arr: np.ndarray, text: bool = False) -> Path:
    plyfile.PlyData([plyfile.PlyElement.describe(arr, "vertex")], text=text).write(str(path))
    return path


def good_array(n: int = 4, degree: int = 0) -> np.ndarray:
    names = ply_property_names(degree)
    arr = np.zeros(n, [(name, "f4") for name in names])
    arr["rot_0"] = 1.0
    return arr


def bad_ply_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the error must contain)."""
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (tmp / "nope.ply", "not found")
    (tmp / "adir.ply").mkdir()
    cases["folder"] = (tmp / "adir.ply", "folder")
    (tmp / "empty.ply").write_bytes(b"")
    cases["empty"] = (tmp / "empty.ply", "empty")
    (tmp / "junk.ply").write_bytes(os.urandom(64))
    cases["not a ply"] = (tmp / "junk.ply", "not a PLY")
    (tmp / "noend.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 3\n")
    cases["no end_header"] = (tmp / "noend.ply", "end_header")
    good = write_plyfile(tmp / "good.ply", good_array(100))
    (tmp / "trunc.ply").write_bytes(good.read_bytes()[:-5])
    cases["truncated"] = (tmp / "trunc.ply", "truncated")
    arr = good_array(10)
    arr["x"] = np.linspace(1.2345678, 2.3456789, 10)  # long rows: the row count check must catch it
    write_plyfile(tmp / "trunc_ascii.ply", arr, text=True)
    lines = (tmp / "trunc_ascii.ply").read_bytes().splitlines(keepends=True)
    (tmp / "trunc_ascii.ply").write_bytes(b"".join(lines[:-1]))
    cases["truncated ascii"] = (tmp / "trunc_ascii.ply", "fewer than 10 ascii vertex rows")
    (tmp / "short_row.ply").write_bytes(b"".join(lines[:-2] + [b"1 2 3\n", lines[-1]]))
    cases["short ascii row"] = (tmp / "short_row.ply", "does not have 17 values")
    plyfile.PlyData([plyfile.PlyElement.describe(good_array(3), "point")]).write(str(tmp / "novertex.ply"))
    cases["no vertex element"] = (tmp / "novertex.ply", "no 'vertex' element")
    keep = [(n, "f4") for n in ply_property_names(0) if n not in ("opacity", "scale_2")]
    write_plyfile(tmp / "missing_props.ply", np.ones(4, keep))
    cases["missing properties"] = (tmp / "missing_props.ply", "opacity, scale_2")
    arr = good_array()
    arr["scale_1"][2] = np.nan
    cases["nan"] = (write_plyfile(tmp / "nan.ply", arr), "non-finite scale_*")
    arr = good_array()
    arr["x"][1] = np.inf
    cases["inf"] = (write_plyfile(tmp / "inf.ply", arr, text=True), "non-finite x/y/z")
    arr = np.zeros(4, [(n, "f8") for n in ply_property_names(0)])
    arr["rot_0"] = 1.0
    arr["y"][3] = 1e300  # beyond float32
    cases["double overflow"] = (write_plyfile(tmp / "big.ply", arr), "vertex 3")
    arr = good_array()
    arr["rot_0"][3] = 0.0
    cases["zero quaternion"] = (write_plyfile(tmp / "zeroq.ply", arr), "zero-length")
    arr = good_array()
    arr["scale_0"][0] = 200.0  # exp overflows float32
    cases["scale overflow"] = (write_plyfile(tmp / "bigscale.ply", arr), "scale_* out of range")
    extra = np.zeros(4, good_array().dtype.descr + [(f"f_rest_{i}", "f4") for i in range(5)])
    extra["rot_0"] = 1.0
    cases["f_rest count"] = (write_plyfile(tmp / "rest5.ply", extra), "5 f_rest_*")
    gap = np.zeros(4, good_array().dtype.descr + [(f"f_rest_{i + 1}", "f4") for i in range(9)])
    gap["rot_0"] = 1.0
    cases["f_rest gap"] = (write_plyfile(tmp / "gap.ply", gap), "numbered")
    write_plyfile(tmp / "word.ply", good_array(), text=True)
    data = (tmp / "word.ply").read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    (tmp / "word.ply").write_bytes(data[:body] + data[body:].replace(b"0", b"z", 1))
    cases["ascii word"] = (tmp / "word.ply", "non-numeric")
    return cases


def test_bad_ply_inputs_raise_one_line_errors(tmp_path):
    for name, (path, needle) in bad_ply_cases(tmp_path).items():
        with pytest.raises(FileFormatError) as info:
            read_ply(path)
        message = str(info.value)
        assert path.name in message and "\n" not in message, name
        assert needle in message, (name, message)


def test_bad_splat_inputs_raise_one_line_errors(tmp_path):
    rec = np.zeros(3, [("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("r", "u1", 4)])
    rec["s"] = 1.0
    rec["r"] = [255, 128, 128, 128]
    cases = {}
    cases["missing"] = (tmp_path / "nope.splat", "not found")
    (tmp_path / "odd.splat").write_bytes(rec.tobytes() + b"x")
    cases["size"] = (tmp_path / "odd.splat", "multiple of 32")
    for name, field, value, needle in [
        ("nan", "p", np.nan, "non-finite position"),
        ("inf", "s", np.inf, "non-finite scale"),
        ("zero scale", "s", 0.0, "non-positive scale"),
        ("zero quaternion", "r", 128, "zero-length"),
    ]:
        bad = rec.copy()
        bad[field][1] = value
        (tmp_path / f"{name}.splat").write_bytes(bad.tobytes())
        cases[name] = (tmp_path / f"{name}.splat", needle)
    for name, (path, needle) in cases.items():
        with pytest.raises(FileFormatError) as info:
            read_splat(path)
        message = str(info.value)
        assert path.name in message and "\n" not in message and needle in message, (name, message)


# ---- failed writes leave nothing behind ---------------------------------------------------------


def broken_gaussians(kind: str) -> Gaussians:
    g = random_gaussians(10, degree=1)
    if kind == "shape":
        g.sh = torch.zeros(10, 5, 3)  # bypasses __post_init__, like a buggy caller would
    elif kind == "nan":
        g.means[3, 1] = float("nan")
    elif kind == "scale":
        g.scales[0, 0] = 0.0
    return g


@pytest.mark.parametrize("writer", [write_ply, write_splat])
@pytest.mark.parametrize("kind", ["shape", "nan", "scale", "no folder"])
def test_failed_write_leaves_no_partial_file(tmp_path, writer, kind):
    target = tmp_path / ("missing_dir" if kind == "no folder" else "") / "out.bin"
    if kind != "no folder":
        target.write_bytes(b"previous contents")
    with pytest.raises(FileFormatError) as info:
        writer(target, broken_gaussians(kind))
    assert target.name in str(info.value) and "\n" not in str(info.value)
    if kind != "no folder":
        assert target.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if kind == "no folder" else ["out.bin"])


def test_write_error_midway_removes_temp_file(tmp_path, monkeypatch):
    from renderer.io import ply

    def boom(raw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ply, "_pack_rows", boom)
    with pytest.raises(RuntimeError):
        write_ply(tmp_path / "g.ply", random_gaussians(10))
    assert list(tmp_path.iterdir()) == []


# ---- .splat -------------------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [0, 3])
@pytest.mark.parametrize("n", [1, 1000])
def test_splat_round_trip(tmp_path, degree, n):
    g = random_gaussians(n, degree, seed=n + degree)
    g.sh[:7, 0] = torch.tensor([-5.0, 5.0, 0.0])  # colours beyond [0, 1] are clipped
    path = tmp_path / "g.splat"
    write_splat(path, g, chunk_rows=300)
    assert path.stat().st_size == 32 * n
    h = read_splat(path)
    assert h.sh_degree == 0 and len(h) == n
    order = torch.from_numpy(np.argsort(-splat_importance(g.opacities.numpy(), g.scales.numpy()), kind="stable"))
    assert not torch.equal(order, torch.arange(n)) or n == 1  # the test does exercise sorting
    g = g[order]
    assert torch.equal(h.means, g.means) and torch.equal(h.scales, g.scales)
    rgb = g.rgb_dc.clamp(0, 1)
    assert (h.rgb_dc - rgb).abs().max() <= 0.5 / 255 + 1e-6
    assert (h.opacities - g.opacities).abs().max() <= 0.5 / 255 + 1e-6
    q, p = g.quats_wxyz, h.quats_wxyz
    p = p * torch.sign((p * q).sum(-1, keepdim=True))  # q and -q are the same rotation
    assert (p - q).abs().max() <= 1.0 / 128
    importance = g.opacities.double() * g.scales.double().prod(-1)  # g is now in file order
    assert (importance[:-1] >= importance[1:]).all()  # written most important first


def test_splat_byte_layout(tmp_path):
    g = Gaussians.from_rgb(
        means=torch.tensor([[1.0, -2.0, 3.5]]),
        rgb=torch.tensor([[1.0, 0.0, 0.5]]),
        scales=torch.tensor([[0.1, 0.2, 0.3]]),
        opacities=torch.tensor([1.0]),
        quats_wxyz=torch.tensor([[0.0, 0.0, 0.0, -2.0]]),
        sh_degree=2,
    )
    write_splat(tmp_path / "g.splat", g)
    data = (tmp_path / "g.splat").read_bytes()
    assert struct.unpack("<6f", data[:24]) == struct.unpack("<6f", struct.pack("<6f", 1, -2, 3.5, 0.1, 0.2, 0.3))
    assert tuple(data[24:28]) == (255, 0, 128, 255)  # 0.5 * 255 = 127.5 rounds half up
    assert tuple(data[28:32]) == (128, 128, 128, 0)
    h = read_splat(tmp_path / "g.splat")
    assert 0 < h.opacities.item() < 1
    torch.testing.assert_close(h.sh[0, 0], (torch.tensor([255.0, 0.0, 128.0]) / 255 - 0.5) / SH_C0)


def test_splat_empty(tmp_path):
    write_splat(tmp_path / "g.splat", Gaussians.empty())
    assert (tmp_path / "g.splat").stat().st_size == 0 and len(read_splat(tmp_path / "g.splat")) == 0


# ---- dispatch -----------------------------------------------------------------------------------


def test_read_write_gaussians_dispatch_on_suffix(tmp_path):
    g = random_gaussians(20, degree=1)
    write_gaussians(tmp_path / "a.ply", g)
    write_gaussians(tmp_path / "a.SPLAT", g)
    assert read_gaussians(tmp_path / "a.ply").sh_degree == 1
    assert read_gaussians(tmp_path / "a.SPLAT").sh_degree == 0
    assert (tmp_path / "a.SPLAT").stat().st_size == 32 * 20
    for name in ("a.obj", "noext"):
        for call in (lambda p: read_gaussians(p), lambda p: write_gaussians(p, g)):
            with pytest.raises(FileFormatError, match=name):
                call(tmp_path / name)
    assert isinstance(FileFormatError("x", "y"), ReconError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.SPLAT", "a.ply"]
