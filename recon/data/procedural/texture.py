"""Solid (3D) procedural textures: colour is a function of the 3D point, so every view agrees.

Each material is a dataclass with random parameters and ``albedo(points [P, 3]) -> [P, 3]`` in
[0, 1]. Points are given in the frame of the primitive that owns the surface (scaled to world
units), so patterns follow their part when it is moved, rotated or deformed. Noise reads per-cell
random values from a small lattice table drawn from the material's ``seed`` (no global random
state; the pattern repeats every ``PERIOD`` cells, far beyond an object).

Available: ``Solid``, ``Gradient``, ``Stripes`` (optionally warped by fBm: marble/wood),
``Checker``, ``NoiseColor`` (value or Perlin fBm between two colours), ``Voronoi`` (cells with
optional borders), ``Spots`` (decal-like discs over a base colour). Every material can add
``grain``: a multiplicative fBm that keeps flat regions from being perfectly flat.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from recon.data.procedural._ops import clamp01, mix, smoothstep

Color = tuple[float, float, float]
PERIOD = 32  # lattice tables repeat every PERIOD cells along each axis


@functools.lru_cache(maxsize=64)
def _table(seed: int, device: str) -> Tensor:
    """Random lattice values ``[4, PERIOD^3]`` in [0, 1) for ``seed`` (CPU generator, then moved):
    channel 0 is a per-cell value, channels 1-3 a per-cell vector (gradients, feature points)."""
    g = torch.Generator().manual_seed(seed % (1 << 63))
    return torch.rand(4, PERIOD ** 3, generator=g).to(device)


def _lattice(p: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Integer cell coordinates (int64) and fractional positions of points ``[P, 3]``."""
    cell = torch.floor(p)
    return [c.to(torch.int32) for c in cell.unbind(-1)], list((p - cell).unbind(-1))


def _cells(ix: Tensor, iy: Tensor, iz: Tensor, offsets: list[tuple[int, int, int]]) -> Tensor:
    """Flat table indices ``[len(offsets) * P]`` of the cells ``(ix, iy, iz) + offset`` (wrapped)."""
    m = PERIOD - 1
    span = sorted({o for off in offsets for o in off})
    xs = {a: ((ix + a) & m) * (PERIOD * PERIOD) for a in span}
    ys = {b: ((iy + b) & m) * PERIOD for b in span}
    zs = {c: (iz + c) & m for c in span}
    return torch.cat([xs[a] + ys[b] + zs[c] for a, b, c in offsets])


def _lookup(seed: int, idx: Tensor, channels: slice) -> Tensor:
    return _table(seed, str(idx.device))[channels].index_select(1, idx)


_CORNERS = [(dx, dy, dz) for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)]


def noise(p: Tensor, seed: int, perlin: bool = True) -> Tensor:
    """Lattice noise at ``p [P, 3]`` -> ``[P]`` in about [0, 1]: Perlin gradient noise (random
    gradient vectors per cell) or value noise, with cubic fades between cells."""
    (ix, iy, iz), (fx, fy, fz) = _lattice(p)
    P = p.shape[0]
    ux, uy, uz = smoothstep(fx), smoothstep(fy), smoothstep(fz)
    idx = _cells(ix, iy, iz, _CORNERS)
    if perlin:
        g = (_lookup(seed, idx, slice(1, 4)) * 2.0 - 1.0).reshape(3, 8, P)
        corners = [g[0, i] * (fx - dx) + g[1, i] * (fy - dy) + g[2, i] * (fz - dz) for i, (dx, dy, dz) in enumerate(_CORNERS)]
    else:
        corners = list(_lookup(seed, idx, slice(0, 1)).reshape(8, P).unbind(0))
    x00, x10 = mix(corners[0], corners[1], ux), mix(corners[2], corners[3], ux)
    x01, x11 = mix(corners[4], corners[5], ux), mix(corners[6], corners[7], ux)
    v = mix(mix(x00, x10, uy), mix(x01, x11, uy), uz)
    return v * 0.5 + 0.5 if perlin else v


def fbm(p: Tensor, seed: int, octaves: int = 4, lacunarity: float = 2.0, gain: float = 0.5, perlin: bool = True) -> Tensor:
    """Fractal sum of ``octaves`` noise layers, normalised to about [0, 1]."""
    total, amp, norm, q = torch.zeros_like(p[:, 0]), 1.0, 0.0, p
    for o in range(octaves):
        total = total + amp * noise(q + torch.tensor([17.31 * o, -9.73 * o, 5.19 * o], device=p.device), seed, perlin)
        norm += amp
        amp *= gain
        q = q * lacunarity
    return total / norm


def _c(color: Color, ref: Tensor) -> Tensor:
    return torch.tensor(color, dtype=ref.dtype, device=ref.device)


def _blend(a: Color, b: Color, t: Tensor, ref: Tensor) -> Tensor:
    return mix(_c(a, ref), _c(b, ref), t[:, None])


def _dot_dir(p: Tensor, d: Color) -> Tensor:
    return p[:, 0] * d[0] + p[:, 1] * d[1] + p[:, 2] * d[2]


@dataclass(kw_only=True)
class Material:
    """Base: ``grain`` (0..1) darkens by fBm at ``grain_scale`` cycles per unit; ``specular`` and
    ``shininess`` parameterise the optional Blinn-Phong highlight."""

    seed: int = 0
    grain: float = 0.0
    grain_scale: float = 8.0
    specular: float = 0.0
    shininess: int = 32

    def pattern(self, p: Tensor) -> Tensor:
        raise NotImplementedError

    def albedo(self, p: Tensor) -> Tensor:
        """Colour ``[P, 3]`` in [0, 1] at points ``[P, 3]`` of the owning part's frame (world units)."""
        c = self.pattern(p)
        if self.grain > 0:
            g = fbm(p * self.grain_scale, self.seed + 7, octaves=3)
            c = c * (1.0 - self.grain + self.grain * (0.5 + g))[:, None]
        return clamp01(c)


@dataclass(kw_only=True)
class Solid(Material):
    color: Color

    def pattern(self, p):
        return _c(self.color, p).expand(p.shape[0], 3)


@dataclass(kw_only=True)
class Gradient(Material):
    a: Color
    b: Color
    direction: Color  # unit
    lo: float
    hi: float

    def pattern(self, p):
        t = ((_dot_dir(p, self.direction) - self.lo) / (self.hi - self.lo)).clamp(0, 1)
        return _blend(self.a, self.b, t, p)


@dataclass(kw_only=True)
class Stripes(Material):
    colors: tuple[Color, ...]  # cycled, one per stripe
    direction: Color  # unit
    frequency: float  # stripes per world unit
    softness: float = 0.05  # edge blend, fraction of a stripe
    warp: float = 0.0  # fBm displacement in stripes (marble / wood look)
    warp_scale: float = 2.0

    def pattern(self, p):
        t = _dot_dir(p, self.direction) * self.frequency
        if self.warp > 0:
            t = t + self.warp * (fbm(p * self.warp_scale, self.seed, octaves=4) - 0.5) * 4.0
        i = torch.floor(t)
        f = t - i
        n = len(self.colors)
        k = torch.remainder(i, n).to(torch.int64)
        pal = torch.tensor(self.colors, dtype=p.dtype, device=p.device)
        edge = smoothstep(((f - (1.0 - self.softness)) / max(self.softness, 1e-6)).clamp(0, 1))
        return mix(pal.index_select(0, k), pal.index_select(0, (k + 1) % n), edge[:, None])


@dataclass(kw_only=True)
class Checker(Material):
    a: Color
    b: Color
    scale: float  # cells per world unit

    def pattern(self, p):
        c = torch.floor(p * self.scale)
        odd = torch.remainder(c[:, 0] + c[:, 1] + c[:, 2], 2.0)
        return _blend(self.a, self.b, odd, p)


@dataclass(kw_only=True)
class NoiseColor(Material):
    a: Color
    b: Color
    scale: float
    octaves: int = 4
    perlin: bool = True
    contrast: float = 1.5

    def pattern(self, p):
        v = fbm(p * self.scale, self.seed, self.octaves, perlin=self.perlin)
        t = ((v - 0.5) * self.contrast + 0.5).clamp(0, 1)
        return _blend(self.a, self.b, t, p)


@dataclass(kw_only=True)
class Voronoi(Material):
    colors: tuple[Color, ...]  # one is picked per cell
    scale: float  # cells per world unit
    border: float = 0.0  # border width (cell units), 0 = none
    border_color: Color = (0.1, 0.1, 0.1)

    def pattern(self, p):
        (ix, iy, iz), (fx, fy, fz) = _lattice(p * self.scale)
        P = p.shape[0]
        offsets = [(dx, dy, dz) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        cells = _lookup(self.seed, _cells(ix, iy, iz, offsets), slice(0, 4)).reshape(4, 27, P)
        f1 = torch.full_like(fx, 1e9)
        f2 = torch.full_like(fx, 1e9)
        best = torch.zeros_like(fx)
        for i, (dx, dy, dz) in enumerate(offsets):
            ex, ey, ez = dx + cells[1, i] - fx, dy + cells[2, i] - fy, dz + cells[3, i] - fz
            d = ex * ex + ey * ey + ez * ez
            closer = d < f1
            f2 = torch.where(closer, f1, torch.minimum(f2, d))
            best = torch.where(closer, cells[0, i], best)
            f1 = torch.where(closer, d, f1)
        pal = torch.tensor(self.colors, dtype=p.dtype, device=p.device)
        out = pal.index_select(0, (best * len(self.colors)).to(torch.int64).clamp_max(len(self.colors) - 1))
        if self.border > 0:
            gap = f2.sqrt() - f1.sqrt()
            w = smoothstep((gap / self.border).clamp(0, 1))
            out = mix(_c(self.border_color, p).expand_as(out), out, w[:, None])
        return out


@dataclass(kw_only=True)
class Spots(Material):
    """Decal-like discs: each lattice cell may hold one spot of random radius and colour."""

    base: Color
    colors: tuple[Color, ...]
    scale: float  # cells per world unit
    density: float = 0.6  # fraction of cells with a spot

    def pattern(self, p):
        (ix, iy, iz), (fx, fy, fz) = _lattice(p * self.scale)
        v, a, b, c = _lookup(self.seed, _cells(ix, iy, iz, [(0, 0, 0)]), slice(0, 4)).unbind(0)
        # Centre in [0.25, 0.75]^3, radius <= 0.25: each spot lies inside its own cell.
        cx, cy, cz = 0.25 + 0.5 * a, 0.25 + 0.5 * b, 0.25 + 0.5 * c
        u = v * 7.0 - torch.floor(v * 7.0)  # a second uniform from the same value
        r = 0.1 + 0.15 * u
        ex, ey, ez = fx - cx, fy - cy, fz - cz
        d = (ex * ex + ey * ey + ez * ez).sqrt()
        inside = smoothstep(((r - d) / 0.03).clamp(0, 1)) * (v < self.density).to(p.dtype)
        pal = torch.tensor(self.colors, dtype=p.dtype, device=p.device)
        k = len(self.colors)
        spot = pal.index_select(0, (u * k).to(torch.int64).clamp_max(k - 1))
        return mix(_c(self.base, p).expand_as(spot), spot, inside[:, None])


# ---- random materials -------------------------------------------------------------------------


def _u(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _pick(gen: torch.Generator, options: list, weights: list[float] | None = None):
    w = torch.tensor(weights if weights is not None else [1.0] * len(options))
    return options[int(torch.multinomial(w, 1, generator=gen))]


def random_color(gen: torch.Generator, hue: float | None = None, sat: tuple = (0.15, 0.85), val: tuple = (0.45, 1.0)) -> Color:
    h = _u(gen) if hue is None else hue % 1.0
    return colorsys.hsv_to_rgb(h, _u(gen, *sat), _u(gen, *val))


def random_palette(gen: torch.Generator, n: int) -> list[Color]:
    """``n`` colours around a random hue scheme (analogous, complementary or triadic)."""
    base = _u(gen)
    scheme = _pick(gen, [0.08, 0.5, 1 / 3, 0.2])
    return [random_color(gen, base + scheme * i + _u(gen, -0.04, 0.04)) for i in range(n)]


def _unit_vector(gen: torch.Generator) -> Color:
    v = torch.randn(3, generator=gen)
    v = v / v.norm().clamp_min(1e-6)
    return tuple(float(x) for x in v)


def random_material(gen: torch.Generator, palette: list[Color] | None = None, feature_size: float = 0.15) -> Material:
    """A random material; ``feature_size`` (world units) sets the typical pattern scale."""
    pal = palette or random_palette(gen, 4)
    col = lambda: pal[int(torch.randint(len(pal), (), generator=gen))]
    common = {"seed": int(torch.randint(1 << 30, (), generator=gen)),
              "grain": _pick(gen, [0.0, _u(gen, 0.05, 0.3)]), "grain_scale": _u(gen, 3, 12) / feature_size * 0.15,
              "specular": _pick(gen, [0.0, _u(gen, 0.05, 0.35)], [0.6, 0.4]), "shininess": _pick(gen, [8, 16, 32, 64])}
    freq = 1.0 / (feature_size * _u(gen, 0.4, 2.0))
    kind = _pick(gen, ["solid", "gradient", "stripes", "checker", "noise", "voronoi", "spots"],
                 [0.07, 0.08, 0.22, 0.13, 0.2, 0.15, 0.15])
    if kind == "solid":
        return Solid(color=col(), **common)
    if kind == "gradient":
        lo = _u(gen, -0.9, 0.0)
        return Gradient(a=col(), b=random_color(gen), direction=_unit_vector(gen), lo=lo, hi=lo + _u(gen, 0.3, 1.5), **common)
    if kind == "stripes":
        n = _pick(gen, [2, 2, 3, 4])
        warp = _pick(gen, [0.0, _u(gen, 0.2, 1.0)])
        return Stripes(colors=tuple(col() for _ in range(n)), direction=_unit_vector(gen), frequency=freq,
                       softness=_u(gen, 0.02, 0.3), warp=warp, warp_scale=freq * 0.3, **common)
    if kind == "checker":
        return Checker(a=col(), b=random_color(gen), scale=freq, **common)
    if kind == "noise":
        return NoiseColor(a=col(), b=random_color(gen), scale=freq * _u(gen, 0.5, 2), octaves=_pick(gen, [3, 4, 5]),
                          perlin=_pick(gen, [True, False]), contrast=_u(gen, 1.0, 2.5), **common)
    if kind == "voronoi":
        return Voronoi(colors=tuple(col() for _ in range(3)) + (random_color(gen),), scale=freq,
                       border=_pick(gen, [0.0, _u(gen, 0.03, 0.15)]), border_color=random_color(gen, val=(0.05, 0.4)), **common)
    return Spots(base=col(), colors=tuple(random_color(gen) for _ in range(3)), scale=freq * _u(gen, 0.7, 1.5),
                 density=_u(gen, 0.3, 0.9), **common)


__all__ = [
    "Checker",
    "Gradient",
    "Material",
    "NoiseColor",
    "Solid",
    "Spots",
    "Stripes",
    "Voronoi",
    "fbm",
    "noise",
    "random_color",
    "random_material",
    "random_palette",
]
