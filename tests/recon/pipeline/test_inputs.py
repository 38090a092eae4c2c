"""Input loading: every supported format written with Pillow, EXIF handling, and every refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, ImageFile

from recon.core.errors import ReconError
from recon.pipeline.inputs import default_intrinsics, load_images, natural_key

H, W = 24, 32


def _pattern(h: int = H, w: int = W) -> np.ndarray:
    """[h, w, 3] uint8 with distinct values per pixel and channel."""
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1).astype(np.uint8)


def _alpha(h: int = H, w: int = W) -> np.ndarray:
    a = np.full((h, w), 255, np.uint8)
    a[:, : w // 2] = 0
    a[0, -1] = 128
    return a


def _assert_one_line_naming(err: pytest.ExceptionInfo, name: str) -> None:
    msg = str(err.value)
    assert name in msg and "\n" not in msg, msg


# ---- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fname, mode, kwargs, tol",
    [
        ("a.png", "RGB", {}, 0),
        ("a.png", "RGBA", {}, 0),
        ("a.png", "L", {}, 0),
        ("a.png", "LA", {}, 0),
        ("a.jpg", "RGB", {"quality": 95, "subsampling": 0}, 6),
        ("a.jpg", "L", {"quality": 95}, 6),
        ("a.webp", "RGB", {"lossless": True}, 0),
        ("a.webp", "RGBA", {"lossless": True}, 0),
        ("a.tif", "RGB", {}, 0),
        ("a.tif", "RGBA", {}, 0),
        ("a.tiff", "L", {"compression": "tiff_lzw"}, 0),
    ],
)
def test_formats_load_as_float_rgb_with_alpha(tmp_path, fname, mode, kwargs, tol):
    rgb = _pattern()
    if mode in ("RGB", "RGBA"):
        src = Image.fromarray(rgb)
        expect = rgb
    else:
        src = Image.fromarray(rgb[..., 0])
        expect = np.repeat(rgb[..., :1], 3, -1)
    if mode in ("RGBA", "LA"):
        src = src.convert(mode)
        src.putalpha(Image.fromarray(_alpha()))
    src.save(tmp_path / fname, **kwargs)

    (img,) = load_images(tmp_path / fname)
    assert img.name == fname and img.size == (W, H)
    assert img.rgb.shape == (H, W, 3) and img.rgb.dtype == torch.float32
    err = np.abs(img.rgb.numpy() * 255 - expect)
    if mode in ("RGBA", "LA"):  # encoders may change the colour of fully transparent pixels (WebP does)
        err = err[_alpha() > 0]
    assert err.max() <= tol + 1e-3, err.max()
    if mode in ("RGBA", "LA"):
        assert img.alpha is not None and img.alpha.shape == (H, W) and img.alpha.dtype == torch.float32
        np.testing.assert_allclose(img.alpha.numpy() * 255, _alpha(), atol=1e-3)
    else:
        assert img.alpha is None


@pytest.mark.parametrize("fname", ["g16.png", "g16.tif"])
def test_16bit_grayscale_is_scaled_by_65535(tmp_path, fname):
    values = np.array([[0, 1, 255, 256], [1000, 32768, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / fname)
    assert Image.open(tmp_path / fname).mode.startswith("I;16")  # really written as 16-bit
    (img,) = load_images(tmp_path / fname)
    expect = values.astype(np.float64) / 65535.0
    for c in range(3):
        np.testing.assert_allclose(img.rgb[..., c].numpy(), expect, atol=1e-7)
    assert img.alpha is None


def test_palette_with_transparency_becomes_mask(tmp_path):
    idx = np.ones((H, W), np.uint8)
    idx[:, : W // 2] = 0  # left half: palette entry 0, declared transparent
    idx[: H // 2, W // 2 :] = 2
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 200, 10, 20, 5, 100, 250] + [0] * (256 * 3 - 9))
    im.save(tmp_path / "p.png", transparency=0)
    Image.fromarray(idx, mode="P").save(tmp_path / "opaque_palette.png")  # no transparency: no alpha

    img, opaque = load_images([tmp_path / "p.png", tmp_path / "opaque_palette.png"])
    expect_alpha = (idx != 0).astype(np.float32)
    np.testing.assert_array_equal(img.alpha.numpy(), expect_alpha)
    np.testing.assert_allclose(img.rgb[-1, -1].numpy(), np.array([200, 10, 20]) / 255, atol=1e-6)
    np.testing.assert_allclose(img.rgb[0, -1].numpy(), np.array([5, 100, 250]) / 255, atol=1e-6)
    assert opaque.alpha is None


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _pattern()[..., 1]
    Image.fromarray(gray).save(tmp_path / "g.png")
    (img,) = load_images(tmp_path / "g.png")
    for c in range(3):
        np.testing.assert_allclose(img.rgb[..., c].numpy(), gray / 255.0, atol=1e-7)


# ---- EXIF -------------------------------------------------------------------------------------


def _displayed_with_red_corner(h: int = 40, w: int = 60) -> np.ndarray:
    """The picture as it should be seen: gray with a red square in its top-left corner."""
    d = np.full((h, w, 3), 128, np.uint8)
    d[:12, :12] = (255, 0, 0)
    return d


# Stored pixels for each orientation, written from the EXIF definition of the tag:
# 6: stored row 0 is the visual right side, column 0 the visual top  -> stored = rot90(displayed, 1)
# 3: rotated by 180 degrees                                            -> stored = rot90(displayed, 2)
# 8: stored row 0 is the visual left side, column 0 the visual bottom -> stored = rot90(displayed, -1)
@pytest.mark.parametrize("orientation, k", [(6, 1), (3, 2), (8, -1), (1, 0)])
def test_exif_orientation_is_applied(tmp_path, orientation, k):
    displayed = _displayed_with_red_corner()
    stored = np.ascontiguousarray(np.rot90(displayed, k))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    Image.fromarray(stored).save(tmp_path / "o.jpg", quality=95, exif=exif)

    (img,) = load_images(tmp_path / "o.jpg")
    assert img.size == (60, 40)
    rgb = img.rgb.numpy()
    assert np.abs(rgb[2:10, 2:10] - [1, 0, 0]).max() < 0.1  # red square top-left
    for corner in (rgb[-10:, :10], rgb[:10, -10:], rgb[-10:, -10:]):
        assert np.abs(corner - 128 / 255).max() < 0.1

    (raw,) = load_images(tmp_path / "o.jpg", exif_orientation=False)  # stored pixel grid kept
    assert raw.size == (stored.shape[1], stored.shape[0])


def test_exif_35mm_focal_gives_expected_K(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = 28
    Image.fromarray(_pattern(48, 64)).save(tmp_path / "f.jpg", exif=exif)
    Image.fromarray(_pattern(48, 64)).save(tmp_path / "nof.jpg")

    img, plain = load_images([tmp_path / "f.jpg", tmp_path / "nof.jpg"])
    assert img.exif_focal_35mm == 28.0 and plain.exif_focal_35mm is None
    K = default_intrinsics(*img.size, img.exif_focal_35mm)
    f = 28.0 / 36.0 * 64  # 36 mm is the long side of the 35 mm frame; 64 px is the photo's
    np.testing.assert_allclose(K.numpy(), [[f, 0, 32.0], [0, f, 24.0], [0, 0, 1]], rtol=1e-6)
    assert K.dtype == torch.float32

    K0 = default_intrinsics(*plain.size, plain.exif_focal_35mm)  # default: 50 degrees on the long side
    assert math.isclose(float(K0[0, 0]), 32.0 / math.tan(math.radians(25.0)), rel_tol=1e-6)
    assert math.isclose(float(K0[1, 1]), float(K0[0, 0]))
    # Portrait photo: the long side is the height.
    Kp = default_intrinsics(48, 64, 28.0)
    assert math.isclose(float(Kp[0, 0]), f, rel_tol=1e-6) and (float(Kp[0, 2]), float(Kp[1, 2])) == (24.0, 32.0)


# ---- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fname", ["t.jpg", "t.png"])
def test_truncated_file_is_refused(tmp_path, fname):
    rng = np.random.default_rng(0)
    full = tmp_path / ("full" + fname[1:])
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    (tmp_path / fname).write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ReconError) as err:
        load_images(tmp_path / fname)
    _assert_one_line_naming(err, fname)


def test_content_decides_not_suffix(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(ReconError, match="not a JPEG, PNG, WebP or TIFF image") as err:
        load_images(tmp_path / "notes.png")
    _assert_one_line_naming(err, "notes.png")

    Image.new("RGB", (8, 8)).save(tmp_path / "anim.png", format="GIF")  # a GIF named .png
    with pytest.raises(ReconError, match="GIF"):
        load_images(tmp_path / "anim.png")

    Image.fromarray(_pattern()).save(tmp_path / "really_png.jpg", format="PNG")  # readable content
    (img,) = load_images(tmp_path / "really_png.jpg")
    np.testing.assert_allclose(img.rgb.numpy() * 255, _pattern(), atol=1e-3)


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    Image.new("1", (10000, 10000)).save(tmp_path / "bomb.png")  # 100 MP in about 12 kB
    assert (tmp_path / "bomb.png").stat().st_size < 100_000

    def no_decoding(self):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ReconError, match=r"10000x10000 \(100 MP\), over the limit of 40 MP") as err:
        load_images(tmp_path / "bomb.png")
    _assert_one_line_naming(err, "bomb.png")
    assert Image.MAX_IMAGE_PIXELS == 89478485  # Pillow's own process-wide guard left alone


def test_max_pixels_is_a_per_call_limit(tmp_path):
    Image.fromarray(_pattern()).save(tmp_path / "a.png")  # 768 pixels
    with pytest.raises(ReconError, match="over the limit"):
        load_images(tmp_path / "a.png", max_pixels=500)
    assert load_images(tmp_path / "a.png", max_pixels=768)[0].size == (W, H)


def test_mixed_sizes(tmp_path):
    Image.fromarray(_pattern()).save(tmp_path / "a.png")
    Image.fromarray(_pattern(20, 30)).save(tmp_path / "b.png")
    with pytest.raises(ReconError, match="a.png is 32x24 but b.png is 30x20"):
        load_images(tmp_path, same_size=True)
    assert [im.size for im in load_images(tmp_path)] == [(32, 24), (30, 20)]


def test_no_images(tmp_path):
    with pytest.raises(ReconError, match="no images in this folder"):
        load_images(tmp_path)
    (tmp_path / "transforms.json").write_text("{}")
    (tmp_path / ".hidden.png").write_text("not even an image")
    with pytest.raises(ReconError, match="no images in this folder") as err:
        load_images(tmp_path)
    _assert_one_line_naming(err, str(tmp_path))
    with pytest.raises(ReconError, match="no input images"):
        load_images([])
    with pytest.raises(ReconError, match="not found"):
        load_images(tmp_path / "missing.jpg")


def test_folder_listing_is_natural_and_skips_hidden(tmp_path):
    for name in ["img10.png", "img2.png", "img1.png", "Img3.PNG", "img2b.jpg"]:
        Image.fromarray(_pattern()).save(tmp_path / name, format="JPEG" if name.endswith("jpg") else "PNG")
    (tmp_path / ".hidden.png").write_text("skipped, or loading would fail")
    (tmp_path / "._img4.png").write_text("macOS resource fork")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "sub").mkdir()
    Image.fromarray(_pattern()).save(tmp_path / "sub" / "img0.png")  # not recursive

    names = [im.name for im in load_images(tmp_path)]
    assert names == ["img1.png", "img2.png", "img2b.jpg", "Img3.PNG", "img10.png"]
    assert sorted(["b10", "b9", "a100", "a20"], key=natural_key) == ["a20", "a100", "b9", "b10"]


def test_unsupported_image_in_folder_is_refused(tmp_path):
    Image.fromarray(_pattern()).save(tmp_path / "a.png")
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(20))
    with pytest.raises(ReconError, match="HEIC images are not supported") as err:
        load_images(tmp_path)
    _assert_one_line_naming(err, "IMG_0001.HEIC")
