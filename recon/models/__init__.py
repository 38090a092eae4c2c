"""The feed-forward reconstruction model: backbone, heads, adapter, canonical frame."""

from recon.models.model import ModelConfig, ModelOutput, ReconModel, preset

__all__ = ["ModelConfig", "ModelOutput", "ReconModel", "preset"]
