"""Recon: feed-forward 3D reconstruction (model, data, pipeline, export, CLI).

The Python API::

    from recon import ReconstructOptions, reconstruct, write_outputs

    result = reconstruct(["a.jpg", "b.jpg", "c.jpg"], ReconstructOptions(mode="unposed"))
    write_outputs(result, "out", ("ply", "glb"))

``Reconstructor`` is the model alone (posed ``Views`` in, Gaussians out). Importing recon loads
torch and the code, never weights, data or CUDA kernels.
"""

from recon.core.errors import ReconError
from recon.core.types import Mesh, Reconstruction, Views
from recon.inference import Reconstructor
from recon.pipeline.options import Mode, ReconstructOptions
from recon.pipeline.result import ReconstructResult
from recon.pipeline.run import reconstruct
from recon.pipeline.write import write_outputs

__version__ = "0.1.0"

__all__ = ["Mesh", "Mode", "ReconError", "Reconstruction", "ReconstructOptions", "ReconstructResult",
           "Reconstructor", "Views", "__version__", "reconstruct", "write_outputs"]
