"""Datasets: real posed-image collections in the Item format, procedural streaming, image loading."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from bench.scenes import random_scene
from recon.core.errors import FileFormatError, ReconError
from recon.data.dataset import (
    PosedImagesConfig,
    PosedImagesDataset,
    ProceduralConfig,
    ProceduralDataset,
    collate_items,
)
from recon.io import write_cameras_json
from recon.io.images import load_image, resize_image
from renderer import Cameras, render

HAS_ENGINE = importlib.util.find_spec("recon.data.procedural.item") is not None


def test_lego_collection_items(eval_data):
    ds = PosedImagesDataset([eval_data / "nerf_synthetic_lego" / "transforms_train.json"],
                            PosedImagesConfig(size=64, items_per_collection=10))
    assert len(ds) == 10
    item = ds[3]
    assert item.inputs.images.shape == (4, 64, 64, 3) and item.targets.images.shape == (4, 64, 64, 3)
    assert item.inputs.masks is not None and 0.05 < float(item.inputs.masks.mean()) < 0.9
    assert set(item.inputs.names).isdisjoint(item.targets.names)
    # Deterministic: the same index gives the same views and pixels.
    again = ds[3]
    assert again.inputs.names == item.inputs.names and torch.equal(again.inputs.images, item.inputs.images)
    assert ds[4].inputs.names != item.inputs.names
    # Background is white where alpha is 0; K scaled to the new size (focal 1111.1 * 64/800).
    corner = item.inputs.images[0, 0, 0]
    torch.testing.assert_close(corner, torch.ones(3), atol=1e-3, rtol=0)
    assert abs(float(item.inputs.cameras.K[0, 0, 0]) - 1111.11 * 64 / 800) < 0.1


def _write_object_folder(folder, n_views=10, size=32, seed=0):
    folder.mkdir(parents=True)
    g = random_scene(400, seed=seed)
    cams = Cameras.orbit(n_views, radius=2.5, width=size, height=size)
    out = render(g, cams)
    for i in range(n_views):
        rgba = torch.cat([out.rgb[i], out.alpha[i]], -1)
        Image.fromarray((rgba.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8), "RGBA").save(folder / f"{i:03d}.png")
    write_cameras_json(folder / "cameras.json", cams, files=[f"{i:03d}.png" for i in range(n_views)])
    return out


def test_objaverse_style_folders(tmp_path):
    _write_object_folder(tmp_path / "obj_a", seed=1)
    _write_object_folder(tmp_path / "obj_b", seed=2)
    (tmp_path / "stray.txt").write_text("not an object")
    ds = PosedImagesDataset.objaverse_style(tmp_path, PosedImagesConfig(size=None, items_per_collection=3))
    assert len(ds) == 6
    item = ds[4]  # second collection
    assert "obj_b" in item.meta["collection"]
    assert item.inputs.images.shape == (4, 32, 32, 3) and item.inputs.masks.shape == (4, 32, 32, 1)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_items)
    batch = next(iter(loader))
    assert len(batch) == 2 and batch[0].inputs.names == ds[0].inputs.names


def test_collection_errors(tmp_path):
    _write_object_folder(tmp_path / "few", n_views=5)
    with pytest.raises(ReconError, match="5 views, but items need 8"):
        PosedImagesDataset([tmp_path / "few"])
    with pytest.raises(ReconError, match="no object folders"):
        PosedImagesDataset.objaverse_style(tmp_path / "few")
    # An image whose size disagrees with its camera is a one-line error naming the image.
    _write_object_folder(tmp_path / "wrong", n_views=8)
    Image.new("RGB", (10, 10)).save(tmp_path / "wrong" / "000.png")
    ds = PosedImagesDataset([tmp_path / "wrong"], PosedImagesConfig(size=None, items_per_collection=50))
    with pytest.raises(ReconError, match="000.png: image is 10x10"):
        for i in range(len(ds)):
            ds[i]


def test_load_image_formats(tmp_path):
    a = (np.arange(12 * 10).reshape(10, 12) % 256).astype(np.uint8)
    Image.fromarray(a, "L").save(tmp_path / "gray.png")
    rgb, alpha = load_image(tmp_path / "gray.png")
    assert rgb.shape == (10, 12, 3) and alpha is None and abs(float(rgb[0, 5, 0]) - 5 / 255) < 1e-6
    Image.fromarray(a.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    rgb16, _ = load_image(tmp_path / "deep.png")
    torch.testing.assert_close(rgb16, rgb, atol=1e-4, rtol=0)
    pal = Image.fromarray(a, "L").convert("P")
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    _, pal_alpha = load_image(tmp_path / "pal.png")
    assert pal_alpha is not None and float(pal_alpha[0, 0, 0]) == 0.0
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.jpg")
    assert load_image(tmp_path / "x.jpg")[0].shape == (8, 8, 3)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(FileFormatError, match="bad.png"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(FileFormatError, match="not found"):
        load_image(tmp_path / "missing.png")
    # Resizing keeps flat images flat and halves sizes as asked.
    flat = torch.full((20, 30, 3), 0.25)
    torch.testing.assert_close(resize_image(flat, 15, 10), torch.full((10, 15, 3), 0.25))


def test_procedural_seed_ranges():
    with pytest.raises(ReconError, match="below 10000000"):
        ProceduralDataset(ProceduralConfig(seed_offset=9_999_990, length=100))


@pytest.mark.skipif(not HAS_ENGINE, reason="procedural engine (recon.data.procedural.item) not available")
def test_procedural_dataset_deterministic_across_workers():
    ds = ProceduralDataset(ProceduralConfig(n_inputs=2, n_targets=1, size=32, length=4, scene_every=2))
    direct = [ds[i] for i in range(4)]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_items)
    via_workers = [item for batch in loader for item in batch]
    for a, b in zip(direct, via_workers):
        assert torch.equal(a.inputs.images, b.inputs.images)
        assert torch.equal(a.targets.images, b.targets.images)
    assert [it.meta["kind"] for it in direct] == ["object", "scene", "object", "scene"]
    assert not torch.equal(direct[0].inputs.images, direct[2].inputs.images)
