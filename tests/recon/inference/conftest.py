"""Inference tests share the model tests' fixtures: single-threaded torch and a seeded untrained
``preset("tiny")`` model (``tiny_model``)."""

from tests.recon.models.conftest import _single_thread, tiny_model  # noqa: F401
