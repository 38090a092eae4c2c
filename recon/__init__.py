"""Recon: feed-forward 3D reconstruction (model, data, pipeline, export, CLI).

The Python API's entry point is ``recon.reconstruct(inputs, options)`` (see ``recon.pipeline.run``);
importing ``recon`` loads nothing heavy: the pipeline, torch and the model load on first call.
"""

from __future__ import annotations

__version__ = "0.1.0"


def reconstruct(inputs, options=None, reconstructor=None):
    """Photos (files, a folder, or a dataset folder) to a ``ReconstructResult`` with ``.gaussians``,
    ``.cameras``, ``.report`` and ``.save(dir, formats)``; see ``recon.pipeline.run.reconstruct``."""
    from recon.pipeline.run import reconstruct as _reconstruct

    return _reconstruct(inputs, options, reconstructor)
