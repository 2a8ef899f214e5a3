"""Small pieces every renderer shares: text cut to a width."""

from __future__ import annotations

__all__ = ["cut", "printable"]


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``): names from other
    people's databases never reach a terminal raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
