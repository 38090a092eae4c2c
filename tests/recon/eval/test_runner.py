"""The runner end to end: a self-contained fake protocol (exact chain checks), every named protocol
with ``limit=1`` and the mean-color floor, and the gt-depth oracle on a procedural item."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from recon.core.errors import ReconError
from recon.core.types import Mesh, Reconstruction, Views
from recon.eval.protocol_base import (
    EvalItem,
    EvalProtocol,
    MetricSettings,
    ProtocolOverrides,
)
from recon.eval.protocols import get_protocol
from recon.eval.reference_methods import (
    GroundTruthDepthMethod,
    MeanColorMethod,
    look_at_point,
)
from recon.eval.registry import make_method, method_names
from recon.eval.runner import mean_metrics, run_protocol
from renderer import Cameras, Gaussians, render

HAS_ENGINE = importlib.util.find_spec("recon.data.procedural.item") is not None
needs_engine = pytest.mark.skipif(not HAS_ENGINE, reason="procedural engine (recon.data.procedural.item) not importable yet")

RESULT_KEYS = {"format", "protocol", "method", "full_protocol", "complete", "overrides", "items", "means",
               "resumed_items", "machine", "started_utc", "seconds_total"}
ITEM_KEYS = {"id", "seconds_wall", "seconds_method", "seconds_render", "gaussians", "views", "mean", "mesh", "info"}


def _scene() -> Gaussians:
    g = torch.Generator().manual_seed(0)
    n = 300
    return Gaussians.from_rgb(torch.randn(n, 3, generator=g) * 0.3, torch.rand(n, 3, generator=g),
                              torch.full((n, 3), 0.08), torch.full((n,), 0.9))


def _box_mesh() -> Mesh:
    import trimesh

    m = trimesh.creation.box(extents=(0.6, 0.6, 0.6))
    return Mesh(torch.tensor(m.vertices, dtype=torch.float32), torch.tensor(m.faces))


class _FakeProtocol(EvalProtocol):
    """Two items whose targets are renders of ``_scene()`` (with exact depth and masks) and a box GT mesh."""

    name = "fake"
    description = "renders of a fixed Gaussian scene"
    background = (1.0, 1.0, 1.0)
    metrics = MetricSettings(psnr_foreground=True, depth=True, mesh=True, mesh_samples=20_000, fscore_tau_rel=0.02)

    def _definition(self):
        return {"size": [48, 40]}

    def num_items(self):
        return 2

    def _items(self, skip=frozenset()):
        for k in range(2):
            cams = Cameras.orbit(6, radius=2.5, width=48, height=40, azimuth0_deg=10 * k)
            out = render(_scene(), cams, background=self.background)
            views = Views(out.rgb, cams, masks=out.alpha, depth_z=out.depth * (out.alpha > 0.5))
            yield EvalItem(f"fake-{k}", views.select([0, 2, 4]), views.select([1, 3, 5]), {"gt_mesh": _box_mesh})


class _Exact:
    name = "exact"

    def reconstruct(self, inputs):
        return Reconstruction(_scene(), _box_mesh(), 0.5, {"note": torch.tensor([1.0, 2.0])})


def test_exact_method_scores_perfectly_and_files_are_written(tmp_path):
    res = run_protocol(_FakeProtocol(), _Exact(), tmp_path / "r.json", tmp_path / "sub" / "g.png")
    assert set(res) == RESULT_KEYS and res["full_protocol"] is True
    assert len(res["items"]) == 2 and set(res["items"][0]) == ITEM_KEYS
    view = res["items"][0]["views"][0]
    assert view["psnr"] is None  # identical images: infinite PSNR, written as null
    assert view["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert view["depth_abs_rel"] == pytest.approx(0.0, abs=1e-5) and view["depth_coverage"] == 1.0
    assert res["items"][0]["mesh"]["fscore"] > 0.9 and res["means"]["mesh_items"] == 2
    assert res["items"][0]["seconds_method"] == 0.5 and res["items"][0]["info"] == {"note": [1.0, 2.0]}
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk["method"] == {"name": "exact", "oracle": False} and on_disk["protocol"]["name"] == "fake"
    grid = np.asarray(Image.open(tmp_path / "sub" / "g.png"))
    assert grid.shape[1] == 3 * 48 and grid.shape[0] > 6 * 40  # 6 rows (2 items x 3 targets), 3 columns


def test_an_empty_ground_truth_mesh_gives_no_mesh_row():
    class EmptyGt(_FakeProtocol):
        def _items(self, skip=frozenset()):
            for item in super()._items(skip):
                yield item._replace(extras={"gt_mesh": lambda: Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long))})

    res = run_protocol(EmptyGt(), _Exact(), None, limit=1)
    assert res["items"][0]["mesh"] is None and "mesh_items" not in res["means"]


def test_floor_is_worse_and_limit_is_recorded(tmp_path):
    res = run_protocol(_FakeProtocol(), MeanColorMethod(), None, None, limit=1)
    assert res["full_protocol"] is False and res["overrides"] == {"limit": 1, "size_scale": 1.0}
    assert res["means"]["items"] == 1 and 5 < res["means"]["psnr"] < 25 and res["means"]["ssim"] < 0.9
    assert res["items"][0]["mesh"] is None and res["items"][0]["gaussians"] == 1


class _Counting:
    """``_Exact`` that counts its calls and can fail on a given call (an interrupted run)."""

    def __init__(self, name="exact", fail_on=None):
        self.name, self.fail_on, self.calls = name, fail_on, 0

    def reconstruct(self, inputs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("interrupted")
        return _Exact().reconstruct(inputs)


def test_interrupted_run_keeps_finished_items_and_resumes(tmp_path):
    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError, match="interrupted"):
        run_protocol(_FakeProtocol(), _Counting(fail_on=2), out)
    partial = json.loads(out.read_text())  # written after item 1, before the interruption
    assert partial["complete"] is False and [it["id"] for it in partial["items"]] == ["fake-0"]
    assert partial["means"]["items"] == 1

    method = _Counting()
    res = run_protocol(_FakeProtocol(), method, out, tmp_path / "g.png", resume=partial)
    assert method.calls == 1  # only the second item was reconstructed
    grid_height = np.asarray(Image.open(tmp_path / "g.png")).shape[0]
    assert 3 * 40 < grid_height < 5 * 40  # the 3 targets of the item this run evaluated
    assert res["complete"] is True and res["resumed_items"] == 1 and res["full_protocol"] is True
    assert [it["id"] for it in res["items"]] == ["fake-0", "fake-1"] and res["items"][0] == partial["items"][0]
    fresh = run_protocol(_FakeProtocol(), _Counting(), None)
    for key in ("ssim", "depth_abs_rel", "mesh_fscore", "items"):
        assert res["means"][key] == pytest.approx(fresh["means"][key], rel=1e-3, abs=1e-4), key
    assert json.loads(out.read_text())["means"] == res["means"]

    # resuming a finished run runs nothing; a larger limit than the protocol has is the full protocol
    again = _Counting()
    assert run_protocol(_FakeProtocol(), again, None, limit=5, resume=res)["resumed_items"] == 2 and again.calls == 0


def test_resume_refuses_a_different_run(tmp_path):
    earlier = run_protocol(_FakeProtocol(), _Counting(), None, limit=1)
    with pytest.raises(ReconError, match=r"cannot resume: the earlier result has a different method \(exact\)"):
        run_protocol(_FakeProtocol(), _Counting(name="other"), None, resume=earlier)
    other = _FakeProtocol(overrides=ProtocolOverrides(size_scale=0.5))
    with pytest.raises(ReconError, match="different size_scale"):
        run_protocol(other, _Counting(), None, resume=earlier)
    class Weighted(_Counting):  # a model method: same name, weights told apart by their digest
        def __init__(self, sha, scale_gain=1.0, carve_votes=None):
            super().__init__()
            self.weights_sha256 = sha
            self.scale_gain = scale_gain
            if carve_votes is not None:
                self.carve_votes = carve_votes

        def reconstruct(self, inputs):
            rec = super().reconstruct(inputs)
            rec.info["sha256"] = self.weights_sha256
            rec.info["scale_gain"] = self.scale_gain
            if hasattr(self, "carve_votes"):
                rec.info["carve_votes"] = self.carve_votes
            return rec

    first = run_protocol(_FakeProtocol(), Weighted("aaaa1111"), None, limit=1)
    assert run_protocol(_FakeProtocol(), Weighted("aaaa1111"), None, resume=first)["resumed_items"] == 1
    with pytest.raises(ReconError, match=r"other weights \(sha256 aaaa1111"):
        run_protocol(_FakeProtocol(), Weighted("bbbb2222"), None, resume=first)
    with pytest.raises(ReconError, match=r"another scale_gain \(1.0\)"):  # same weights, other calibration
        run_protocol(_FakeProtocol(), Weighted("aaaa1111", scale_gain=2.0), None, resume=first)
    # results from before silhouette carving existed carved nothing: they resume only without it
    with pytest.raises(ReconError, match=r"another carve_votes \(0\)"):
        run_protocol(_FakeProtocol(), Weighted("aaaa1111", carve_votes=1), None, resume=first)
    assert run_protocol(_FakeProtocol(), Weighted("aaaa1111", carve_votes=0), None, resume=first)["resumed_items"] == 1
    carved = run_protocol(_FakeProtocol(), Weighted("aaaa1111", carve_votes=1), None, limit=1)
    assert run_protocol(_FakeProtocol(), Weighted("aaaa1111", carve_votes=1), None, resume=carved)["resumed_items"] == 1
    changed = json.loads(json.dumps(earlier))
    changed["protocol"]["size"] = [1, 1]
    with pytest.raises(ReconError, match="different protocol"):
        run_protocol(_FakeProtocol(), _Counting(), None, resume=changed)


def test_mean_color_renders_the_mean_everywhere():
    cams = Cameras.orbit(4, radius=3.0, width=32, height=24)
    imgs = torch.rand(4, 24, 32, 3)
    torch.testing.assert_close(look_at_point(cams), torch.zeros(3), atol=1e-5, rtol=0)
    rec = MeanColorMethod().reconstruct(Views(imgs, cams))
    out = render(rec.gaussians, Cameras.orbit(3, radius=2.0, width=32, height=24, elevation_deg=-30), background=(1.0, 1.0, 1.0))
    torch.testing.assert_close(out.rgb, imgs.mean(dim=(0, 1, 2)).expand_as(out.rgb), atol=0.02, rtol=0)


def test_gt_depth_needs_depth():
    cams = Cameras.orbit(2, width=8, height=8)
    with pytest.raises(ReconError, match="ground-truth depth"):
        GroundTruthDepthMethod().reconstruct(Views(torch.rand(2, 8, 8, 3), cams))
    with pytest.raises(ReconError, match="does not have"):
        run_protocol(_FakeProtocol(), GroundTruthDepthMethod(), None, None, limit=1)


def test_gt_depth_unprojection_reproduces_a_surface():
    """Depth of an opaque fronto-parallel plane, unprojected and re-rendered from a nearby camera."""
    cams = Cameras.look_at(torch.tensor([[0.0, 0.0, -2.0], [0.3, 0.0, -2.0]]), torch.zeros(3), up=(0.0, -1.0, 0.0),
                           fov_deg=40, width=48, height=48)
    _, dirs = cams.rays()
    t = 2.0 / dirs[..., 2:3]  # hit the plane z = 0 from z = -2 (camera 1's axis is slightly tilted)
    depth_z = (cams.w2c[:, None, None, :3, :3] @ (dirs * t)[..., None])[..., 2, :]  # camera z of the hit
    pts = cams.centers[:, None, None] + dirs * t
    colour = torch.stack([0.5 + 0.4 * torch.sin(4 * pts[..., 0]), 0.5 + 0.4 * torch.cos(4 * pts[..., 1]),
                          torch.full_like(pts[..., 0], 0.3)], -1)
    rec = GroundTruthDepthMethod().reconstruct(Views(colour, cams, depth_z=depth_z))
    assert len(rec.gaussians) == 2 * 48 * 48
    assert rec.gaussians.means[:, 2].abs().max() < 1e-4  # every point on the plane
    novel = Cameras.look_at(torch.tensor([[0.15, 0.1, -2.0]]), torch.zeros(3), up=(0.0, -1.0, 0.0), fov_deg=30, width=48, height=48)
    out = render(rec.gaussians, novel)
    _, d = novel.rays()
    p = novel.centers[:, None, None] + d * (2.0 / d[..., 2:3])
    expected = torch.stack([0.5 + 0.4 * torch.sin(4 * p[..., 0]), 0.5 + 0.4 * torch.cos(4 * p[..., 1]),
                            torch.full_like(p[..., 0], 0.3)], -1)
    assert (out.rgb - expected).abs().mean() < 0.02
    expected_z = (novel.w2c[:, None, None, :3, :3] @ (p - novel.centers[:, None, None])[..., None])[..., 2, 0]
    assert (out.depth - expected_z[..., None]).abs()[0, 8:-8, 8:-8].max() < 0.02

    # A fixed stride keeps every stride-th pixel (centres at stride * i + 0.5) with footprints to match,
    # so the plane is still covered and renders the same pattern.
    rec2 = GroundTruthDepthMethod(stride=2).reconstruct(Views(colour, cams, depth_z=depth_z))
    assert len(rec2.gaussians) == 2 * 24 * 24
    torch.testing.assert_close(rec2.gaussians.means.reshape(2, 24, 24, 3), pts[:, ::2, ::2].reshape(2, 24, 24, 3),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(rec2.gaussians.scales, 2 * rec.gaussians.scales.reshape(2, 48, 48, 3)[:, ::2, ::2]
                               .reshape(-1, 3), atol=1e-6, rtol=1e-5)
    out2 = render(rec2.gaussians, novel)
    assert (out2.rgb - expected).abs().mean() < 0.03
    with pytest.raises(ReconError, match="stride must be"):
        GroundTruthDepthMethod(stride=0)


def test_registry():
    assert {"optimize-30s", "optimize-120s", "plane-sweep", "mean-color", "gt-depth"} <= set(method_names())
    assert make_method("mean-color").name == "mean-color"
    with pytest.raises(ReconError, match="unknown method 'nope'; known methods: recon, recon-unposed, optimize-30s"):
        make_method("nope")
    with pytest.raises(ReconError, match="a checkpoint applies to the model methods"):
        make_method("mean-color", checkpoint="checkpoints/default")
    with pytest.raises(ReconError, match="not a checkpoint folder"):
        make_method("recon", checkpoint="/nonexistent/ckpt")


def test_mean_metrics_skip_undefined():
    rows = [{"name": "a", "psnr": 10.0, "d": None}, {"name": "b", "psnr": 20.0, "d": float("nan")}]
    assert mean_metrics(rows) == {"psnr": 15.0, "d": None}


# ---- every named protocol end to end, limit=1, with the floor ------------------------------------

REAL = ["lego-sparse-4", "lego-sparse-8", "fox-sparse"]
SYNTHETIC = ["synthetic-val", "synthetic-val-scenes"]


def _end_to_end(name, data_dir, tmp_path, size_scale):
    p = get_protocol(name, data_dir, ProtocolOverrides(size_scale=size_scale))
    res = run_protocol(p, MeanColorMethod(), tmp_path / "r.json", tmp_path / "g.png", limit=1)
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert set(on_disk) == RESULT_KEYS and on_disk["full_protocol"] is False
    limit = None if p.num_items() == 1 else 1  # a limit that covers every item is no override
    assert on_disk["overrides"] == {"limit": limit, "size_scale": size_scale} and on_disk["complete"] is True
    assert on_disk["protocol"]["name"] == name and on_disk["means"]["items"] == 1
    assert {"psnr", "ssim"} <= set(on_disk["means"]) and set(on_disk["items"][0]) == ITEM_KEYS
    assert on_disk["machine"]["torch"] == torch.__version__
    assert Image.open(tmp_path / "g.png").size[0] > 0
    return res


@pytest.mark.parametrize("name", REAL)
def test_real_protocols_end_to_end(name, eval_data, tmp_path):
    res = _end_to_end(name, eval_data, tmp_path, size_scale=0.25)
    n_targets = 10 if name == "fox-sparse" else 8
    assert len(res["items"][0]["views"]) == n_targets
    assert 6 < res["means"]["psnr"] < 16  # the floor: a constant image


@needs_engine
@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_protocols_end_to_end(name, tmp_path):
    res = _end_to_end(name, None, tmp_path, size_scale=0.25)
    assert len(res["items"][0]["views"]) == 4 and res["items"][0]["id"] == ("seed-10000000" if name == "synthetic-val" else "seed-10500000")
    assert "depth_rmse" in res["means"]


@needs_engine
def test_synthetic_protocol_does_not_build_skipped_items(monkeypatch):
    import recon.eval.protocols_synthetic as ps

    built = []
    real = ps.make_item
    monkeypatch.setattr(ps, "make_item", lambda seed, **kw: built.append(seed) or real(seed, **kw))
    p = get_protocol("synthetic-val", overrides=ProtocolOverrides(size_scale=0.125))
    first, second = p.items(limit=2, skip=frozenset({"seed-10000000"}))
    assert first == ("seed-10000000", None, None, {}) and second.item_id == "seed-10000001"
    assert second.inputs.images.shape == (4, 32, 32, 3) and built == [10000001]


@needs_engine
def test_gt_depth_oracle_on_a_synthetic_item():
    """The whole chain (engine cameras and z-depth -> unprojection -> renderer -> metrics) agrees.

    The oracle lands far above the floor and its depth matches the targets' to ~2%; a convention
    error (ray distance for z-depth, flipped axes, c2w for w2c) breaks both. What it cannot reach:
    surfaces no input saw, the engine's view-dependent specular term, one-footprint-blurred edges.
    """
    p = get_protocol("synthetic-val", overrides=ProtocolOverrides(size_scale=0.5))
    res = run_protocol(p, make_method("gt-depth"), None, None, limit=1)
    floor = run_protocol(p, MeanColorMethod(), None, None, limit=1)
    assert res["method"]["oracle"] is True and floor["method"]["oracle"] is False
    assert res["means"]["psnr"] > 17 and res["means"]["psnr"] > floor["means"]["psnr"] + 6, res["means"]
    assert res["means"]["depth_abs_rel"] < 0.03 and res["means"]["depth_coverage"] > 0.9, res["means"]


@needs_engine
def test_synthetic_mesh_metrics_against_the_ground_truth_mesh(monkeypatch):
    """A method returning the object's own (coarser) mesh scores F ~ 1 against the protocol's GT mesh."""
    import recon.eval.protocols_synthetic as ps
    from recon.data.procedural.item import object_for_seed
    from recon.data.procedural.mesh import ground_truth_mesh

    monkeypatch.setattr(ps, "GT_MESH_RESOLUTION", 48)  # the protocol uses 128; coarser keeps the test fast

    class WithMesh:
        name = "with-mesh"

        def reconstruct(self, inputs):
            rec = MeanColorMethod().reconstruct(inputs)
            rec.mesh = ground_truth_mesh(object_for_seed(ps.OBJECT_SEED_BASE), resolution=40)
            return rec

    p = get_protocol("synthetic-val", overrides=ProtocolOverrides(size_scale=0.25))
    res = run_protocol(p, WithMesh(), None, None, limit=1)
    mesh = res["items"][0]["mesh"]
    assert mesh["fscore"] > 0.9 and mesh["chamfer_l1"] < 0.01 * mesh["gt_diagonal"], mesh
    assert res["means"]["mesh_items"] == 1 and res["means"]["mesh_fscore"] == mesh["fscore"]
