"""Text for the HTML page: escaping, ids, images as data URIs (shared by page.py and page_board.py)."""
from __future__ import annotations

import base64
import html
import math
import re
from typing import Any


def esc(value: Any) -> str:
    """HTML-escape anything (quotes included) after turning it into text; None/NaN -> ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def slug(text: str) -> str:
    """An id made only of [a-z0-9-] (so it never needs escaping)."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return s or "x"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


#: the narrowest an image grid is drawn (CSS px): 8x8 digits would otherwise be postage stamps
GRID_MIN_WIDTH = 240


def png_size(png: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when ``png`` is not a PNG."""
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def img(png: bytes, alt: str, cls: str, scale: float | None = None) -> str:
    """An ``<img>`` with the PNG inline.  ``scale``: draw it at that multiple of its own width (nearest-neighbour:
    the ``grid`` class is pixelated), at least ``GRID_MIN_WIDTH`` px, never wider than its container."""
    style = ""
    size = png_size(png) if scale is not None else None
    if size is not None:
        width = max(GRID_MIN_WIDTH, round(scale * size[0]))
        style = f' style="width:{width}px;max-width:100%"'
    return f'<img class="{cls}" alt="{esc(alt)}"{style} src="{data_uri(png)}">'
