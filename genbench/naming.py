"""File names made from plugin- or user-given names (run ids, sampler labels): one rule, used everywhere."""
from __future__ import annotations


def safe_name(text: str) -> str:
    """A file-name-safe form of ``text``: ASCII letters, digits, '-', '_' and '.' kept, anything else '_',
    no leading or trailing '.' (so never '..' or a hidden file), never empty."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text).strip(".") or "_"
