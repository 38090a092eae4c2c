"""The reconstruction pipeline: typed stages, each in its own module, composed by ``run.reconstruct``.

    load_inputs (load.py) -> solve_cameras (cameras.py) -> predict (predict.py) -> refine (refine.py)
    -> ReconstructResult (result.py) -> write_outputs (write.py)

``options.py`` holds what a run is asked to do (``ReconstructOptions``, ``Mode``); ``inputs.py``,
``preprocess.py`` and ``sfm.py`` are the image readers, crops and structure from motion the stages
use; ``batch.py`` runs many jobs. The CLI, the batch jobs and the web app call the same stages.
"""
