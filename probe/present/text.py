"""Small pieces every renderer shares: text cut to a width."""

from __future__ import annotations

__all__ = ["cut"]


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
