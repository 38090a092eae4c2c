"""Name-keyed factory of reconstruction methods for ``recon eval --method NAME``.

Each factory builds its method on demand (a model method loads its checkpoint when it is made).
Every method satisfies ``recon.core.types.Method``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from recon.baselines.optimize import OptimizeBaseline
from recon.baselines.plane_sweep import PlaneSweepBaseline
from recon.core.errors import ReconError
from recon.core.types import Method
from recon.eval.model_methods import ModelMethod, UnposedModelMethod
from recon.eval.reference_methods import GroundTruthDepthMethod, MeanColorMethod

# What ``recon eval`` runs without --method: the shipped model (checkpoints/default or --checkpoint).
DEFAULT_METHOD = "recon"


def _optimize(budget_s: float) -> Method:
    return OptimizeBaseline(budget_s=budget_s)


def _plane_sweep() -> Method:
    return PlaneSweepBaseline()


def _mean_color() -> Method:
    return MeanColorMethod()


def _gt_depth() -> Method:
    return GroundTruthDepthMethod()


def _model(unposed: bool, checkpoint=None) -> Method:
    return UnposedModelMethod(checkpoint) if unposed else ModelMethod(checkpoint)


@dataclass(frozen=True)
class MethodEntry:
    factory: Callable[[], Method]
    description: str


METHODS: dict[str, MethodEntry] = {
    "recon": MethodEntry(lambda checkpoint=None: _model(False, checkpoint), "the shipped feed-forward model (checkpoints/default), posed inputs"),
    "recon-unposed": MethodEntry(lambda checkpoint=None: _model(True, checkpoint), "the shipped model without input cameras (pointmap head), aligned for scoring"),
    "optimize-30s": MethodEntry(lambda: _optimize(30.0), "per-scene Gaussian optimisation from scratch, 30 s budget"),
    "optimize-120s": MethodEntry(lambda: _optimize(120.0), "per-scene Gaussian optimisation from scratch, 120 s budget"),
    "plane-sweep": MethodEntry(_plane_sweep, "plane-sweep stereo depth unprojected to pixel-aligned Gaussians"),
    "mean-color": MethodEntry(_mean_color, "floor: renders the mean input colour everywhere"),
    "gt-depth": MethodEntry(_gt_depth, "oracle: Gaussians unprojected from ground-truth input depth (synthetic only)"),
}


def method_names() -> list[str]:
    return list(METHODS)


MODEL_METHODS = ("recon", "recon-unposed")


def make_method(name: str, checkpoint=None) -> Method:
    """A new instance of the method registered as ``name``; ``ReconError`` listing the known names otherwise.

    ``checkpoint`` (a checkpoint folder) applies to the model methods only; default checkpoints/default."""
    entry = METHODS.get(name)
    if entry is None:
        raise ReconError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    if checkpoint is not None and name not in MODEL_METHODS:
        raise ReconError(f"a checkpoint applies to the model methods ({', '.join(MODEL_METHODS)}), not {name!r}")
    try:
        if name in MODEL_METHODS:
            return entry.factory(checkpoint=checkpoint)
        return entry.factory()
    except ImportError as e:
        raise ReconError(f"method {name!r} is not available: {e}") from None
