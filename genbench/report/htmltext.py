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


def img(png: bytes, alt: str, cls: str) -> str:
    return f'<img class="{cls}" alt="{esc(alt)}" src="{data_uri(png)}">'
