"""What every evaluation protocol is: fixed views, resolution, background and metric settings.

A protocol yields ``EvalItem`` tuples ``(item_id, inputs, targets, extras)`` lazily:
- ``inputs``: the ``Views`` a method sees (images, cameras; masks only where the protocol says
  so; never depth or normals).
- ``targets``: held-out ``Views`` with everything the metrics need (images, masks, ``depth_z``).
- ``extras``: a dict; ``"gt_mesh"`` is a zero-argument callable returning the ground-truth
  ``Mesh`` (built only when a reconstruction has a mesh to compare), ``"oracle_inputs"`` are the
  inputs with ground-truth depth (only for reference methods that declare
  ``uses_ground_truth_depth``; the runner records that in the results).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from recon.core.errors import ReconError
from recon.core.types import Views


class EvalItem(NamedTuple):
    item_id: str
    inputs: Views
    targets: Views
    extras: dict[str, Any]


@dataclass(frozen=True)
class MetricSettings:
    """How a protocol scores a reconstruction (see ``recon.eval.metrics`` for the definitions)."""

    ssim_window: int = 11  # Gaussian window taps (sigma 1.5), kornia
    ssim_padding: str = "valid"  # border pixels where the window does not fit are not scored
    psnr_foreground: bool = False  # also report PSNR over target-mask pixels ("psnr_fg")
    depth: bool = False  # depth abs-rel / RMSE vs the targets' depth_z (world units)
    depth_alpha_min: float = 0.5  # predicted alpha above which a pixel's depth is scored
    mesh: bool = False  # Chamfer-L1 / F-score when the reconstruction has a mesh
    mesh_samples: int = 100_000  # surface points sampled on each mesh
    fscore_tau_rel: float = 0.01  # F-score tau = this x GT bounding-box diagonal (world units)


@dataclass(frozen=True)
class ProtocolOverrides:
    """Departures from the full protocol (for tests and quick looks); recorded in every result.

    ``limit``: evaluate only the first N items. ``size_scale``: multiply image sizes by this
    (cameras resized exactly). Results with any override are not comparable with full runs.
    """

    limit: int | None = None
    size_scale: float = 1.0

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise ReconError(f"item limit must be at least 1, got {self.limit}")
        if not 0.0 < self.size_scale <= 1.0:
            raise ReconError(f"size_scale must be in (0, 1], got {self.size_scale}")

    @property
    def active(self) -> bool:
        return self.limit is not None or self.size_scale != 1.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def scaled(self, width: int, height: int) -> tuple[int, int]:
        return max(8, round(width * self.size_scale)), max(8, round(height * self.size_scale))


class EvalProtocol:
    """Base class: subclasses fix their views and data in code and implement ``_items``."""

    name: str = ""
    description: str = ""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB the reconstruction is rendered over
    metrics: MetricSettings = MetricSettings()
    data_subdir: str | None = None  # folder under the eval data dir; None for generated data

    def __init__(self, data_dir: Path | None = None, overrides: ProtocolOverrides | None = None):
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.overrides = overrides or ProtocolOverrides()

    # ---- what subclasses provide ------------------------------------------------------------

    def definition(self) -> dict:
        """The full JSON-able definition (views, sizes, data, background, metrics)."""
        return {
            "name": self.name,
            "description": self.description,
            "background": list(self.background),
            "metrics": dataclasses.asdict(self.metrics),
            **self._definition(),
        }

    def _definition(self) -> dict:
        raise NotImplementedError

    def num_items(self) -> int:
        raise NotImplementedError

    def _items(self, skip: frozenset[str]) -> Iterator[EvalItem]:
        """Every item in order; items whose id is in ``skip`` need not be built (any placeholder)."""
        raise NotImplementedError

    # ---- shared -------------------------------------------------------------------------------

    @property
    def root(self) -> Path | None:
        """The protocol's data folder (``data_dir / data_subdir``), or None for generated data."""
        if self.data_subdir is None:
            return None
        if self.data_dir is None:
            raise ReconError(f"protocol {self.name} needs an eval data folder (--data)")
        return self.data_dir / self.data_subdir

    def check(self) -> EvalProtocol:
        """Raise a one-line ``ReconError`` if the protocol's data cannot be found."""
        root = self.root
        if root is not None and not root.is_dir():
            raise ReconError(f"protocol {self.name}: data folder {root} not found (pass --data DIR holding {self.data_subdir}/)")
        return self

    def items(self, limit: int | None = None, skip: frozenset[str] = frozenset()) -> Iterator[EvalItem]:
        """Yield ``EvalItem(item_id, inputs, targets, extras)`` lazily, at most ``limit`` (or the override's).

        Items whose id is in ``skip`` (already evaluated, when a run resumes) keep their place in the
        order and count towards the limit, but come as ``EvalItem(item_id, None, None, {})``: the
        protocol does not generate or load them where it can avoid it.
        """
        self.check()
        limits = [v for v in (limit, self.overrides.limit) if v is not None]
        n = min([self.num_items(), *limits])
        if n < 1:
            return
        for i, item in enumerate(self._items(frozenset(skip))):
            yield EvalItem(item.item_id, None, None, {}) if item.item_id in skip else item
            if i + 1 >= n:  # stop before the generator builds one item too many
                return

    def __repr__(self) -> str:
        extra = f", overrides={self.overrides}" if self.overrides.active else ""
        return f"{type(self).__name__}({self.name!r}{extra})"
