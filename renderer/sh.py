"""Real spherical harmonics in the 3DGS/gsplat convention (degrees 0-3).

Colour of a Gaussian seen along unit direction ``d`` (from the camera centre to the Gaussian, world
frame) is ``clamp_min(sum_k sh[k] * Y_k(d) + 0.5, 0)``; the DC basis is the constant
``SH_C0 = 0.28209...``, so a plain RGB colour ``c`` is stored as ``(c - 0.5) / SH_C0``.
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_degree_from_bases(k: int) -> int:
    deg = int(round(k**0.5)) - 1
    if deg < 0 or deg > 3 or num_sh_bases(deg) != k:
        raise ValueError(f"{k} SH coefficients is not (deg+1)^2 for a degree in 0..3")
    return deg


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """SH basis values ``[..., (degree+1)^2]`` at unit directions ``dirs [..., 3]``."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [_C2[0] * xy, _C2[1] * yz, _C2[2] * (2 * zz - xx - yy), _C2[3] * xz, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            _C3[0] * y * (3 * xx - yy),
            _C3[1] * xy * z,
            _C3[2] * y * (4 * zz - xx - yy),
            _C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            _C3[4] * x * (4 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, sh: Tensor, dirs: Tensor) -> Tensor:
    """Evaluate ``sh [..., K, 3]`` (first (degree+1)^2 used) along ``dirs [..., 3]`` (any length).

    Returns the raw SH value ``[..., 3]`` without the +0.5 offset.
    """
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    n = num_sh_bases(degree)
    basis = sh_basis(degree, dirs)  # [..., n]
    return (basis[..., None] * sh[..., :n, :]).sum(dim=-2)


def sh_to_rgb(sh: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """Colour ``[..., 3]`` as the renderer computes it: clamp_min(SH + 0.5, 0)."""
    return torch.clamp_min(eval_sh(degree, sh, dirs) + 0.5, 0.0)


def _fibonacci_dirs(n: int, dtype=torch.float64) -> Tensor:
    i = torch.arange(n, dtype=dtype) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = torch.pi * (1 + 5**0.5) * i
    return torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], -1)


def sh_rotation_matrices(R: Tensor, degree: int) -> list[Tensor]:
    """Per-band matrices ``M_l [(2l+1), (2l+1)]`` so that ``sh_l' = M_l @ sh_l`` rotates by ``R [3, 3]``.

    The rotated function satisfies ``f'(d) = f(R^T d)``. Bands are invariant subspaces, so each
    ``M_l`` is found exactly by least squares on a fixed spread of sample directions.
    """
    R = R.to(torch.float64)
    dirs = _fibonacci_dirs(64)
    B = sh_basis(degree, dirs)  # [64, K]
    B_rot = sh_basis(degree, dirs @ R)  # rows are (R^T d)^T
    mats = []
    for band in range(degree + 1):
        s = slice(band * band, (band + 1) * (band + 1))
        mats.append(torch.linalg.lstsq(B[:, s], B_rot[:, s]).solution)
    return mats


def rotate_sh(sh: Tensor, R: Tensor) -> Tensor:
    """Rotate SH coefficients ``sh [N, K, 3]`` by world rotation ``R [3, 3]``."""
    degree = sh_degree_from_bases(sh.shape[-2])
    out = sh.clone()
    for band, M in enumerate(sh_rotation_matrices(R, degree)):
        if band == 0:
            continue
        s = slice(band * band, (band + 1) * (band + 1))
        out[:, s, :] = torch.einsum("ij,njc->nic", M.to(sh.dtype), sh[:, s, :])
    return out
