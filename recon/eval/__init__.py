"""Evaluation: fixed protocols, metrics and the method interface every reconstructor implements.

Modules (import what you need; this package imports nothing on its own):

- ``interface``: ``Method`` protocol, ``Reconstruction`` and ``Mesh`` (what methods return).
- ``protocols``: named protocols (``get_protocols(name)``) and the generated docs/protocols.md;
  definitions in ``protocols_real`` (lego-sparse-4/8, fox-sparse) and ``protocols_synthetic``
  (synthetic-val, synthetic-val-scenes), shared types in ``protocol_base``.
- ``runner``: ``run_protocol(protocol, method, out_json, out_grid, limit, device) -> dict``.
- ``metrics``: PSNR, SSIM, depth error, Chamfer-L1 / F-score; ``grid``: result image grids.
- ``registry``: ``make_method(name)`` for baselines and the reference methods in
  ``reference_methods`` (mean-color floor, gt-depth oracle).
- ``command``: what ``recon eval`` calls; ``imaging`` and ``view_selection``: data preparation.
"""
