"""Inference with a trained model, posed, unposed and mesh extraction apart:

- ``posed``: images with cameras -> Gaussians in the input world frame (with silhouette carving,
  ``carve``);
- ``unposed``: images alone -> cameras solved from the predicted pointmap (``pose``) and Gaussians
  in the first camera's frame;
- ``mesh``: images with cameras -> the triplane SDF's mesh in the input world frame;
- ``Reconstructor`` (``reconstructor``): the model, its device, dtype and ``InferenceSettings``,
  calling the functions above.
"""

from recon.inference.posed import PosedPrediction
from recon.inference.reconstructor import Reconstructor
from recon.inference.settings import InferenceSettings
from recon.inference.unposed import UnposedPrediction

__all__ = ["InferenceSettings", "PosedPrediction", "Reconstructor", "UnposedPrediction"]
