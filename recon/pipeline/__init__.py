"""The reconstruction pipeline, one stage per module, each a function with typed inputs and outputs.

``load inputs -> preprocess -> cameras -> predict -> refine -> export`` (``../shared/DESIGN.md``).
The CLI and the web app call the same stage functions. Among the stage modules:

- ``recon.pipeline.inputs``: read image files or a folder (``load_images``) into ``LoadedImage``
  (float RGB, alpha mask, EXIF orientation applied, EXIF 35 mm focal), and intrinsics for images
  without cameras (``default_intrinsics``).
- ``recon.pipeline.preprocess``: foreground masks (alpha or GrabCut, ``foreground_mask``), the
  object path's square recentring crop (``recentre_crop``) and the scene/posed path's resize
  (``resize_to_model``), each returning the pixels together with the ``K`` that belongs to them.
- further stages (camera estimation, refinement, batch runs, ...) live in their own modules.

Importing this package imports nothing heavy; import the stage modules themselves.
"""
