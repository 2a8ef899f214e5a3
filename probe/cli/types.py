"""Click parameter types for probe's options: each value is checked when the command line is
parsed, so a bad one is a usage error (exit 2) that names the flag (:mod:`probe.cli.options`
declares the options that use them).

The checks are light: no network, no heavy import (a CA bundle, geo database or fingerprint
file is opened only when its option is given).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

__all__ = ["Bytes", "CAFile", "Country", "FingerprintFile", "GeoFile", "HttpURL", "NonEmpty",
           "Resolver", "RunRef", "Seconds", "StunServer"]  # fmt: skip

if TYPE_CHECKING:
    _Type = click.ParamType[Any, Any]  # generic in click >= 8.2 only; plain at run time
else:
    _Type = click.ParamType


class Seconds(_Type):
    """A finite number of seconds in [minimum, maximum] (nan and inf are refused)."""

    name = "seconds"

    def __init__(self, minimum: float, maximum: float = 7 * 24 * 3600.0) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if not self.minimum <= number <= self.maximum:
            self.fail(f"{number:g} is not in the range {self.minimum:g}..{self.maximum:g}", param, ctx)
        return number


class Bytes(_Type):
    """A size in bytes, plain or with a binary unit: ``8388608``, ``512K``, ``8M``, ``1G``
    (``KiB``, ``MiB``, ``GiB`` too), in [minimum, maximum]."""

    name = "bytes"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
            unit = text[-1:] if text[-1:] in ("K", "M", "G") else ""
            digits = text[: len(text) - len(unit)].strip()
            if not digits.isdigit():
                self.fail(f"{value!r} is not a size (e.g. 8M, 512K, 1048576)", param, ctx)
            number = int(digits) * self._UNITS[unit]
        if not self.minimum <= number <= self.maximum:
            self.fail(f"{number:,} bytes is not in the range {self.minimum:,}..{self.maximum:,}",
                      param, ctx)
        return number


class Resolver(_Type):
    """A DNS resolver address: IP, IP:PORT or [IPv6]:PORT (a name would need a resolver)."""

    name = "resolver"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from probe.core.net import parse_resolver

        try:
            parse_resolver(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value).strip()


class HttpURL(_Type):
    """An absolute http(s) URL with a host; ``https_only`` for DNS-over-HTTPS."""

    name = "url"

    def __init__(self, https_only: bool = False) -> None:
        self.https_only = https_only

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from urllib.parse import urlsplit

        text = str(value).strip()
        schemes = ("https",) if self.https_only else ("http", "https")
        try:
            parts = urlsplit(text)
            host, _port = parts.hostname, parts.port
        except ValueError as exc:
            self.fail(f"{text!r} is not a valid URL ({exc})", param, ctx)
        if parts.scheme not in schemes or not host:
            self.fail(f"{text!r} is not an {' or '.join(schemes)} URL with a host", param, ctx)
        return text


class RunRef(_Type):
    """A run id or ``latest``."""

    name = "run"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        if text == "latest":
            return text
        if not text.isdigit() or int(text) < 1:
            self.fail(f"expected a run id or 'latest', not {text!r}", param, ctx)
        return int(text)


class Country(_Type):
    """A two-letter ISO 3166 country code (upper-cased)."""

    name = "country"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not (len(text) == 2 and text.isascii() and text.isalpha()):
            self.fail(f"{text!r} is not a two-letter ISO 3166 country code, e.g. RU", param, ctx)
        return text.upper()


class StunServer(_Type):
    """``HOST[:PORT]`` of a STUN server."""

    name = "host[:port]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from probe.core.net import parse_hostport

        text = str(value).strip()
        try:
            parse_hostport(text, 3478)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


class NonEmpty(_Type):
    """A non-blank string (a vantage point's name)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not text:
            self.fail("must not be empty", param, ctx)
        return text


class CAFile(click.Path):
    """An existing PEM file that Python's ssl module accepts as CA certificates."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        from probe.core.settings import check_cafile

        try:
            check_cafile(str(path))
        except ValueError as exc:
            self.fail(f"{exc} (expected PEM certificates)", param, ctx)
        return path


class GeoFile(click.Path):
    """An IP-to-ASN database probe can open (.mmdb or ip2asn TSV)."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        from probe.inputs.geo import GeoDB, GeoError

        try:
            GeoDB.open(str(path))
        except (GeoError, OSError, ValueError) as exc:
            self.fail(str(exc), param, ctx)
        return path


class FingerprintFile(click.Path):
    """A block-page fingerprint file probe can load."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        from probe.inputs.fingerprints import FingerprintError, load_fingerprints

        try:
            load_fingerprints([str(path)])
        except (FingerprintError, OSError, ValueError) as exc:
            self.fail(str(exc), param, ctx)
        return path
