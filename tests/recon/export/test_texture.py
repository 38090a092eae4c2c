"""UV rasterisation, island dilation and baking."""

from __future__ import annotations

import numpy as np

from recon.export import bake_texture, dilate, rasterize_uv, unwrap
from recon.export.texture import split_faces
from tests.recon.export.conftest import icosphere


def test_rasterize_covers_the_unit_square_once_with_valid_barycentrics():
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    rows, cols, fid, bary = rasterize_uv(uvs, faces, 16, max_candidates=100)  # many chunks
    covered = np.zeros((16, 16), int)
    np.add.at(covered, (rows, cols), 1)
    assert (covered >= 1).all()
    assert np.allclose(bary.sum(1), 1) and (bary > -1e-6).all()
    p = np.einsum("tk,tkd->td", bary, uvs[faces[fid]])
    assert np.allclose(p[:, 0], (cols + 0.5) / 16) and np.allclose(p[:, 1], 1 - (rows + 0.5) / 16)


def test_dilate_fills_every_texel_from_its_nearest_island():
    image = np.zeros((8, 8, 3))
    mask = np.zeros((8, 8), bool)
    image[1, 1], mask[1, 1] = [1, 0, 0], True
    image[6, 6], mask[6, 6] = [0, 0, 1], True
    out = dilate(image, mask)
    assert (out[0, 0] == [1, 0, 0]).all() and (out[7, 7] == [0, 0, 1]).all() and (out.sum(-1) == 1).all()


def test_unwrap_and_bake_reproduce_a_colour_field():
    mesh = icosphere(0.5, subdivisions=2)
    v, f = mesh.vertices.double().numpy(), mesh.faces.numpy()
    uv = unwrap(v, f, texture_size=128, padding_px=2)
    assert uv.faces.shape == f.shape and uv.uvs.shape == (len(uv.vertices), 2)
    assert np.allclose(uv.vertices, v[uv.source_index]) and (uv.uvs >= 0).all() and (uv.uvs <= 1).all()

    def color(p):
        return np.where(p[:, 2:3] > 0, [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])

    tex, coverage = bake_texture(uv, color, 128)
    assert tex.shape == (128, 128, 3) and tex.dtype == np.uint8 and 0.3 < coverage < 1
    # every texel is red or blue (dilation leaves no black background), and the texel under each
    # face centre's UV has the colour of that face centre's 3D point
    assert ((tex[..., 1] == 0) & ((tex[..., 0] == 255) | (tex[..., 2] == 255))).all()
    centre_uv = uv.uvs[uv.faces].mean(1)
    centre_xyz = uv.vertices[uv.faces].mean(1)
    far = np.abs(centre_xyz[:, 2]) > 0.1
    col = np.clip((centre_uv[:, 0] * 128).astype(int), 0, 127)
    row = np.clip(((1 - centre_uv[:, 1]) * 128).astype(int), 0, 127)
    red = tex[row, col, 0] == 255
    assert (red[far] == (centre_xyz[far, 2] > 0)).all()


def test_split_faces_gives_compact_pieces_that_cover_every_face_once():
    mesh = icosphere(0.5, subdivisions=3)  # 1280 faces
    v, f = mesh.vertices.double().numpy(), mesh.faces.numpy()
    pieces = split_faces(v, f, 100)
    assert all(0 < len(p) <= 100 for p in pieces) and len(pieces) == 16
    assert np.array_equal(np.sort(np.concatenate(pieces)), np.arange(len(f)))
    # median cuts: each piece spans a small part of the sphere
    spans = [np.ptp(v[f[p]].reshape(-1, 3), axis=0).max() for p in pieces]
    assert max(spans) < 0.75


def test_unwrap_in_pieces_keeps_the_geometry_and_one_texel_density_without_overlaps():
    mesh = icosphere(0.5, subdivisions=4)  # 5120 faces
    v, f = mesh.vertices.double().numpy(), mesh.faces.numpy()
    size = 512
    whole = unwrap(v, f, size, padding_px=2, piece_faces=0)
    split = unwrap(v, f, size, padding_px=2, piece_faces=400)
    for uv in (whole, split):
        # the same triangles (as sets of source vertices), each once
        tris = np.sort(uv.source_index[uv.faces], axis=1)
        assert np.array_equal(np.unique(tris, axis=0), np.unique(np.sort(f, axis=1), axis=0)) and len(tris) == len(f)
        assert np.allclose(uv.vertices, v[uv.source_index])
    # one texel density for all pieces: UV area per surface area varies little across faces
    xyz = split.vertices[split.faces]
    area3 = 0.5 * np.linalg.norm(np.cross(xyz[:, 1] - xyz[:, 0], xyz[:, 2] - xyz[:, 0]), axis=1)
    t = split.uvs[split.faces]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    area2 = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    ratio = area2 / area3
    assert np.percentile(ratio, 90) / np.percentile(ratio, 10) < 2.0
    # no two faces share a texel centre, apart from texels on shared edges
    rows, cols, _, _ = rasterize_uv(split.uvs, split.faces, size)
    per_texel = np.bincount(rows * size + cols, minlength=size * size)
    assert (per_texel > 1).sum() < 0.01 * len(rows)
    # more seams (pieces are charted apart) but the atlas stays well used
    _, cov_whole = bake_texture(whole, lambda p: np.ones((len(p), 3)), size)
    _, cov_split = bake_texture(split, lambda p: np.ones((len(p), 3)), size)
    assert cov_split > 0.6 * cov_whole
