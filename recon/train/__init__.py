"""Training of ReconModel: configs and the step plan (``config``), batches and their loss (``batch``,
``losses``), the trainer loop with DDP (``trainer``), and pickle-free training state (``state_io``)."""
