"""Training of ReconModel.

- ``config``: ``TrainConfig`` (from JSON), the learning-rate schedule and the step plan.
- ``datasets``: the training dataset and the items of one step; ``batch`` and ``losses``: a
  micro-batch and its loss.
- ``trainer``: the ``Trainer`` loop and ``train`` (what ``recon train`` runs); ``distributed``: the
  process group under ``torchrun`` (DDP).
- ``state_io``: pickle-free training state and resume; ``run_log``: ``log.jsonl``;
  ``evaluation``: the periodic evaluation and ``loss.png``.
"""
