"""Recon: feed-forward 3D reconstruction (model, data, pipeline, export, CLI)."""

__version__ = "0.1.0"
