"""Image preparation: exact area downsampling and OpenCV undistortion in our pixel convention."""

from __future__ import annotations

import torch

from recon.eval.imaging import area_resize, distort_normalized, undistort_image

FOX_COEFFS = {"k1": 0.0578421, "k2": -0.0805099, "p1": -0.000980296, "p2": 0.00015575}


def test_area_resize_averages_blocks():
    img = torch.rand(8, 6, 3)
    small = area_resize(img, 3, 4)
    torch.testing.assert_close(small, img.reshape(4, 2, 3, 2, 3).mean(dim=(1, 3)))
    assert area_resize(img, 6, 8) is img
    assert area_resize(img, 12, 16).shape == (16, 12, 3)


def test_distortion_model_matches_opencv_formula():
    x, y = torch.tensor([0.3], dtype=torch.float64), torch.tensor([-0.2], dtype=torch.float64)
    k1, k2, p1, p2 = 0.1, -0.05, 0.01, -0.02
    r2 = 0.13
    radial = 1 + k1 * r2 + k2 * r2**2
    xd, yd = distort_normalized(x, y, {"k1": k1, "k2": k2, "p1": p1, "p2": p2})
    assert abs(float(xd) - (0.3 * radial + 2 * p1 * 0.3 * -0.2 + p2 * (r2 + 2 * 0.09))) < 1e-12
    assert abs(float(yd) - (-0.2 * radial + p1 * (r2 + 2 * 0.04) + 2 * p2 * 0.3 * -0.2)) < 1e-12


def test_undistortion_moves_a_blob_to_its_pinhole_position():
    """A blob photographed at the distorted position of an ideal point lands at the pinhole projection."""
    W, H = 120, 200
    K = torch.tensor([[150.0, 0, 61.3], [0, 150.0, 98.7], [0, 0, 1]], dtype=torch.float64)
    coeffs = {"k1": 0.2, "k2": -0.1, "p1": 0.004, "p2": -0.003}  # stronger than the fox's
    x, y = torch.tensor(0.25, dtype=torch.float64), torch.tensor(-0.45, dtype=torch.float64)
    xd, yd = distort_normalized(x, y, coeffs)
    u_src, v_src = float(K[0, 0] * xd + K[0, 2]), float(K[1, 1] * yd + K[1, 2])
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    photo = torch.exp(-((u - u_src) ** 2 + (v - v_src) ** 2) / (2 * 2.0**2))[..., None]
    out, inside = undistort_image(photo, K, coeffs)
    w = out[..., 0]
    u_c, v_c = float((w * u).sum() / w.sum()), float((w * v).sum() / w.sum())
    assert abs(u_c - float(K[0, 0] * x + K[0, 2])) < 0.1 and abs(v_c - float(K[1, 1] * y + K[1, 2])) < 0.1
    assert 0.8 < inside <= 1.0
    # Zero distortion is the identity.
    same, full = undistort_image(photo, K, {"k1": 0.0})
    assert same is photo and full == 1.0
