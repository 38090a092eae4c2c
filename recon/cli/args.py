"""Parsing helpers every command shares: the parser class, view lists, colours, positive numbers,
number lists and export formats. Each turns a bad value into a one-line ``ReconError`` that names
its flag (the library below the CLI never names flags)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from recon.core.errors import ReconError
from recon.pipeline.options import FORMATS, Mode
from renderer.io.atomic import check_output_dir

DEVICES = ("auto", "cpu", "cuda")
MODES = tuple(m.value for m in Mode)
TEXTURE_SIZES = (256, 512, 1024, 2048, 4096)  # mesh texture edges in texels (glb/obj)
NAMED_COLORS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}


class Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as ReconError (exit 2, one line) instead of exiting."""

    def error(self, message):
        raise ReconError(f"{self.prog}: {message} (see --help)")


def parse_views(text: str | None) -> list[int | str] | None:
    """``"0,3,5-7,r_26.png"`` -> [0, 3, 5, 6, 7, "r_26.png"]: indices, inclusive ranges, file names."""
    if text is None:
        return None
    views: list[int | str] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        lo, sep, hi = item.partition("-")
        if item.isdigit():
            views.append(int(item))
        elif sep and lo.isdigit() and hi.isdigit():
            if int(hi) < int(lo):
                raise ReconError(f"--views: range {item!r} is empty")
            views.extend(range(int(lo), int(hi) + 1))
        else:
            views.append(item)
    if not views:
        raise ReconError("--views: no views given")
    return views


def parse_color(text: str, flag: str = "--background") -> tuple[float, float, float]:
    """``white`` / ``black`` / ``gray`` / ``R,G,B`` in [0, 1] -> RGB tuple."""
    if text.lower() in NAMED_COLORS:
        return NAMED_COLORS[text.lower()]
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise ReconError(f"{flag}: expected white, black, gray or R,G,B in [0,1], got {text!r}")
    return rgb  # type: ignore[return-value]


def parse_floats(text: str, flag: str, count: int | None = None) -> tuple[float, ...]:
    """``"0.25,0.06"`` -> (0.25, 0.06); ``count``: the exact number of values wanted. NaN and infinities
    are refused."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ReconError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ReconError(f"{flag}: expected finite numbers, got {text!r}")
    if count is not None and len(values) != count:
        raise ReconError(f"{flag}: expected {count} numbers, got {text!r}")
    return values


def parse_formats(text: str, flag: str = "--export") -> tuple[str, ...]:
    """``"ply,glb"`` -> ("ply", "glb"): lower-cased, duplicates dropped, ``("ply",)`` when empty."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ReconError(f"{flag}: unknown format(s) {', '.join(bad)}; available: {', '.join(FORMATS)}")
    return formats or ("ply",)


def positive_int(text: str) -> int:
    """argparse ``type``: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def positive_float(text: str) -> float:
    """argparse ``type``: a finite number > 0."""
    try:
        x = float(text)
    except ValueError:
        x = 0.0
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return x


def number_in(lo: float, hi: float, *, lo_open: bool = True, hi_open: bool = False) -> Callable[[str], float]:
    """argparse ``type``: a finite number in the interval from ``lo`` to ``hi`` (open or closed ends);
    ``number_in(0, 1)`` takes (0, 1]. NaN and infinities are refused with the interval named."""
    shown = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        inside = (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
        if not (math.isfinite(x) and inside):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}")
        return x

    parse.__name__ = f"number in {shown}"
    return parse


def at_least_zero(value: int, flag: str) -> int:
    """``value`` unchanged, or a ``ReconError`` naming ``flag`` when it is negative."""
    if value < 0:
        raise ReconError(f"{flag} must be >= 0, got {value}")
    return value


def check_out_flag(path: Path, flag: str = "--out") -> None:
    """``renderer.io.atomic.check_output_dir`` with the flag named: an output folder that cannot be
    created or written is refused before any work."""
    try:
        check_output_dir(path)
    except ReconError as e:
        raise ReconError(f"{flag} {e}") from None


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=DEVICES)
