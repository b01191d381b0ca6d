"""Value serializers for the patterns. JSON (orjson) by default; never pickle.

Example::

    >>> s = get_serializer("json")
    >>> s.loads(s.dumps({"a": [1, 2.5, None]}))
    {'a': [1, 2.5, None]}
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Union, runtime_checkable

import orjson

__all__ = ["Serializer", "JsonSerializer", "get_serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Anything with ``dumps(obj) -> bytes`` and ``loads(bytes) -> obj``."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """orjson: non-str dict keys are allowed; NaN/inf anywhere raise ``ValueError``.

    Example::

        >>> JsonSerializer().dumps([1, "x"])
        b'[1,"x"]'
    """

    def dumps(self, value: Any) -> bytes:
        try:
            data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as e:  # orjson.JSONEncodeError subclasses TypeError
            raise TypeError(f"value is not JSON-serializable: {e}") from None
        # orjson writes NaN/inf as null, which would silently change the value.
        if b"null" in data and _has_non_finite(value):
            raise ValueError("value holds NaN or infinity, which JSON cannot represent")
        return data

    def loads(self, data: Union[bytes, str]) -> Any:
        return orjson.loads(data)


def _has_non_finite(value: Any, depth: int = 0) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if depth > 512:
        return False
    if isinstance(value, dict):
        return any(_has_non_finite(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v, depth + 1) for v in value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") in "fc":
        import numpy as np

        return not bool(np.isfinite(value).all())
    return False


def get_serializer(spec: Union[str, Serializer, None]) -> Serializer:
    """``"json"`` (or None) gives :class:`JsonSerializer`; an object is checked and returned."""
    if spec is None or spec == "json":
        return JsonSerializer()
    if isinstance(spec, str):
        raise ValueError(f"unknown serializer {spec!r}; use 'json' or an object with dumps/loads")
    if not (callable(getattr(spec, "dumps", None)) and callable(getattr(spec, "loads", None))):
        raise TypeError("a serializer needs dumps(obj) -> bytes and loads(bytes) -> obj")
    return spec
