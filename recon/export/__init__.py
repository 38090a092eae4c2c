"""Game-ready mesh export (issue 6): surface extraction, clean-up, decimation, UVs, baked texture, files.

One entry point, ``export_mesh(source, path, options)``; the stages are public functions too so that
callers (CLI, app, benchmarks) can time or reuse them. Output files follow glTF conventions (+Y up,
metres, right-handed); the source's up vector and unit scale are options.
"""

from recon.export.api import MeshExportOptions, export_mesh
from recon.export.cleanup import (
    CleanupOptions,
    clean_mesh,
    decimate,
    lod_chain,
    mesh_report,
)
from recon.export.extract import (
    TsdfOptions,
    fuse_tsdf,
    gaussian_color_fn,
    mesh_from_gaussians,
    mesh_from_sdf,
    point_depth,
    point_view_size,
    sdf_color_fn,
    tsdf_resolution,
    vertex_color_fn,
    virtual_cameras,
)
from recon.export.files import placement, up_to_y_rotation
from recon.export.photo import PhotoBakeOptions, photo_color_fn
from recon.export.texture import (
    UVMesh,
    bake_texture,
    dilate,
    rasterize_uv,
    split_faces,
    unwrap,
)

__all__ = [
    "CleanupOptions",
    "MeshExportOptions",
    "PhotoBakeOptions",
    "TsdfOptions",
    "UVMesh",
    "bake_texture",
    "clean_mesh",
    "decimate",
    "dilate",
    "export_mesh",
    "fuse_tsdf",
    "gaussian_color_fn",
    "lod_chain",
    "mesh_from_gaussians",
    "mesh_from_sdf",
    "mesh_report",
    "photo_color_fn",
    "placement",
    "point_depth",
    "point_view_size",
    "rasterize_uv",
    "sdf_color_fn",
    "split_faces",
    "tsdf_resolution",
    "unwrap",
    "up_to_y_rotation",
    "vertex_color_fn",
    "virtual_cameras",
]
