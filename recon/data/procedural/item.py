"""One seeded training/evaluation item: a procedural object or scene seen by input and target views.

``make_item(seed)`` is a pure function of its arguments: the same seed gives the same item
(bit-identical on the same device). Randomness comes from CPU ``torch.Generator``s seeded from
``seed`` (one stream each for the shape, the views and the SDF samples), never from global state,
so ``object_for_seed`` rebuilds exactly the shape that ``make_item`` rendered.

Objects are rendered over a white background with masks; scenes fill the frame (masks all 1).
"""

from __future__ import annotations

import dataclasses

import torch

from recon.core.types import Item
from recon.data.procedural.mesh import sdf_samples as _sdf_samples
from recon.data.procedural.objects import ProceduralObject, random_object, random_scene
from recon.data.procedural.rigs import forward_rig, object_rig
from recon.data.procedural.trace import Lighting, render_sdf

_STREAMS = {"object": 0, "views": 1, "sdf": 2}


def _generator(seed: int, stream: str) -> torch.Generator:
    """An independent CPU generator per (seed, stream), by a fixed 64-bit mix (splitmix64)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + _STREAMS[stream] * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) % (1 << 64)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % (1 << 64)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % (1 << 64)
    return torch.Generator().manual_seed((z ^ (z >> 31)) % (1 << 63))


def object_for_seed(seed: int, scene: bool = False) -> ProceduralObject:
    """The object (or scene) that ``make_item(seed, scene=scene)`` renders, in the same world frame."""
    gen = _generator(seed, "object")
    return random_scene(gen) if scene else random_object(gen)


def make_item(
    seed: int,
    n_inputs: int = 4,
    n_targets: int = 4,
    size: int = 256,  # square views, pixels
    scene: bool = False,
    sdf_samples: int = 0,  # exact SDF samples to include (0 = none)
    device: str | torch.device = "cpu",
) -> Item:
    """Render the seeded object (or scene) from ``n_inputs + n_targets`` random cameras.

    Input and target cameras come from one rig distribution (objects: around the object;
    scenes: forward-facing), one random lighting is shared by all views. Tensors live on
    ``device``. ``item.meta``: seed, kind ("object" | "scene"), n_parts, style(s), complexity,
    size, bbox_min/bbox_max (world), lighting (dict), and for scenes n_objects and room.
    """
    obj = object_for_seed(seed, scene)
    gen = _generator(seed, "views")
    n = n_inputs + n_targets
    if scene:
        room = obj.room
        target = (0.5 * (obj.bbox_min[0] + obj.bbox_max[0]), 0.5 * (obj.bbox_min[1] + obj.bbox_max[1]),
                  0.35 * (obj.bbox_max[2] - obj.bbox_min[2]))
        margin = 0.4

        def inside(eye) -> bool:
            return float(room.sdf(torch.tensor([eye], dtype=torch.float32))[0]) > margin

        cams = forward_rig(gen, n, size, target=target, inside=inside)
    else:
        cams = object_rig(gen, n, size)
    lighting = Lighting.random(gen)
    views = render_sdf(obj, cams.to(device), lighting, background=(1.0, 1.0, 1.0))
    views.names = [f"input{i}" for i in range(n_inputs)] + [f"target{i}" for i in range(n_targets)]
    inputs, targets = views.select(list(range(n_inputs))), views.select(list(range(n_inputs, n)))
    samples = _sdf_samples(obj, _generator(seed, "sdf"), sdf_samples, device=device) if sdf_samples > 0 else None
    info = obj.info
    meta = {
        "seed": int(seed),
        "kind": info["kind"],
        "n_parts": obj.n_parts,
        "complexity": info["complexity"],
        "size": size,
        "bbox_min": list(obj.bbox_min),
        "bbox_max": list(obj.bbox_max),
        "lighting": dataclasses.asdict(lighting),
    }
    if scene:
        meta.update(styles=info["styles"], n_objects=info["n_objects"], room=info["room"])
    else:
        meta["style"] = info["style"]
    return Item(inputs, targets, samples, meta)
