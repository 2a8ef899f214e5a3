"""The one codec of probe's records: typed record <-> JSON data, for the store and the helper.

Records are frozen dataclasses (:mod:`probe.core.model`) and msgspec Structs (the helper's messages,
:mod:`probe.measure.control.protocol.wire`); msgspec converts them, compiled per type in C:

- :func:`to_data` turns a record into JSON-able data: field order as declared, bytes as
  base64 strings, tuples as arrays. This is the ``observations`` JSON of the store, the exports
  and the golden files.
- :func:`from_data` rebuilds a record from such data: unknown keys are ignored and missing
  keys take the field's default, so JSON written by an older or newer probe stays readable
  (``probe reclassify`` of old rows). Values are checked against the declared types (an int is
  accepted where a float is declared); a value of the wrong type raises :class:`CodecError`
  naming where it is (``hops[0].tcp[1].port: expected int, got str``).
- :func:`decode_json` does both steps on JSON text or bytes at once: how the helper validates a
  request and the probe reads a reply.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from probe.core.errors import ProbeError

__all__ = ["CodecError", "checker", "decode_json", "encode_json", "from_data", "to_data"]

T = TypeVar("T")


class CodecError(ProbeError, ValueError):
    """Data that does not fit the record type; ``path`` says where (``""``: the whole value)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


def to_data(obj: Any) -> Any:
    """A record (or a tuple, list or dict of records) as JSON-able data."""
    return msgspec.to_builtins(obj)


def encode_json(obj: Any) -> bytes:
    """A record as compact JSON (UTF-8)."""
    return msgspec.json.encode(obj)


def from_data(cls: type[T], data: Any, *, strict: bool = False) -> T:
    """Rebuild a record of type ``cls`` from :func:`to_data` output (or decoded JSON).

    Raises :class:`CodecError` when a value does not fit its declared type. ``strict`` refuses
    the lax conversions too (a string where a bool or number is declared): messages from the
    network are decoded strictly, stored records laxly.
    """
    try:
        return msgspec.convert(data, cls, strict=strict)
    except msgspec.ValidationError as exc:
        raise _error(exc) from None
    except RecursionError:  # nesting past the interpreter's limit, in a field typed Any
        raise CodecError("nested too deeply") from None


def decode_json(data: bytes | str, cls: type[T], *, strict: bool = False) -> T:
    """JSON text -> a record of type ``cls``, checked as :func:`from_data` checks.

    Raises :class:`CodecError`: with path ``""`` and "not JSON" when the text does not parse,
    or nests deeper than the decoder can follow (100,000 brackets: msgspec raises RecursionError
    where a field is typed ``Any``).
    """
    try:
        return msgspec.json.decode(data, type=cls, strict=strict)
    except msgspec.ValidationError as exc:
        raise _error(exc) from None
    except RecursionError:
        raise CodecError("not JSON: nested too deeply") from None
    except msgspec.DecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None


def checker(cls: type[Any]) -> Callable[[bytes | str], None]:
    """A check that ``data`` decodes into a ``cls`` record, without building the record.

    Raises :class:`CodecError` exactly when ``decode_json(data, cls)`` does (the same lax
    rules), at about half its cost: the record types are mirrored as msgspec Structs derived
    from the dataclasses themselves (the same fields, types and defaults; unknown keys
    ignored, as for the records), which msgspec builds faster than dataclasses. For checking
    many stored documents at once (``probe merge`` checks every row of a source).
    """
    decode = msgspec.json.Decoder(_mirror(typing.cast(Any, cls)), strict=False).decode

    def check(data: bytes | str) -> None:
        try:
            decode(data)
        except msgspec.ValidationError as exc:
            raise _error(exc) from None
        except msgspec.DecodeError as exc:
            raise CodecError(f"not JSON: {exc}") from None

    return check


@functools.cache
def _mirror(tp: Any) -> Any:
    """``tp`` with every dataclass in it replaced by a Struct of the same fields."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        fields: list[Any] = []
        for f in dataclasses.fields(tp):
            kind = _mirror(hints[f.name])
            if f.default is not dataclasses.MISSING:
                fields.append((f.name, kind, f.default))
            elif f.default_factory is not dataclasses.MISSING:
                fields.append((f.name, kind, msgspec.field(default_factory=f.default_factory)))
            else:
                fields.append((f.name, kind))
        return msgspec.defstruct(f"{tp.__name__}Shape", fields, kw_only=True, gc=False)
    origin = typing.get_origin(tp)
    if origin is None or origin is typing.Literal:
        return tp
    args = tuple(_mirror(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return functools.reduce(operator.or_, args)
    return origin[args]


_AT = re.compile(r"^(.*) - at `\$(.*)`$", re.S)
_MISSING = re.compile(r"^Object missing required field `([^`]*)`(?: - at `\$(.*)`)?$", re.S)


def _error(exc: msgspec.ValidationError) -> CodecError:
    """msgspec's message as ``path: reason`` (``tcp_connect[0]: expected str, got int``)."""
    text = str(exc)
    missing = _MISSING.match(text)
    if missing:
        return CodecError("required", _path(f"{missing.group(2) or ''}.{missing.group(1)}"))
    at = _AT.match(text)
    reason, path = (at.group(1), _path(at.group(2))) if at else (text, "")
    return CodecError(reason.replace("`", "").replace("Expected", "expected", 1), path)


def _path(raw: str) -> str:
    return raw.lstrip(".")
