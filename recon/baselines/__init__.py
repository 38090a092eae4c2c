"""Baselines every model is compared with under the same protocols.

- ``OptimizeBaseline``: per-scene 3D Gaussian optimisation from scratch at a wall-clock budget.
- ``PlaneSweepBaseline``: classical multi-view plane-sweep stereo unprojected to pixel-aligned Gaussians.

Both implement ``recon.core.types.Method`` and return Gaussians in the input world frame.
"""

from recon.baselines.optimize import OptimizeBaseline, OptimizeConfig
from recon.baselines.plane_sweep import PlaneSweepBaseline, PlaneSweepConfig

__all__ = ["OptimizeBaseline", "OptimizeConfig", "PlaneSweepBaseline", "PlaneSweepConfig"]
