"""Ground-truth rendering of procedural objects and scenes by batched sphere tracing in torch.

``render_sdf(obj, cameras, lighting)`` returns ``Views`` with colour, alpha mask, camera z-depth
and world normals for any OpenCV ``Cameras``, on the device of the cameras.

How it marches. Rays are clipped to the object's bounding box (and, in a scene, end at the room's
walls, intersected exactly). Rays step by a conservative distance from the object's cached
``SdfGrid`` (trilinear, one batched gather); within about one grid cell of a surface they use the
exact SDF tree instead. All SDF nodes are 1-Lipschitz, so both are safe steps, and steps are
over-relaxed (x1.6, with the overlap check of Keinert et al. 2014). Finished rays leave the batch
at every step (compaction); rays are processed in chunks to bound memory. A ray stops within a
quarter of its pixel's footprint of a surface; Newton steps along the ray then bring it to within
``hit_tol * size`` (size: the larger of the bounding-box diagonal and 1) of the surface, and rays
that only passed close to a surface march on with that strict tolerance (see ``sphere_trace``).

Shading: ``albedo * (ambient * hemisphere + fill * max(n.f, 0) + intensity * max(n.l, 0) * shadow)
+ specular``, with a directional key light ``l``, a weaker shadowless fill light ``f``, soft
shadows by marching the grid towards the light with the k-penumbra estimate ``min(k h / t)``,
and an optional Blinn-Phong highlight per material. In a scene the room
receives shadows but casts none (the light is directional and would otherwise be blocked by the
ceiling). ``Lighting.ambient_only()`` makes colour equal albedo: view-independent.

Masks: 1 where a ray hits a surface. For objects that is the object; in scenes every ray hits the
room, so the mask is 1 everywhere (full frame) unless ``mask="objects"`` is asked for, which marks
only the objects standing in the room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from recon.core.types import Views
from recon.data.procedural import random_tools as rt
from recon.data.procedural._ops import dot, int_pow, normalize
from recon.data.procedural.grid import SdfGrid
from recon.data.procedural.objects import ProceduralObject
from renderer import Cameras

NEAR_BAND_CELLS = 1.0  # the exact SDF replaces the grid bound below this many grid cells
RELAX_AFTER = 48  # marching steps after which a ray's stopping tolerance grows (x2 after 16 more)
STRICT_STEPS = 64  # extra steps for rays that stopped within the pixel cone of a surface but missed it


@dataclass
class Lighting:
    """Directional key light plus ambient light, shared by all views of an item.

    Attributes:
        direction: unit vector from surfaces towards the light, world frame.
        intensity: key light strength (0 = none).
        ambient: ambient strength.
        sky: hemisphere ambient mix: ambient scales by ``1 - sky + sky * (0.5 + 0.5 n_z)``.
        fill: strength of a shadowless fill light from the side opposite the key light (azimuth
            turned by 180 degrees, elevation 30 degrees).
        shadow_k: penumbra sharpness (larger = harder shadows).
        specular: multiplies each material's specular strength (0 = no highlights).
        color: tint of the key light.
    """

    direction: tuple[float, float, float] = (0.3, -0.4, 0.866)
    intensity: float = 0.8
    ambient: float = 0.35
    sky: float = 0.4
    shadow_k: float = 12.0
    specular: float = 1.0
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    fill: float = 0.0

    @property
    def fill_direction(self) -> tuple[float, float, float]:
        x, y, _ = self.direction
        h = math.hypot(x, y) or 1.0
        c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
        return (-x / h * c, -y / h * c, s)

    @classmethod
    def random(cls, gen: torch.Generator) -> Lighting:
        az, el = rt.uniform(gen, 0, 2 * math.pi), math.radians(rt.uniform(gen, 25, 75))
        warm = rt.uniform(gen, -0.08, 0.08)
        return cls(direction=(math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)),
                   intensity=rt.uniform(gen, 0.5, 0.8), ambient=rt.uniform(gen, 0.45, 0.65), sky=rt.uniform(gen, 0.0, 0.4),
                   shadow_k=rt.log_uniform(gen, 4.0, 32.0), specular=rt.choice(gen, [0.0, 1.0], [0.3, 0.7]),
                   color=(1.0 + warm, 1.0, 1.0 - warm), fill=rt.uniform(gen, 0.15, 0.35))

    @classmethod
    def ambient_only(cls) -> Lighting:
        """Colour = albedo everywhere: no key light, shadows, hemisphere term or highlights."""
        return cls(intensity=0.0, ambient=1.0, sky=0.0, specular=0.0)


def camera_rays(cameras: Cameras) -> tuple[Tensor, Tensor]:
    """World rays through pixel centres: ``origins, dirs [C * H * W, 3]`` (dirs unit), camera-major.

    Same geometry as ``Cameras.rays`` but built from elementwise ops only (bit-stable).
    """
    C, H, W = len(cameras), cameras.height, cameras.width
    dev = cameras.c2w.device
    Kinv = torch.linalg.inv(cameras.K.double()).float()[:, :, :, None, None]  # [C, 3, 3, 1, 1]
    R = cameras.c2w[:, :3, :3].float()[:, :, :, None, None]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32, device=dev) + 0.5,
                          torch.arange(W, dtype=torch.float32, device=dev) + 0.5, indexing="ij")
    cam = [Kinv[:, i, 0] * u + Kinv[:, i, 1] * v + Kinv[:, i, 2] for i in range(3)]  # [C, H, W] each
    world = torch.stack([R[:, i, 0] * cam[0] + R[:, i, 1] * cam[1] + R[:, i, 2] * cam[2] for i in range(3)], -1)
    dirs = normalize(world.reshape(-1, 3))
    origins = cameras.c2w[:, None, :3, 3].float().expand(C, H * W, 3).reshape(-1, 3)
    return origins, dirs


def _slab(o: Tensor, d: Tensor, lo, hi) -> tuple[Tensor, Tensor]:
    """Entry and exit ``t`` of rays with an axis-aligned box (entry > exit: no intersection)."""
    t0 = torch.full_like(o[:, 0], -1e30)
    t1 = torch.full_like(o[:, 0], 1e30)
    for a in range(3):
        inv = 1.0 / torch.where(d[:, a].abs() < 1e-12, 1e-12, d[:, a])
        ta, tb = (lo[a] - o[:, a]) * inv, (hi[a] - o[:, a]) * inv
        t0 = torch.maximum(t0, torch.minimum(ta, tb))
        t1 = torch.minimum(t1, torch.maximum(ta, tb))
    return t0, t1


def _compact(keep: Tensor, *tensors: Tensor) -> list[Tensor]:
    return [x.index_select(0, keep) for x in tensors]


def _exact(obj: ProceduralObject, o: Tensor, d: Tensor, t: Tensor) -> Tensor:
    return obj.root.query((o + t[:, None] * d).t().contiguous()).d


@dataclass
class Trace:
    """Result of ``sphere_trace`` for N rays: ``t [N]`` (ray parameter of the hit, or the end of the
    interval), ``hit [N]`` bool, ``normals [N, 3]`` unit world normals at hits (0 elsewhere)."""

    t: Tensor
    hit: Tensor
    normals: Tensor
    material: tuple[Tensor, Tensor] | None = None  # at hits: leaf index [H], leaf-frame points [H, 3]


def sphere_trace(obj: ProceduralObject, o: Tensor, d: Tensor, t0: Tensor, t1: Tensor, grid: SdfGrid,
                 eps: float, cone: Tensor | float = 0.0, max_steps: int = 160, omega: float = 1.6,
                 size: float = 1.0) -> Trace:
    """March rays ``o + t d`` (``d`` unit) over ``[t0, t1]`` to the first surface of ``obj``.

    Over-relaxed sphere tracing (Keinert et al. 2014): steps of ``omega * r``, falling back to
    plain steps for the rest of a ray when the bounding spheres of two successive points stop
    overlapping (which would leave a gap where a surface could hide). A ray stops when the distance
    falls below ``max(eps, cone * t)`` (``cone``: per-ray angular tolerance, e.g. a fraction of a
    pixel); Newton steps along the ray, with the slope ``-n.d`` from the SDF gradient, then bring
    it to within about ``eps`` of the surface. Rays whose residual stays above ``4 eps`` (they
    passed within the cone of a surface without hitting it, or graze it) march on with the strict
    tolerance ``eps`` for up to ``STRICT_STEPS`` more steps; those still unresolved count as hits
    only if they remain within the cone tolerance. ``size`` (world units, the scene's size) caps
    the Newton steps.
    """
    N = o.shape[0]
    cone = torch.as_tensor(cone, dtype=o.dtype, device=o.device).expand(N)
    t_out, hit, r_out = _march(obj, o, d, t0, t1, grid, eps, cone, max_steps, omega, RELAX_AFTER)
    normals = torch.zeros_like(o)
    leaf = torch.zeros(N, dtype=torch.int64, device=o.device)
    local = torch.zeros_like(o)
    h = hit.nonzero()[:, 0]
    if h.numel():
        th, n, (lf, lc), res = _refine(obj, o[h], d[h], t_out[h], r_out[h], eps, size)
        t_out[h], normals[h], leaf[h], local[h] = th, n, lf, lc
        u = h[res.abs() > 4 * eps]
        if u.numel():  # strict second pass for the unresolved rays, from where they stopped
            tu, hu, ru = _march(obj, o[u], d[u], t_out[u] - res[res.abs() > 4 * eps].abs(), t1[u], grid, eps,
                                torch.zeros_like(cone[u]), STRICT_STEPS, 1.0, STRICT_STEPS)
            close = ru.abs() < torch.clamp_min(cone[u] * tu, eps)
            hu2 = hu & (ru.abs() < 4 * eps)
            hit[u] = hu2 | close
            g = hu2.nonzero()[:, 0]
            if g.numel():
                tg, ng, (lg, cg), _ = _refine(obj, o[u[g]], d[u[g]], tu[g], ru[g], eps, size)
                t_out[u[g]], normals[u[g]], leaf[u[g]], local[u[g]] = tg, ng, lg, cg
            normals[u[~hit[u]]] = 0.0
            t_out[u[~hit[u]]] = t1[u[~hit[u]]]
    h = hit.nonzero()[:, 0]
    return Trace(t_out, hit, normals, (leaf[h], local[h]))


def _march(obj: ProceduralObject, o: Tensor, d: Tensor, t0: Tensor, t1: Tensor, grid: SdfGrid, eps: float,
           cone: Tensor, max_steps: int, omega: float, relax_after: int) -> tuple[Tensor, Tensor, Tensor]:
    """The marching loop of ``sphere_trace``: ``(t [N], hit [N], sdf at t [N])``, unrefined."""
    N = o.shape[0]
    t_out = t1.clone()
    r_out = torch.zeros_like(t1)
    hit = torch.zeros(N, dtype=torch.bool, device=o.device)
    idx = (t0 < t1).nonzero()[:, 0]
    t, lim, oi, di, ci = _compact(idx, t0, t1, o, d, cone)
    t = t.clamp_min(0.0)
    w = torch.full_like(t, omega)
    r_prev = torch.zeros_like(t)
    step_prev = torch.zeros_like(t)
    was_near = torch.zeros_like(t, dtype=torch.bool)
    near_band = NEAR_BAND_CELLS * grid.h
    relax = 1.0
    for it in range(max_steps):
        # Rays still marching after ``relax_after`` steps are grazing a surface: widen their tolerance.
        relax = 1.0 + max(0, it - relax_after) / 16.0
        if idx.numel() == 0:
            break
        px, py, pz = oi[:, 0] + t * di[:, 0], oi[:, 1] + t * di[:, 1], oi[:, 2] + t * di[:, 2]
        # Rays that were near a surface at the last step use the exact SDF directly; the others
        # take the grid bound and switch to the exact SDF once that falls below the band.
        far = (~was_near).nonzero()[:, 0]
        if far.numel() == t.shape[0]:
            r = grid.lower_bound(px, py, pz)
        else:
            r = torch.zeros_like(t).index_copy(0, far, grid.lower_bound(*_compact(far, px, py, pz)))
        near = (was_near | (r < near_band)).nonzero()[:, 0]
        if near.numel():
            r = r.index_copy(0, near, obj.root.query(torch.stack(_compact(near, px, py, pz))).d)
        was_near = r < near_band
        fail = (w > 1.0) & (r.abs() + r_prev < step_prev)
        step = torch.where(fail, (1.0 - w) * step_prev, w * r)
        w = torch.where(fail, 1.0, w)
        done = ~fail & (r < torch.clamp_min(ci * t, eps) * relax)
        gone = ~fail & (t > lim)
        fin = done | gone
        if bool(fin.any()):
            fidx = fin.nonzero()[:, 0]
            gidx = idx.index_select(0, fidx)
            hit[gidx] = done.index_select(0, fidx)
            t_out[gidx] = t.index_select(0, fidx)
            r_out[gidx] = r.index_select(0, fidx)
            keep = (~fin).nonzero()[:, 0]
            idx, t, lim, oi, di, ci, w, r_prev, step, was_near = _compact(keep, idx, t, lim, oi, di, ci, w, r.abs(), step, was_near)
            step_prev = step
        else:
            r_prev, step_prev = r.abs(), step
        t = t + step
    if idx.numel():  # out of steps: a grazing ray; count it as a hit if it is close
        r = _exact(obj, oi, di, t)
        hit[idx] = r.abs() < torch.clamp_min(ci * t, eps) * relax
        t_out[idx], r_out[idx] = t, r
    return t_out, hit, r_out


def _refine(obj: ProceduralObject, o: Tensor, d: Tensor, t0: Tensor, f0: Tensor, eps: float, size: float):
    """Newton steps on ``g(t) = sdf(o + t d)`` from ``g(t0) = f0`` with slope ``g' = n.d`` (``n``:
    the SDF gradient at ``t0``). A first step is kept only where it does not increase ``|g|``
    (a grazing ray that truly misses would be thrown far); a second, capped step follows.
    Rays that moved noticeably get their normal recomputed at the final point.

    Returns ``t [H]``, unit normals ``[H, 3]``, the material data ``(leaf [H], local [H, 3])`` and
    the SDF at the final ``t`` (the residual).
    """
    n = _gradient(obj, o + t0[:, None] * d, f0)
    cos = -dot(n, d)
    inv = torch.where(cos > 0.01, 1.0 / cos.clamp_min(0.01), torch.zeros_like(cos))
    t1 = t0 + (f0 * inv).clamp(-0.25 * size, 0.25 * size)
    f1 = _exact(obj, o, d, t1)
    bad = f1.abs() > f0.abs() + eps
    t1, f1 = torch.where(bad, t0, t1), torch.where(bad, f0, f1)  # keep t0 where the step made things worse
    t = t1 + (f1 * inv).clamp(-0.05 * size, 0.05 * size)
    moved = ((t - t0).abs() > 10 * eps).nonzero()[:, 0]
    if moved.numel():  # new normal there, and one more Newton step with it (near edges the first slope is off)
        om, dm, tm = o[moved], d[moved], t[moved]
        nm, fm = obj.normals(om + tm[:, None] * dm, with_sdf=True)
        cm = -dot(nm, dm)
        tm = tm + torch.where(cm > 0.05, fm / cm.clamp_min(0.05), torch.zeros_like(fm)).clamp(-0.05 * size, 0.05 * size)
        t[moved], n[moved] = tm, nm
    f = obj.root.query((o + t[:, None] * d).t().contiguous(), full=True)  # material and residual at the final t
    return t, n, (f.leaf, f.local.t()), f.d


def _gradient(obj: ProceduralObject, p: Tensor, f: Tensor, eps: float = 5e-4) -> Tensor:
    """Unit SDF gradient at ``p [N, 3]`` by forward differences from the known values ``f = sdf(p)``."""
    N = p.shape[0]
    off = torch.eye(3, dtype=p.dtype, device=p.device)[:, None] * eps
    fx = obj.sdf((p[None] + off).reshape(-1, 3)).reshape(3, N)
    return normalize(torch.stack([fx[0] - f, fx[1] - f, fx[2] - f], -1))


def soft_shadow(obj: ProceduralObject, grid: SdfGrid, p: Tensor, n: Tensor, light: Tensor, k: float,
                max_steps: int = 64) -> Tensor:
    """Visibility of the key light in [0, 1] at surface points ``p [N, 3]`` with normals ``n``.

    Marches ``p + 2h n + t l`` through the grid (``h``: grid cell), keeping ``min(k f / t)``
    where ``f`` is the interpolated SDF; objects are the only occluders.
    """
    N = p.shape[0]
    res = torch.ones(N, device=p.device)
    o = p + n * (2.0 * grid.h)
    dl = light.expand(N, 3)
    ta, tb = _slab(o, dl, grid.lo, grid.hi)
    tstart = grid.h
    idx = (tb > torch.maximum(ta, torch.full_like(ta, tstart))).nonzero()[:, 0]
    t = torch.maximum(ta[idx], torch.full_like(ta[idx], tstart))
    lim, oi, r = tb[idx], o[idx], res[idx]
    for _ in range(max_steps):
        if idx.numel() == 0:
            break
        x, y, z = oi[:, 0] + t * light[0], oi[:, 1] + t * light[1], oi[:, 2] + t * light[2]
        f, e = grid.interp_and_error(x, y, z)  # inside the grid box by construction of [t, lim]
        r = torch.minimum(r, (k * f / t).clamp_min(0.0))
        t = t + torch.minimum((f - e).clamp_min(0.25 * grid.h), 4 * grid.h + 0.2 * t)
        fin = (r < 0.01) | (t > lim)
        if bool(fin.any()):
            fidx = fin.nonzero()[:, 0]
            res[idx.index_select(0, fidx)] = r.index_select(0, fidx)
            keep = (~fin).nonzero()[:, 0]
            idx, t, lim, oi, r = _compact(keep, idx, t, lim, oi, r)
    if idx.numel():
        res[idx] = r
    s = res.clamp(0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _shade(albedo: Tensor, n: Tensor, view: Tensor, spec: Tensor, shin: Tensor, shadow: Tensor, lighting: Lighting) -> Tensor:
    dev = albedo.device
    amb = lighting.ambient * (1.0 - lighting.sky + lighting.sky * (0.5 + 0.5 * n[:, 2]))
    if lighting.fill > 0:
        F = torch.tensor(lighting.fill_direction, device=dev)
        amb = amb + lighting.fill * dot(n, F.expand_as(n)).clamp_min(0.0)
    c = albedo * amb[:, None]
    if lighting.intensity > 0:
        L = torch.tensor(lighting.direction, device=dev)
        ndl = dot(n, L.expand_as(n)).clamp_min(0.0)
        col = torch.tensor(lighting.color, device=dev)
        c = c + albedo * (lighting.intensity * ndl * shadow)[:, None] * col
        if lighting.specular > 0 and bool((spec > 0).any()):
            half = normalize(L - view)
            ndh = dot(n, half).clamp_min(0.0)
            powered = torch.zeros_like(ndh)
            for e in (8, 16, 32, 64):
                powered = torch.where(shin == e, int_pow(ndh, e), powered)
            hl = lighting.specular * lighting.intensity * spec * powered * shadow * (ndl > 0).float()
            c = c + hl[:, None] * col
    return c.clamp(0.0, 1.0)


def render_sdf(
    obj: ProceduralObject,
    cameras: Cameras,  # C cameras; rendering happens on cameras.device
    lighting: Lighting | None = None,  # None = Lighting() (a default key light)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),  # colour where no surface is hit
    max_steps: int = 160,
    hit_tol: float = 1e-4,  # final accuracy, relative to the scene size (max(bbox diagonal, 1))
    pixel_tol: float = 0.25,  # marching stops within this many pixels' footprint of a surface
    chunk: int = 1 << 19,  # rays marched together
    shadows: bool = True,
    mask: str = "surface",  # "surface": any hit (full frame in scenes); "objects": objects only
) -> Views:
    """Render ``obj`` (object or scene) at ``cameras``.

    Returns ``Views`` with ``images [C, H, W, 3]`` in [0, 1], ``masks [C, H, W, 1]`` (see module
    docstring), ``depth_z [C, H, W, 1]`` camera z in world units (0 where nothing is hit),
    ``normals [C, H, W, 3]`` unit world-frame (0 where nothing is hit).

    Example::

        cams = Cameras.orbit(4, radius=2.5, width=128, height=128)
        views = render_sdf(random_object(torch.Generator().manual_seed(0)), cams)
    """
    lighting = lighting or Lighting()
    dev = cameras.device
    C, H, W = len(cameras), cameras.height, cameras.width
    grid = obj.grid(dev)
    size = max(1.0, obj.radius * 2)
    eps = hit_tol * size
    origins, dirs = camera_rays(cameras)
    N = origins.shape[0]
    rgb = torch.empty(N, 3, device=dev)
    alpha = torch.zeros(N, device=dev)
    depth = torch.zeros(N, device=dev)
    normals = torch.zeros(N, 3, device=dev)
    forward = cameras.c2w[:, :3, 2].float()[:, None].expand(C, H * W, 3).reshape(-1, 3)
    focal = torch.sqrt(cameras.K[:, 0, 0] * cameras.K[:, 1, 1]).float()[:, None].expand(C, H * W).reshape(-1)
    bg = torch.tensor(background, dtype=torch.float32, device=dev)
    L = torch.tensor(lighting.direction, dtype=torch.float32, device=dev)
    for s in range(0, N, chunk):
        o, d = origins[s : s + chunk], dirs[s : s + chunk]
        t0, t1 = _slab(o, d, grid.lo, grid.hi)
        if obj.room is not None:
            t_room, face, n_room = obj.room.intersect(o, d)
            t1 = torch.minimum(t1, t_room)
        cone = pixel_tol / focal[s : s + chunk]
        tr = sphere_trace(obj, o, d, t0, t1, grid, eps, cone, max_steps, size=size)
        t, hit, n = tr.t, tr.hit, tr.normals
        col = bg.expand_as(o).clone()
        hi = hit.nonzero()[:, 0]
        albedo, spec, shin = obj.shading_params(tr.material)
        surf = hit.clone()
        if obj.room is not None:
            ri = (~hit).nonzero()[:, 0]
            t = torch.where(hit, t, t_room)
            p_room = o[ri] + t[ri, None] * d[ri]
            n[ri] = n_room[ri]
            surf[:] = True
            albedo = torch.cat([albedo, obj.room.albedo(p_room, face[ri])])
            spec = torch.cat([spec, torch.zeros_like(p_room[:, 0])])
            shin = torch.cat([shin, torch.zeros_like(p_room[:, 0], dtype=torch.int64)])
            hi = torch.cat([hi, ri])
        pts = o[hi] + t[hi, None] * d[hi]
        nh = n[hi]
        vis = torch.ones_like(pts[:, 0])
        if shadows and lighting.intensity > 0:
            lit = (dot(nh, L.expand_as(nh)) > 0).nonzero()[:, 0]
            vis[lit] = soft_shadow(obj, grid, pts[lit], nh[lit], L, lighting.shadow_k)
        col[hi] = _shade(albedo, nh, d[hi], spec, shin, vis, lighting)
        rgb[s : s + chunk] = col
        alpha[s : s + chunk] = (hit if mask == "objects" else surf).float()
        depth[s : s + chunk] = torch.where(surf, t * dot(d, forward[s : s + chunk]), torch.zeros_like(t))
        normals[s : s + chunk] = n
    return Views(rgb.reshape(C, H, W, 3), cameras, alpha.reshape(C, H, W, 1), depth.reshape(C, H, W, 1),
                 normals.reshape(C, H, W, 3))
