"""Text that leaves the program (JSON files, the terminal) as valid Unicode.

A file name that is not UTF-8 on disk reaches Python with lone surrogates (``surrogateescape``):
JSON would carry them as ``\\udcff`` escapes that strict readers refuse, and a UTF-8 terminal
stream refuses to print them. ``utf8_text`` turns each undecodable byte into U+FFFD instead (what a
terminal shows for it)."""

from __future__ import annotations


def utf8_text(text: str) -> str:
    """``text`` with every lone surrogate replaced (one U+FFFD per undecodable byte of the original name)."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that no file system decoding made
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")
