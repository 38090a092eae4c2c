"""The Gradio web app: drop photos, reconstruct, look at the 3D, download splats (and meshes).

``build_app(reconstructor, config)`` builds the page around an already loaded model (injected, never
loaded at import); ``launch(host, port, checkpoint)`` loads the model once and serves it
(``recon app``). Reconstructions go through Gradio's queue, ``config.concurrency_limit`` at a time,
so concurrent users wait their turn instead of starving each other. Each session has its own
folder, deleted when the session ends (``gr.State`` delete callback) and by Gradio's cache sweep.
"""

from __future__ import annotations

import logging
import signal
from functools import partial
from pathlib import Path

import gradio as gr

from app.callbacks import (
    MODES,
    AppConfig,
    cleanup_session,
    example_files,
    preview,
    render_views,
    run_reconstruction,
)
from app.callbacks import export_mesh as export_mesh_cb
from app.mesh import UP_AXES
from app.uploads import CAMERA_SUFFIXES, ZIP_SUFFIXES
from recon.pipeline.inputs import IMAGE_SUFFIXES
from recon.pipeline.options import ReconstructOptions
from recon.pipeline.run import load_reconstructor

EXAMPLES_ROOT = Path(__file__).resolve().parents[1] / "assets" / "examples"
EXAMPLES = {"Toy object, 4 posed photos + cameras.json": "toy_posed",
            "Toy object, 4 unposed photos": "toy_unposed",
            "Toy object, 1 photo": "toy_single"}

INTRO = """# Recon: photos to 3D Gaussians
Drop one or more photos of an object (or a zip of them), optionally with a camera file, and press
**Reconstruct**. One photo is reconstructed in single-image mode (its foreground mask is shown in red);
several photos use the camera file when given, otherwise the cameras are estimated."""


def _reconstruct_event(reconstructor, config, files, camera_file, mode, ratio, remove_bg, refine, cache,
                       progress=gr.Progress()):  # noqa: B008 (Gradio injects progress this way)
    """Generator: the 3D view and downloads first, then the turntable and camera plot."""
    out, cache = run_reconstruction(reconstructor, config, files, camera_file, mode, ratio, remove_bg, refine, cache,
                                    progress=progress)
    for w in out.report.get("warnings", []):
        gr.Warning(w)
    r = out.report
    summary = (f"**{r['gaussians']} Gaussians** from {r['views']} view(s), mode **{r['mode']}**, cameras: "
               f"**{r['pose_method']}** ({r['pose_reason']}); 3D ready in {r['app']['seconds_to_3d']:.2f} s.")
    folder = out.ply.parent
    downloads = [str(out.ply), str(out.splat), str(folder / "cameras.json"), str(folder / "report.json")]
    yield str(out.splat), None, None, r, downloads, summary, cache
    out = render_views(out, cache, config, progress=progress)
    yield str(out.splat), str(out.video), str(out.plot), out.report, downloads, summary, cache


def build_app(reconstructor, config: AppConfig | None = None) -> gr.Blocks:
    """The page, bound to ``reconstructor`` (a loaded ``recon.inference.Reconstructor``)."""
    config = config or AppConfig()
    image_types = [*IMAGE_SUFFIXES, *ZIP_SUFFIXES]
    # analytics_enabled=False: the app must not call home (it runs offline).
    with gr.Blocks(title="Recon", delete_cache=(900, config.session_ttl_s), analytics_enabled=False) as demo:
        cache = gr.State(None, time_to_live=config.session_ttl_s, delete_callback=cleanup_session)
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(label="Photos (JPEG, PNG, WebP, TIFF, or a .zip)", file_count="multiple",
                                file_types=image_types, elem_id="photos")
                camera = gr.File(label="Camera file (optional): cameras.json, transforms.json, poses_bounds.npy, "
                                 "cameras_sphere.npz", file_count="single", file_types=list(CAMERA_SUFFIXES),
                                 elem_id="camera_file")
                gallery = gr.Gallery(label="Uploaded photos", columns=4, height=220, elem_id="thumbs")
                note = gr.Markdown("", elem_id="upload_note")
                with gr.Accordion("Settings", open=True):
                    mode = gr.Radio(list(MODES), value="auto", label="Mode",
                                    info="auto: posed with a camera file, single for one photo, else unposed/SfM")
                    remove_bg = gr.Checkbox(value=True, label="Remove background (single-image mode)")
                    ratio = gr.Slider(0.5, 1.0, value=0.85, step=0.05, label="Foreground ratio (single-image mode)")
                    refine = gr.Slider(0, config.max_refine_steps, value=0, step=10, label="Refinement steps",
                                       info="photometric steps on the input views after the network (slower)")
                run = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")
                with gr.Accordion("Examples (made by this project)", open=True):
                    example_buttons = {label: gr.Button(label, size="sm") for label in EXAMPLES}
            with gr.Column(scale=2):
                summary = gr.Markdown("", elem_id="summary")
                viewer = gr.Model3D(label="Gaussians (drag to orbit)", height=420, elem_id="viewer",
                                    clear_color=(1.0, 1.0, 1.0, 1.0))
                with gr.Row():
                    video = gr.Video(label="Turntable (our renderer)", autoplay=True, loop=True, elem_id="turntable")
                    plot = gr.Image(label="Cameras", type="filepath", elem_id="camera_plot")
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
                report = gr.JSON(label="Report", elem_id="report")
                with gr.Accordion("Mesh export (GLB / OBJ)", open=False, elem_id="mesh_section"):
                    gr.Markdown("Re-exports from this session's cached reconstruction; the network is not re-run.")
                    with gr.Row():
                        faces = gr.Slider(1000, 200_000, value=20_000, step=1000, label="Faces", elem_id="mesh_faces")
                        tex = gr.Dropdown([256, 512, 1024, 2048], value=1024, label="Texture size",
                                          elem_id="mesh_texture")
                        up = gr.Dropdown(list(UP_AXES), value="Cameras (mean camera up)", label="Up axis",
                                         elem_id="mesh_up")
                    mesh_button = gr.Button("Export mesh", elem_id="export_mesh")
                    mesh_note = gr.Markdown("", elem_id="mesh_note")
                    mesh_view = gr.Model3D(label="Mesh", height=320, elem_id="mesh_view")
                    mesh_files = gr.File(label="Mesh downloads", file_count="multiple", interactive=False,
                                         elem_id="mesh_downloads")

        preview_fn = partial(preview, config=config)
        for trigger in (files.change, mode.change, remove_bg.change):
            trigger(lambda f, c, m, r, s: preview_fn(f, c, m, r, s), [files, camera, mode, remove_bg, cache],
                    [gallery, note, cache], concurrency_limit=2, show_progress="minimal")
        run.click(partial(_reconstruct_event, reconstructor, config),
                  [files, camera, mode, ratio, remove_bg, refine, cache],
                  [viewer, video, plot, report, downloads, summary, cache],
                  concurrency_limit=config.concurrency_limit, concurrency_id="reconstruct")
        mesh_button.click(export_mesh_cb, [cache, faces, tex, up], [mesh_view, mesh_files, mesh_note],
                          concurrency_limit=config.concurrency_limit, concurrency_id="reconstruct")
        for label, button in example_buttons.items():
            button.click(partial(_load_example, EXAMPLES[label]), None, [files, camera, mode])
    demo.queue(default_concurrency_limit=config.concurrency_limit)
    return demo


def _load_example(name: str):
    images, cams, mode = example_files(EXAMPLES_ROOT, name)
    return images, cams, mode


def launch(host: str = "127.0.0.1", port: int = 7860, checkpoint: str | Path | None = None,
           device: str = "auto", config: AppConfig | None = None) -> None:
    """Load the model once, build the page and serve it (blocks until interrupted). Network runs and
    mesh exports are logged on the ``recon.app`` logger to stderr, one line each."""
    if not logging.getLogger("recon.app").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s recon app: %(message)s", "%H:%M:%S"))
        logging.getLogger("recon.app").addHandler(handler)
        logging.getLogger("recon.app").setLevel(logging.INFO)
    reconstructor = load_reconstructor(ReconstructOptions(checkpoint=checkpoint, device=device))
    config = config or AppConfig()
    demo = build_app(reconstructor, config)
    # SIGTERM (a service manager, `kill`) unwinds like Ctrl-C, so the work folder is removed
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        demo.launch(server_name=host, server_port=port, allowed_paths=[str(EXAMPLES_ROOT)],
                    max_file_size=config.limits.max_total_bytes, show_error=True, quiet=False,
                    footer_links=["gradio"])
    finally:
        signal.signal(signal.SIGTERM, previous)
        demo.close()
        config.cleanup()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)
