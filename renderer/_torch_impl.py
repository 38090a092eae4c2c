"""Pure-torch Gaussian splatting: the CPU twin of gsplat's CUDA path.

Two stages, each differentiable by autograd:

``project``   EWA projection exactly as gsplat's ``fully_fused_projection`` (pinhole): camera-space
              covariance, Jacobian with the 1.3x-FoV clamp, ``eps2d`` low-pass, conic, and the
              opacity-aware box half-extent ``ceil(min(3.33, sqrt(2 ln(255 o))) * sqrt(cov_ii))``.
``rasterize`` Tile-based front-to-back compositing. Each (Gaussian, tile) pair from the boxes is
              sorted by tile then depth; tiles are processed in chunks padded to similar list
              lengths, so every operation is a dense tensor op over [tiles, Gaussians, pixels].

Per pixel (centre at +0.5), in depth order, with ``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy``:
``alpha = min(0.999, o exp(-sigma))``; skipped when ``alpha < 1/255``; the pixel stops before a
Gaussian that would bring transmittance to ``<= 1e-4``. These are gsplat's constants, and because
the box contains the whole ``alpha >= 1/255`` ellipse, the result does not depend on the tile size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import quaternion_to_rotation_matrix
from torch import Tensor

from renderer.cameras import Cameras
from renderer.gaussians import Gaussians

ALPHA_THRESHOLD = 1.0 / 255.0
MAX_ALPHA = 0.999
TRANSMITTANCE_MIN = 1e-4
_BOX_EXTEND = 3.33


@dataclass
class Projection:
    """Gaussians projected into C cameras (N per camera).

    Attributes:
        means2d: [C, N, 2] pixel coordinates of the centres.
        conics: [C, N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]].
        depths: [C, N] camera z of the centres, world units.
        opacities: [C, N] opacities (per camera so that callers may modulate them).
        radii: [C, N, 2] int32 box half-extents in pixels; 0 means culled in that camera.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    opacities: Tensor
    radii: Tensor


def project(
    gaussians: Gaussians, cameras: Cameras, eps2d: float = 0.3, near_plane: float = 0.01, far_plane: float = 1e10
) -> Projection:
    """EWA-project ``gaussians`` into every camera (pinhole; K's skew is ignored, as in gsplat)."""
    W, H = cameras.width, cameras.height
    N, C = len(gaussians), len(cameras)
    w2c = cameras.w2c.to(gaussians.dtype)
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    # Written as a few flat GEMMs and elementwise ops: batched 3x3 matmuls are slow on CPU.
    means_c = (gaussians.means @ R.transpose(1, 2)) + t[:, None, :]  # [C, N, 3]
    rot = quaternion_to_rotation_matrix(torch.nn.functional.normalize(gaussians.quats_wxyz, dim=-1))
    M = rot * gaussians.scales[:, None, :]  # [N, 3, 3] columns = scaled local axes; cov = M M^T
    # RM[c, n] = R_c @ M_n, computed as one [C*3, 3] x [3, N*3] GEMM.
    RM = (R.reshape(C * 3, 3) @ M.permute(1, 0, 2).reshape(3, N * 3)).reshape(C, 3, N, 3).permute(0, 2, 1, 3)

    K = cameras.K.to(gaussians.dtype)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # [C, 1]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    x, y, z = means_c.unbind(-1)  # [C, N]
    # Clamp the Jacobian's linearisation point to 1.3x the field of view, as gsplat does, so that
    # Gaussians far outside the frustum do not get huge 2D footprints.
    tan_fovx, tan_fovy = 0.5 * W / fx, 0.5 * H / fy
    lim_x_pos, lim_x_neg = (W - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (H - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z * torch.clamp(x / z, min=-lim_x_neg, max=lim_x_pos)
    ty = z * torch.clamp(y / z, min=-lim_y_neg, max=lim_y_pos)
    # T = J @ R @ M with J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]]; cov2d = T T^T.
    T0 = (fx / z)[..., None] * RM[:, :, 0] - (fx * tx / z**2)[..., None] * RM[:, :, 2]  # [C, N, 3]
    T1 = (fy / z)[..., None] * RM[:, :, 1] - (fy * ty / z**2)[..., None] * RM[:, :, 2]
    cov00, cov01, cov11 = (T0 * T0).sum(-1), (T0 * T1).sum(-1), (T1 * T1).sum(-1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)

    c00, c11, c01 = cov00 + eps2d, cov11 + eps2d, cov01
    det = (c00 * c11 - c01 * c01).clamp_min(1e-10)
    conics = torch.stack([c11 / det, -c01 / det, c00 / det], dim=-1)

    opacities = gaussians.opacities[None].expand(z.shape)
    with torch.no_grad():
        valid = (det > 0) & (z > near_plane) & (z < far_plane) & (opacities >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(opacities.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp_max(_BOX_EXTEND)
        rx = torch.ceil(extend * torch.sqrt(c00.clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c11.clamp_min(0)))
        u, v = means2d[..., 0], means2d[..., 1]
        inside = (u + rx > 0) & (u - rx < W) & (v + ry > 0) & (v - ry < H)
        valid = valid & inside & ((rx > 0) | (ry > 0)) & torch.isfinite(u) & torch.isfinite(v)
        radii = torch.stack([rx, ry], dim=-1).nan_to_num(0.0).clamp(0, 1 << 20)
        radii = torch.where(valid[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projection(means2d, conics, z, opacities, radii)


@dataclass
class _TileLists:
    """Sorted (tile, Gaussian) pairs. Tiles are numbered camera-major over C x ty x tx."""

    gauss_flat: Tensor  # [M] index into the flattened [C * N] Gaussians, sorted by (tile, depth)
    tile_ids: Tensor  # [T_used] tiles that have at least one Gaussian
    offsets: Tensor  # [T_used] start of each tile's run in gauss_flat
    counts: Tensor  # [T_used] length of each run


@torch.no_grad()
def _build_tile_lists(proj: Projection, width: int, height: int, tile_size: int) -> _TileLists:
    C, N = proj.depths.shape
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    radii = proj.radii.reshape(C * N, 2)
    flat = (radii > 0).all(-1).nonzero().squeeze(1)
    cam = flat // N
    # Front-to-back order per camera: sort visible Gaussians by (camera, depth) once; a stable
    # sort by tile afterwards keeps this order inside every tile.
    depth = proj.depths.detach().reshape(-1)[flat]
    order = torch.argsort(depth)
    if C > 1:
        order = order[torch.argsort(cam[order], stable=True)]
    flat, cam = flat[order], cam[order]

    uv = proj.means2d.detach().reshape(-1, 2)[flat]
    r = radii[flat].to(uv.dtype)
    x0 = torch.floor((uv[:, 0] - r[:, 0]) / tile_size).clamp(0, tiles_x).long()
    x1 = torch.ceil((uv[:, 0] + r[:, 0]) / tile_size).clamp(0, tiles_x).long()
    y0 = torch.floor((uv[:, 1] - r[:, 1]) / tile_size).clamp(0, tiles_y).long()
    y1 = torch.ceil((uv[:, 1] + r[:, 1]) / tile_size).clamp(0, tiles_y).long()
    nx, ny = (x1 - x0).clamp_min(0), (y1 - y0).clamp_min(0)
    n_tiles = nx * ny
    pair_owner = torch.repeat_interleave(torch.arange(len(flat)), n_tiles)
    start = torch.cumsum(n_tiles, 0) - n_tiles
    local = torch.arange(len(pair_owner)) - start[pair_owner]
    nx_p = nx[pair_owner]
    tx = x0[pair_owner] + local % nx_p
    ty = y0[pair_owner] + local // nx_p
    tile = (cam[pair_owner] * tiles_y + ty) * tiles_x + tx
    # Pairs are generated in (camera, depth) order, so sorting by (tile, owner rank) as one integer
    # key gives every tile's list front to back.
    key, _ = torch.sort(tile * len(flat) + pair_owner)
    tile = key // len(flat)
    gauss_flat = flat[key % len(flat)]
    tile_ids, counts = torch.unique_consecutive(tile, return_counts=True)
    offsets = torch.cumsum(counts, 0) - counts
    return _TileLists(gauss_flat, tile_ids, offsets, counts)


def _chunks(counts: Tensor, pixels: int, max_elements: int, slack: float = 0.85) -> list[Tensor]:
    """Group tile positions into chunks of similar list length, each under ``max_elements``.

    Tiles are taken longest list first; a chunk closes when the next list is shorter than
    ``slack`` times its longest, which bounds the padding to about 1 - slack of the work.
    """
    order = torch.argsort(counts, descending=True)
    sorted_counts = counts[order].tolist()
    chunks, i = [], 0
    while i < len(order):
        longest = max(sorted_counts[i], 1)
        cap = max(1, max_elements // (longest * pixels))
        j = i + 1
        while j < len(order) and j - i < cap and sorted_counts[j] >= slack * longest:
            j += 1
        chunks.append(order[i:j])
        i = j
    return chunks


@dataclass
class _ChunkConstants:
    """What every chunk of ``rasterize`` shares: the packed per-Gaussian tables and the pixel basis."""

    table: Tensor  # [C*N, 6] per Gaussian: mean2d (2), conic (3), log opacity
    vals: Tensor  # [C*N, D + 1] values to composite, then a constant 1 (its sum is the alpha)
    basis: Tensor  # [6, P] (u^2, uv, v^2, u, v, 1) of every pixel of a tile, tile-centred pixel units
    tile_xy: Tensor  # [T_used, 2] pixel centre of every used tile
    pad: Tensor  # [6] quadratic form of padding slots (alpha = 0)
    log_min: float  # exponents are clamped to [log_min, log_max]
    log_max: float


def _composite_chunk(lists: _TileLists, chunk: Tensor, k: _ChunkConstants) -> Tensor:
    """Front-to-back compositing of the tiles ``chunk`` (positions in ``lists.tile_ids``):
    ``[T, P, D + 1]`` per pixel, the weighted values and (last channel) the alpha."""
    dtype, device = k.vals.dtype, k.vals.device
    P = k.basis.shape[1]
    T, L = len(chunk), int(lists.counts[chunk].max())
    slot = torch.arange(L, device=device)
    present = slot[None, :] < lists.counts[chunk, None]  # [T, L]
    idx = lists.gauss_flat[(lists.offsets[chunk, None] + slot[None, :]).clamp_max(len(lists.gauss_flat) - 1)]
    attr = k.table.index_select(0, idx.reshape(-1)).reshape(T, L, 6)
    centre = k.tile_xy[chunk][:, None, :]  # [T, 1, 2]
    mx, my = attr[..., 0] - centre[..., 0], attr[..., 1] - centre[..., 1]
    ga, gb, gc, lo = attr[..., 2], attr[..., 3], attr[..., 4], attr[..., 5]
    q = torch.stack(
        [
            -0.5 * ga,
            -gb,
            -0.5 * gc,
            ga * mx + gb * my,
            gb * mx + gc * my,
            lo - (0.5 * ga * mx * mx + gb * mx * my + 0.5 * gc * my * my),
        ],
        dim=-1,
    )
    q = torch.where(present[..., None], q, k.pad)  # padding slots get alpha = 0
    log_alpha = (q.reshape(T * L, 6) @ k.basis).reshape(T, L, P).clamp_(min=k.log_min, max=k.log_max)
    alpha = F.threshold(torch.exp(log_alpha), ALPHA_THRESHOLD, 0.0)  # min(0.999, o e^-sigma), < 1/255 -> 0
    # trans[:, i] is the transmittance in front of Gaussian i; trans[:, i + 1] behind it.
    one_minus = torch.cat([torch.ones(T, 1, P, dtype=dtype, device=device), 1.0 - alpha], dim=1)
    trans = torch.cumprod(one_minus, dim=1)
    # A pixel stops before the Gaussian that would bring T to <= 1e-4. With behind = T after i,
    # zeroed once <= 1e-4: weight_i = alpha_i T_i = behind_i * alpha_i / (1 - alpha_i), exactly 0
    # for that Gaussian and all behind it.
    behind = F.threshold(trans[:, 1:], TRANSMITTANCE_MIN, 0.0)
    weights = behind * (alpha / one_minus[:, 1:])
    vals_chunk = k.vals.index_select(0, idx.reshape(-1)).reshape(T, L, k.vals.shape[-1])
    return weights.transpose(1, 2) @ vals_chunk  # [T, P, D + 1]


def rasterize(
    proj: Projection,
    values: Tensor,  # [C, N, D] per-camera channels to composite (colour, depth, features)
    width: int,
    height: int,
    tile_size: int = 4,
    max_chunk_elements: int = 1 << 24,
) -> tuple[Tensor, Tensor]:
    """Composite projected Gaussians front to back.

    Returns ``(image [C, H, W, D], alpha [C, H, W, 1])`` with no background applied.
    """
    C, N = proj.depths.shape
    D = values.shape[-1]
    dtype, device = values.dtype, values.device
    ts, P = tile_size, tile_size * tile_size
    tiles_x, tiles_y = math.ceil(width / ts), math.ceil(height / ts)
    lists = _build_tile_lists(proj, width, height, ts)

    # Per-Gaussian attributes packed in one table so that each chunk needs a single gather.
    log_o = torch.log(proj.opacities.reshape(C * N, 1).clamp_min(1e-30))
    table = torch.cat([proj.means2d.reshape(C * N, 2), proj.conics.reshape(C * N, 3), log_o], dim=-1)
    # A constant-one channel appended to the values makes the accumulated alpha fall out of the
    # same matrix product as the colours.
    vals = torch.cat([values.reshape(C * N, D), torch.ones(C * N, 1, dtype=dtype, device=device)], dim=-1)

    # The exponent log(alpha) = log(o) - sigma is a quadratic form in tile-centred pixel coordinates
    # (u, v): q . (u^2, uv, v^2, u, v, 1). One GEMM per chunk evaluates it for every pixel of every
    # tile, instead of a dozen elementwise passes; the pixel basis is the same for all tiles.
    jj, ii = torch.meshgrid(torch.arange(ts, dtype=dtype), torch.arange(ts, dtype=dtype), indexing="xy")
    pu, pv = (jj.reshape(-1) + 0.5 - 0.5 * ts), (ii.reshape(-1) + 0.5 - 0.5 * ts)
    basis = torch.stack([pu * pu, pu * pv, pv * pv, pu, pv, torch.ones_like(pu)], dim=0).to(device)  # [6, P]
    tile_xy = torch.stack(
        [(lists.tile_ids % tiles_x) * ts + 0.5 * ts, ((lists.tile_ids // tiles_x) % tiles_y) * ts + 0.5 * ts], -1
    ).to(dtype)
    log_min = math.log(ALPHA_THRESHOLD) - 0.5  # below this alpha is dropped anyway; clamping keeps exp fast
    pad = torch.tensor([0, 0, 0, 0, 0, 2 * log_min], dtype=dtype, device=device)
    consts = _ChunkConstants(table, vals, basis, tile_xy, pad, log_min, math.log(MAX_ALPHA))

    out_tiles, out_ids = [], []
    for chunk in _chunks(lists.counts, P, max_chunk_elements):
        out_tiles.append(_composite_chunk(lists, chunk, consts))
        out_ids.append(lists.tile_ids[chunk])

    n_all = C * tiles_y * tiles_x
    canvas = torch.zeros(n_all, P, D + 1, dtype=dtype, device=device)
    if out_tiles:
        canvas = canvas.index_copy(0, torch.cat(out_ids), torch.cat(out_tiles))
    img = canvas.reshape(C, tiles_y, tiles_x, ts, ts, D + 1).permute(0, 1, 3, 2, 4, 5)
    img = img.reshape(C, tiles_y * ts, tiles_x * ts, D + 1)[:, :height, :width]
    return img[..., :D], img[..., D:]
