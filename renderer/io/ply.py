"""Gaussians to and from PLY in the INRIA 3DGS layout, which common splat viewers and editors open.

Layout written (binary little-endian, one element ``vertex``, every property ``float``, in order)::

    x y z  nx ny nz  f_dc_0 f_dc_1 f_dc_2  f_rest_0 .. f_rest_{3(K-1)-1}  opacity
    scale_0 scale_1 scale_2  rot_0 rot_1 rot_2 rot_3

Conventions, the same as the reference 3DGS implementation:
- ``f_dc_c = sh[:, 0, c]``; ``f_rest`` is channel-major: property ``f_rest_{c*(K-1) + k-1}`` holds
  coefficient ``k >= 1`` of colour channel ``c``. K = (degree+1)^2, so 0, 9, 24 or 45 ``f_rest``.
- ``opacity`` is the logit of the activated opacity. Opacities are clamped to
  ``[OPACITY_EPS, 1 - OPACITY_EPS]`` before the logit (0 and 1 have none) and after the sigmoid on
  read, so what comes back always lies in the open interval (0, 1).
- ``scale_*`` are natural logs of the activated scales (world units); ``rot_*`` is the rotation
  quaternion in (w, x, y, z) order, stored as given and normalised on read.
- Normals are written as zeros and ignored on read.

Raw values (logits, log scales, unnormalised quaternions) round-trip bit-exactly through
``write_ply_raw`` / ``read_ply_raw`` and ``PlyArrays``; activated values through ``write_ply`` /
``read_ply`` come back as close as one float32 rounding of each conversion allows (the conversions
run in float64 and are rounded to float32 once).

Reading accepts what other tools write: ascii or binary of either byte order, properties in any
order and of any numeric type, extra properties and elements (ignored), no normals. Both directions
stream in chunks of about ``CHUNK_BYTES`` so that millions of splats need no Python lists, and a
write goes to a temporary file in the target folder that replaces the target only once complete.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from renderer.errors import FileFormatError, ReconError
from renderer.gaussians import Gaussians
from renderer.io.atomic import atomic_output
from renderer.sh import num_sh_bases

OPACITY_EPS = 1e-7  # opacities are kept in [OPACITY_EPS, 1 - OPACITY_EPS] so that the logit is finite
CHUNK_BYTES = 16 << 20  # rows are converted and written/read this many bytes at a time
MAX_HEADER_BYTES = 1 << 20  # a longer "header" means the file is not a PLY
DEGREE_OF_F_REST = {0: 0, 9: 1, 24: 2, 45: 3}  # number of f_rest_* properties -> SH degree
PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
BYTE_ORDERS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_F_REST = re.compile(r"f_rest_(\d+)$")


def ply_property_names(sh_degree: int) -> list[str]:
    """The vertex property names of the INRIA layout, in file order, for SH degree 0..3."""
    n_rest = 3 * (num_sh_bases(sh_degree) - 1)
    return [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
        *(f"f_rest_{i}" for i in range(n_rest)),
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]  # fmt: skip


@dataclass
class PlyArrays:
    """The stored (raw) values of N splats, float32 numpy arrays named for what the file holds.

    Attributes:
        means: [N, 3] x y z, world frame.
        f_dc: [N, 3] f_dc_0..2 = sh[:, 0, c].
        f_rest: [N, 3*(K-1)] f_rest_*, channel-major (see the module docstring).
        opacity_logits: [N] the ``opacity`` property.
        log_scales: [N, 3] scale_0..2 = log(scales).
        quats_wxyz: [N, 4] rot_0..3, as stored (not necessarily unit length).

    Arrays already float32 and contiguous are kept, not copied, so they may share memory with
    the tensors they were made from.
    """

    means: np.ndarray
    f_dc: np.ndarray
    f_rest: np.ndarray
    opacity_logits: np.ndarray
    log_scales: np.ndarray
    quats_wxyz: np.ndarray

    def __post_init__(self):
        for f in fields(self):
            setattr(self, f.name, np.ascontiguousarray(getattr(self, f.name), dtype=np.float32))
        n = self.means.shape[0]
        widths = {"means": 3, "f_dc": 3, "log_scales": 3, "quats_wxyz": 4}
        for name, width in widths.items():
            if getattr(self, name).shape != (n, width):
                raise ReconError(f"PlyArrays.{name} must have shape ({n}, {width}), got {getattr(self, name).shape}")
        if self.opacity_logits.shape != (n,):
            raise ReconError(f"PlyArrays.opacity_logits must have shape ({n},), got {self.opacity_logits.shape}")
        if self.f_rest.ndim != 2 or self.f_rest.shape[0] != n or self.f_rest.shape[1] not in DEGREE_OF_F_REST:
            raise ReconError(f"PlyArrays.f_rest must have shape ({n}, 0|9|24|45), got {self.f_rest.shape}")

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return DEGREE_OF_F_REST[self.f_rest.shape[1]]

    def slice(self, start: int, stop: int) -> PlyArrays:
        return PlyArrays(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @classmethod
    def from_gaussians(cls, g: Gaussians) -> PlyArrays:
        """Raw values of activated Gaussians (any device/dtype); logit and log run in float64."""
        g = g.detach().to("cpu")
        n, k = len(g), g.sh.shape[1]
        sh = g.sh.numpy()
        opacities = np.clip(g.opacities.numpy().astype(np.float64), OPACITY_EPS, 1.0 - OPACITY_EPS)
        return cls(
            means=g.means.numpy(),
            f_dc=sh[:, 0, :],
            f_rest=sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1)),
            opacity_logits=np.log(opacities) - np.log1p(-opacities),
            log_scales=np.log(g.scales.numpy().astype(np.float64)),
            quats_wxyz=g.quats_wxyz.numpy(),
        )

    def check(self, source: str, first_row: int = 0) -> None:
        """Raise ``FileFormatError(source, ...)`` on non-finite values or zero-length quaternions."""
        labels = {"means": "x/y/z", "f_dc": "f_dc_*", "f_rest": "f_rest_*", "opacity_logits": "opacity",
                  "log_scales": "scale_*", "quats_wxyz": "rot_*"}  # fmt: skip
        for name, label in labels.items():
            a = getattr(self, name)
            bad = ~np.isfinite(a) if a.ndim == 1 else ~np.isfinite(a).all(axis=1)
            if bad.any():
                row = first_row + int(np.argmax(bad))
                raise FileFormatError(source, f"non-finite {label} value (NaN, inf or beyond float32) at vertex {row}")
        zero = (self.quats_wxyz.astype(np.float64) ** 2).sum(axis=1) == 0
        if zero.any():
            row = first_row + int(np.argmax(zero))
            raise FileFormatError(source, f"zero-length rotation quaternion rot_* at vertex {row}")

    def activate(self, source: str = "PlyArrays", first_row: int = 0) -> dict[str, np.ndarray]:
        """Activated float32 arrays keyed like ``Gaussians`` fields (sh is [N, K, 3])."""
        n, k = len(self), num_sh_bases(self.sh_degree)
        q = self.quats_wxyz.astype(np.float64)
        with np.errstate(over="ignore", under="ignore"):  # out-of-range values are reported below
            scales = np.exp(self.log_scales.astype(np.float64)).astype(np.float32)
            opacities = 1.0 / (1.0 + np.exp(-self.opacity_logits.astype(np.float64)))
        bad = ~(np.isfinite(scales) & (scales > 0)).all(axis=1)
        if bad.any():
            row = first_row + int(np.argmax(bad))
            raise FileFormatError(source, f"scale_* out of range at vertex {row}: exp() is 0 or inf in float32")
        sh = np.empty((n, k, 3), np.float32)
        sh[:, 0, :] = self.f_dc
        sh[:, 1:, :] = self.f_rest.reshape(n, 3, k - 1).transpose(0, 2, 1)
        return {
            "means": self.means,
            "quats_wxyz": (q / np.sqrt((q * q).sum(axis=1, keepdims=True))).astype(np.float32),
            "scales": scales,
            # Clamp again after the float32 rounding: large logits would otherwise round to exactly 1.
            "opacities": np.clip(opacities.astype(np.float32), np.float32(OPACITY_EPS), np.float32(1 - OPACITY_EPS)),
            "sh": sh,
        }

    def to_gaussians(self, source: str = "PlyArrays") -> Gaussians:
        self.check(source)
        return Gaussians(**{name: torch.from_numpy(a.copy()) for name, a in self.activate(source).items()})


# ---- writing ----------------------------------------------------------------------------------


def checked_for_export(g: Gaussians, path: Path) -> Gaussians:
    """``g`` detached on the CPU in float32, after checking shapes and values; shared by both writers."""
    try:
        g = Gaussians(**{f.name: getattr(g, f.name) for f in fields(Gaussians)})  # re-checks shapes
        return g.detach().to("cpu", torch.float32).validate("gaussians")
    except ReconError as e:
        raise FileFormatError(path, f"cannot write: {e}") from None


def _pack_rows(raw: PlyArrays) -> np.ndarray:
    """[rows, P] little-endian float32 in INRIA property order (normals zero)."""
    r = raw.f_rest.shape[1]
    out = np.empty((len(raw), 17 + r), "<f4")
    out[:, 0:3] = raw.means
    out[:, 3:6] = 0.0
    out[:, 6:9] = raw.f_dc
    out[:, 9 : 9 + r] = raw.f_rest
    out[:, 9 + r] = raw.opacity_logits
    out[:, 10 + r : 13 + r] = raw.log_scales
    out[:, 13 + r : 17 + r] = raw.quats_wxyz
    return out


def _write(path: Path, n: int, sh_degree: int, chunks: Iterator[PlyArrays]) -> None:
    names = ply_property_names(sh_degree)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {name}" for name in names] + ["end_header", ""]
    with atomic_output(path) as f:
        f.write("\n".join(header).encode("ascii"))
        for raw in chunks:
            f.write(_pack_rows(raw).data)


def _rows_per_chunk(sh_degree: int, chunk_rows: int | None) -> int:
    return chunk_rows or max(1, CHUNK_BYTES // (4 * len(ply_property_names(sh_degree))))


def write_ply(path: str | os.PathLike, gaussians: Gaussians, *, chunk_rows: int | None = None) -> None:
    """Write ``gaussians`` (N splats, any device/dtype) to ``path`` in the INRIA 3DGS layout.

    Raises ``FileFormatError`` naming ``path`` for bad shapes, non-finite or out-of-range values, or
    an unwritable destination; ``path`` is then left as it was.

    Example::

        write_ply("out/gaussians.ply", Gaussians.from_rgb(means, rgb, scales, opacities))
    """
    path = Path(path)
    g = checked_for_export(gaussians, path)
    rows = _rows_per_chunk(g.sh_degree, chunk_rows)
    chunks = (PlyArrays.from_gaussians(g[i : i + rows]) for i in range(0, len(g), rows))
    _write(path, len(g), g.sh_degree, chunks)


def write_ply_raw(path: str | os.PathLike, raw: PlyArrays, *, chunk_rows: int | None = None) -> None:
    """Write stored values as they are; ``read_ply_raw`` returns them bit-identically."""
    path = Path(path)
    raw.check(str(path))
    rows = _rows_per_chunk(raw.sh_degree, chunk_rows)
    _write(path, len(raw), raw.sh_degree, (raw.slice(i, i + rows) for i in range(0, len(raw), rows)))


# ---- reading ----------------------------------------------------------------------------------


@contextlib.contextmanager
def open_for_reading(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading; every OS error becomes a one-line ``FileFormatError``."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a folder, not a file") from None
    except OSError as e:
        raise FileFormatError(path, f"cannot open: {e.strerror or e}") from None
    try:
        with f:
            yield f
    except OSError as e:
        raise FileFormatError(path, f"cannot read: {e.strerror or e}") from None


@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str | None]]  # (name, numpy type code), None for list properties


def _parse_header(f: BinaryIO, path: Path) -> tuple[str, list[_Element]]:
    """(format, elements) of the PLY header; ``f`` is left at the first body byte."""
    first = f.readline(16)
    if not first:
        raise FileFormatError(path, "empty file, not a PLY")
    if first.rstrip(b"\r\n") != b"ply":
        raise FileFormatError(path, "not a PLY file (first line is not 'ply')")
    fmt, elements, size = None, [], 0
    while True:
        line = f.readline(MAX_HEADER_BYTES)
        size += len(line)
        if not line or size >= MAX_HEADER_BYTES:
            raise FileFormatError(path, "PLY header has no 'end_header' line (truncated or not a PLY)")
        try:
            words = line.decode("ascii").split()
        except UnicodeDecodeError:
            raise FileFormatError(path, "PLY header is not ASCII text") from None
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format" and len(words) >= 2 and words[1] in BYTE_ORDERS:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in PLY_TYPES:
            elements[-1].props.append((words[2], PLY_TYPES[words[1]]))
        elif words[0] == "property" and elements and len(words) == 5 and words[1] == "list":
            elements[-1].props.append((words[4], None))
        else:
            raise FileFormatError(path, f"bad PLY header line: {' '.join(words)[:80]!r}")
    if fmt is None:
        raise FileFormatError(path, "PLY header has no valid 'format' line")
    for el in elements:
        names = [p for p, _ in el.props]
        if len(set(names)) != len(names):
            raise FileFormatError(path, f"element '{el.name}' repeats a property name")
    return fmt, elements


class _VertexReader:
    """Reads the vertex element of an open PLY in chunks of ``PlyArrays``."""

    def __init__(self, f: BinaryIO, path: Path):
        self.f, self.path = f, path
        self.fmt, elements = _parse_header(f, path)
        names = [el.name for el in elements]
        if "vertex" not in names:
            raise FileFormatError(path, "no 'vertex' element in the PLY header")
        self.before = elements[: names.index("vertex")]
        vertex = elements[names.index("vertex")]
        self.n, self.props = vertex.count, vertex.props
        have = {p for p, _ in self.props}
        rest = sorted(int(m.group(1)) for p in have if (m := _F_REST.match(p)))
        if len(rest) not in DEGREE_OF_F_REST:
            raise FileFormatError(path, f"{len(rest)} f_rest_* properties; expected 0, 9, 24 or 45 (SH degree 0-3)")
        if rest != list(range(len(rest))):
            raise FileFormatError(path, f"f_rest_* properties must be numbered 0..{len(rest) - 1}")
        self.sh_degree = DEGREE_OF_F_REST[len(rest)]
        groups = {
            "means": ["x", "y", "z"],
            "f_dc": ["f_dc_0", "f_dc_1", "f_dc_2"],
            "f_rest": [f"f_rest_{i}" for i in rest],
            "opacity_logits": ["opacity"],
            "log_scales": ["scale_0", "scale_1", "scale_2"],
            "quats_wxyz": ["rot_0", "rot_1", "rot_2", "rot_3"],
        }
        self.groups = groups
        missing = [p for group in groups.values() for p in group if p not in have]
        if missing:
            raise FileFormatError(path, f"vertex element lacks required properties: {', '.join(missing)}")
        lists = [p for p, code in self.props if code is None]
        if lists:
            raise FileFormatError(path, f"vertex element has list property '{lists[0]}'; splat PLYs have none")
        self.body = f.tell()
        size = os.fstat(f.fileno()).st_size
        if self.fmt == "ascii":
            # Each row needs at least one digit and one separator per property: cheap bound that
            # stops a lying header from making us allocate gigabytes for a tiny file.
            if size - self.body < self.n * 2 * len(self.props):
                raise FileFormatError(path, f"truncated: the header promises {self.n} vertices")
            for el in self.before:
                for _ in range(el.count):
                    if not f.readline():
                        raise FileFormatError(path, f"truncated inside element '{el.name}'")
        else:
            order = BYTE_ORDERS[self.fmt]
            skip = 0
            for el in self.before:
                if any(code is None for _, code in el.props):
                    raise FileFormatError(path, f"cannot skip element '{el.name}' with list properties before 'vertex'")
                skip += el.count * np.dtype([(p, order + c) for p, c in el.props]).itemsize
            self.dtype = np.dtype([(p, order + c) for p, c in self.props])
            need = self.body + skip + self.n * self.dtype.itemsize
            if size < need:
                raise FileFormatError(path, f"truncated: {self.n} vertices need {need} bytes, the file has {size}")
            f.seek(self.body + skip)

    def _read_rows(self, rows: int):
        """Column getter ``name -> [rows]`` for the next ``rows`` vertices."""
        if self.fmt != "ascii":
            buf = np.empty(rows, self.dtype)
            if self.f.readinto(memoryview(buf.view(np.uint8))) != buf.nbytes:
                raise FileFormatError(self.path, "truncated vertex data")
            return lambda name: buf[name]
        lines = [line.split() for line in islice(self.f, rows)]
        if len(lines) != rows:
            raise FileFormatError(self.path, f"truncated: fewer than {self.n} ascii vertex rows")
        p = len(self.props)
        if any(len(tokens) != p for tokens in lines):
            raise FileFormatError(self.path, f"an ascii vertex row does not have {p} values")
        try:
            table = np.array([t for tokens in lines for t in tokens]).astype(np.float64).reshape(rows, p)
        except ValueError:
            raise FileFormatError(self.path, "ascii vertex data holds a non-numeric value") from None
        column = {name: j for j, (name, _) in enumerate(self.props)}
        return lambda name: table[:, column[name]]

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, PlyArrays]]:
        """Yield (first row, checked raw values) for consecutive chunks of vertices."""
        rows = chunk_rows or max(1, CHUNK_BYTES // (8 * len(self.props)))
        for start in range(0, self.n, rows):
            column = self._read_rows(min(rows, self.n - start))
            arrays = {}
            with np.errstate(over="ignore", invalid="ignore"):  # double -> float32 overflow: checked below
                for name, props in self.groups.items():
                    block = np.empty((len(column("x")), len(props)), np.float32)
                    for j, p in enumerate(props):
                        block[:, j] = column(p)
                    arrays[name] = block
            arrays["opacity_logits"] = arrays["opacity_logits"][:, 0]
            raw = PlyArrays(**arrays)
            raw.check(str(self.path), start)
            yield start, raw


def read_ply_raw(path: str | os.PathLike, *, chunk_rows: int | None = None) -> PlyArrays:
    """Stored values of every vertex (float32), checked finite with non-zero quaternions."""
    path = Path(path)
    with open_for_reading(path) as f:
        reader = _VertexReader(f, path)
        k = num_sh_bases(reader.sh_degree)
        out = PlyArrays(*(np.empty(s, np.float32) for s in [(reader.n, 3), (reader.n, 3), (reader.n, 3 * (k - 1)),
                                                             (reader.n,), (reader.n, 3), (reader.n, 4)]))  # fmt: skip
        for start, raw in reader.chunks(chunk_rows):
            for f_ in fields(PlyArrays):
                getattr(out, f_.name)[start : start + len(raw)] = getattr(raw, f_.name)
    return out


def read_ply(path: str | os.PathLike, *, chunk_rows: int | None = None) -> Gaussians:
    """Read a 3DGS PLY into activated float32 CPU ``Gaussians`` (SH degree from the f_rest count).

    Raises ``FileFormatError`` naming ``path`` with a one-line reason for anything unreadable.
    """
    path = Path(path)
    with open_for_reading(path) as f:
        reader = _VertexReader(f, path)
        n, k = reader.n, num_sh_bases(reader.sh_degree)
        out = {
            "means": np.empty((n, 3), np.float32),
            "quats_wxyz": np.empty((n, 4), np.float32),
            "scales": np.empty((n, 3), np.float32),
            "opacities": np.empty((n,), np.float32),
            "sh": np.empty((n, k, 3), np.float32),
        }
        for start, raw in reader.chunks(chunk_rows):
            for name, a in raw.activate(str(path), start).items():
                out[name][start : start + len(raw)] = a
    return Gaussians(**{name: torch.from_numpy(a) for name, a in out.items()})
