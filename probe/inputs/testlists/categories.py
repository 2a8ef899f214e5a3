"""Citizen Lab category codes: the ``--category`` selection and the legend's descriptions."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from probe.inputs.testlists.location import LEGEND_NAME, testlists_dir

__all__ = ["load_legend", "parse_categories", "unknown_categories"]

_CATEGORY_RE = re.compile(r"^[A-Z0-9_-]{1,32}$")


def parse_categories(value: str | Iterable[str] | None) -> frozenset[str] | None:
    """``"NEWS,HUMR"`` (or several such strings) -> ``{"NEWS", "HUMR"}``; ``None`` stays ``None``.

    Codes are upper-cased; raises ``ValueError`` for an empty selection or a code that is not a
    plausible category code (letters, digits, ``-``, ``_``).
    """
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    codes = {c.strip().upper() for item in items for c in item.split(",") if c.strip()}
    if not codes:
        raise ValueError("empty category selection")
    bad = sorted(c for c in codes if not _CATEGORY_RE.match(c))
    if bad:
        raise ValueError(f"invalid category code(s): {', '.join(bad)}")
    return frozenset(codes)


def unknown_categories(codes: Iterable[str], legend: dict[str, str] | None = None) -> list[str]:
    """The codes (e.g. of ``--category``) that the Citizen Lab legend does not define: likely
    typos, worth a warning (a user's own list may still use them)."""
    legend = load_legend() if legend is None else legend
    if not legend:
        return []
    return sorted(c for c in codes if c not in legend)


def load_legend(path: str | Path | None = None) -> dict[str, str]:
    """Category code -> short description, from Citizen Lab's legend CSV ({} if unavailable)."""
    legend = Path(path) if path is not None else testlists_dir() / LEGEND_NAME
    out: dict[str, str] = {}
    try:
        with open(legend, encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                code = (row.get("New Code") or "").strip().upper()
                if code:
                    out[code] = (row.get("Category Description") or "").strip()
    except (OSError, csv.Error):
        return {}
    return out
