"""Fast ``probe.model.to_json``/``from_json`` for the store: same results, compiled per type.

``to_json`` inspects every value at run time (is it a dataclass? bytes? a tuple?), which made it
most of the writer's CPU. Here each record type gets an encoder built once from its type hints,
so a value is converted only when its declared type needs it (bytes -> base64, nested records,
tuples -> lists). Values whose type hints say nothing useful fall back to ``to_json``. The
decoders do the same for ``from_json`` (reading is what ``probe reclassify`` spends its time
on). Unit tests check both against the model's functions.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

from probe.model import from_json, to_json

__all__ = ["decoder", "encoder", "fast_from_json", "fast_to_json"]

Conv = Callable[[Any], Any] | None  # None: the value is JSON as it is
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {}
_SCALARS = (str, int, float, bool, type(None))


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _optional(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else conv(v)


def _list(v: Any) -> list[Any]:
    return list(v)


def _list_of(item: Callable[[Any], Any], v: Any) -> list[Any]:
    return [item(x) for x in v]


def _tuple_of(item: Callable[[Any], Any], v: Any) -> tuple[Any, ...]:
    return tuple([item(x) for x in v])


def _tuple_items(items: list[Conv], v: Any) -> tuple[Any, ...]:
    return tuple(x if c is None or x is None else c(x) for c, x in zip(items, v, strict=False))


def _record_or_value(tp: Any, v: Any) -> Any:
    return from_json(tp, v) if isinstance(v, dict) else v


def _converter(tp: Any) -> Conv:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) != 1:
            return to_json if any(a not in _SCALARS for a in members) else None
        inner = _converter(members[0])
        return None if inner is None else _optional(inner)
    if origin is typing.Literal or tp in _SCALARS:
        return None
    if tp is bytes:
        return _b64
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _converter(args[0])
            if item is None:
                return _list
            return functools.partial(_list_of, item)
        items = [_converter(a) for a in args]
        if all(c is None for c in items):
            return _list
        return to_json
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return encoder(tp)
    return to_json


def encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    """The compiled encoder of record type ``cls`` (built once, then cached)."""
    cached = _ENCODERS.get(cls)
    if cached is not None:
        return cached
    hints = get_type_hints(cls)
    plan = tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))

    def enc(obj: Any) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for name, conv in plan:  # field order, as to_json
            v = getattr(obj, name)
            d[name] = v if conv is None or v is None else conv(v)
        return d

    _ENCODERS[cls] = enc
    return enc


def fast_to_json(obj: Any) -> dict[str, Any]:
    """``to_json(obj)`` for a record, faster."""
    return encoder(type(obj))(obj)


_DECODERS: dict[type, Callable[[Any], Any]] = {}


def _decode_converter(tp: Any) -> Conv:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        return _decode_converter(members[0]) if len(members) == 1 else None  # as model._convert
    if origin is typing.Literal or tp in _SCALARS:
        return None
    if tp is bytes:
        return base64.b64decode
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decode_converter(args[0])
            if item is None:
                return tuple
            return functools.partial(_tuple_of, item)
        items = [_decode_converter(a) for a in args]
        if all(c is None for c in items):
            return tuple
        return functools.partial(_tuple_items, items)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return decoder(tp)
    return functools.partial(_record_or_value, tp)


def decoder(cls: type) -> Callable[[dict[str, Any]], Any]:
    """The compiled decoder of record type ``cls``: ``from_json(cls, data)``, faster."""
    cached = _DECODERS.get(cls)
    if cached is not None:
        return cached
    hints = get_type_hints(cls)
    plan = tuple((f.name, _decode_converter(hints[f.name])) for f in dataclasses.fields(cls))

    def dec(data: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for name, conv in plan:
            if name in data:  # missing keys take the field default; unknown keys are ignored
                v = data[name]
                kwargs[name] = v if conv is None or v is None else conv(v)
        return cls(**kwargs)

    _DECODERS[cls] = dec
    return dec


def fast_from_json(cls: type, data: dict[str, Any]) -> Any:
    """``from_json(cls, data)``, faster."""
    return decoder(cls)(data)
