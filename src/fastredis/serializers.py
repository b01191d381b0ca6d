"""Value serializers for the patterns. JSON (orjson) by default; never pickle.

Example::

    >>> s = get_serializer("json")
    >>> s.loads(s.dumps({"a": [1, 2.5, None]}))
    {'a': [1, 2.5, None]}
"""

from __future__ import annotations

from typing import Any, Protocol, Union, runtime_checkable

import orjson

__all__ = ["Serializer", "JsonSerializer", "get_serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Anything with ``dumps(obj) -> bytes`` and ``loads(bytes) -> obj``."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """orjson: non-str dict keys are allowed; NaN/inf raise ``ValueError``.

    Example::

        >>> JsonSerializer().dumps([1, "x"])
        b'[1,"x"]'
    """

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, float) and value != value:
            raise ValueError("NaN cannot be serialized as JSON")
        try:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as e:  # orjson.JSONEncodeError subclasses TypeError
            raise TypeError(f"value is not JSON-serializable: {e}") from None

    def loads(self, data: Union[bytes, str]) -> Any:
        return orjson.loads(data)


def get_serializer(spec: Union[str, Serializer, None]) -> Serializer:
    """``"json"`` (or None) gives :class:`JsonSerializer`; an object is checked and returned."""
    if spec is None or spec == "json":
        return JsonSerializer()
    if isinstance(spec, str):
        raise ValueError(f"unknown serializer {spec!r}; use 'json' or an object with dumps/loads")
    if not (callable(getattr(spec, "dumps", None)) and callable(getattr(spec, "loads", None))):
        raise TypeError("a serializer needs dumps(obj) -> bytes and loads(bytes) -> obj")
    return spec
