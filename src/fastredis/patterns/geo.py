"""Geospatial index: ``GeoIndex`` over a Redis geo set, searched with GEOSEARCH.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> shops = GeoIndex(server.client(), "shops")
    >>> shops.add_many([("louvre", 2.3376, 48.8606), ("eiffel", 2.2945, 48.8584)])
    2
    >>> [m for m, _ in shops.near(2.3522, 48.8566, 10)]
    ['louvre', 'eiffel']
    >>> server.stop()
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

from redis.exceptions import ResponseError

from .._text import check_finite, to_bytes, to_str
from ..keys import KeySpace
from ._clients import check_sync_client
from ._plan import Call, Plan, sync_operation

__all__ = ["GeoIndex", "MAX_LATITUDE", "UNITS"]

#: Redis stores positions as 52-bit geohashes of Web Mercator, which stops here.
MAX_LATITUDE = 85.05112878
UNITS = ("m", "km", "mi", "ft")

Member = Union[str, bytes, int]


def _lonlat(lon: Any, lat: Any) -> Tuple[float, float]:
    lon_f = check_finite(lon, "lon")
    lat_f = check_finite(lat, "lat")
    if not -180.0 <= lon_f <= 180.0:
        raise ValueError(f"lon must be within [-180, 180], got {lon!r}")
    if not -MAX_LATITUDE <= lat_f <= MAX_LATITUDE:
        raise ValueError(f"lat must be within ±{MAX_LATITUDE} (Redis's geo limit), got {lat!r}")
    return lon_f, lat_f


def _unit(unit: str) -> str:
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str, got {type(unit).__name__}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    return unit


def _positive(value: Any, name: str) -> float:
    f = check_finite(value, name)
    if f <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return f


def _count(count: Optional[int]) -> Optional[int]:
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int or None, got {type(count).__name__}")
    if count < 1:
        raise ValueError(f"count must be a positive int or None, got {count!r}")
    return count


class _GeoPlans:
    """The plans of :class:`GeoIndex` (no I/O), shared with its asyncio twin."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(self, client: Any, name: Union[str, int], *, prefix: str = "geo") -> None:
        self.client = self._check_client(client, type(self).__name__)
        self.key = KeySpace(prefix).key(name)

    def plan_add(self, member: Member, lon: float, lat: float) -> Plan[bool]:
        """Add or move ``member``; ``True`` if it is new.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> g.add("a", 10, 20), g.add("a", 11, 20)
            (True, False)
            >>> server.stop()
        """
        many = self.plan_add_many([(member, lon, lat)])
        return Plan.one(many.calls[0], _is_one)

    def plan_add_many(self, items: Iterable[Tuple[Member, float, float]]) -> Plan[int]:
        """Add or move many ``(member, lon, lat)``; returns how many are new. All are validated first.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> g.add_many([("a", 1, 2), ("b", 3, 4)])
            2
            >>> server.stop()
        """
        args: List[Any] = []
        for item in items:
            try:
                member, lon, lat = item
            except (TypeError, ValueError):
                raise ValueError(f"items must be (member, lon, lat) triples, got {item!r}") from None
            lon_f, lat_f = _lonlat(lon, lat)
            args += [repr(lon_f), repr(lat_f), to_bytes(member)]
        if not args:
            return Plan.done(0)
        return Plan.one(Call(("GEOADD", self.key, *args)), int)

    def plan_remove(self, *members: Member) -> Plan[int]:
        """Remove members; returns how many existed.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add("a", 1, 2); g.remove("a", "b")
            1
            >>> server.stop()
        """
        if not members:
            return Plan.done(0)
        return Plan.one(Call(("ZREM", self.key, *[to_bytes(m) for m in members])), int)

    def plan_position(self, member: Member) -> Plan[Optional[Tuple[float, float]]]:
        """``(lon, lat)`` of ``member`` as stored (±0.6 m), or ``None``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add("a", 1, 2); [round(x, 4) for x in g.position("a")]
            [1.0, 2.0]
            >>> server.stop()
        """
        return Plan.one(Call(("GEOPOS", self.key, to_bytes(member))), _position)

    def plan_distance(self, a: Member, b: Member, unit: str = "km") -> Plan[Optional[float]]:
        """Distance between two members, or ``None`` if either is missing.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add_many([("a", 0, 0), ("b", 0, 1)]); round(g.distance("a", "b"), 1)
            111.2
            >>> server.stop()
        """
        return Plan.one(Call(("GEODIST", self.key, to_bytes(a), to_bytes(b), _unit(unit))), _optional_float)

    def _search(self, origin: List[Any], shape: List[Any], unit: str, count: Optional[int],
                missing_is_empty: bool = False) -> Plan[List[Tuple[str, float]]]:
        cmd: List[Any] = ["GEOSEARCH", self.key, *origin, *shape, _unit(unit), "ASC", "WITHDIST"]
        n = _count(count)
        if n is not None:
            cmd += ["COUNT", n]
        # sent raw: redis-py's GEOSEARCH callback needs per-call options to parse
        if not missing_is_empty:
            return Plan.one(Call(tuple(cmd)), _parse_withdist)
        return Plan([Call(tuple(cmd))], _withdist_or_empty, batch=True, raise_on_error=False)

    def plan_near(self, lon: float, lat: float, radius: float, unit: str = "km", count: Optional[int] = None) -> Plan[List[Tuple[str, float]]]:
        """Members within ``radius`` of a point, nearest first, as ``(member, distance)``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add_many([("a", 0, 0), ("b", 0, 1)])
            >>> [(m, round(d)) for m, d in g.near(0, 0.1, 200)]
            [('a', 11), ('b', 100)]
            >>> server.stop()
        """
        lon_f, lat_f = _lonlat(lon, lat)
        return self._search(["FROMLONLAT", repr(lon_f), repr(lat_f)], ["BYRADIUS", repr(_positive(radius, "radius"))], unit, count)

    def plan_near_member(self, member: Member, radius: float, unit: str = "km", count: Optional[int] = None) -> Plan[List[Tuple[str, float]]]:
        """Members within ``radius`` of ``member`` (itself included, at 0), nearest first.

        An unknown ``member`` gives an empty list.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add_many([("a", 0, 0), ("b", 0, 1)])
            >>> [m for m, _ in g.near_member("b", 200)]
            ['b', 'a']
            >>> server.stop()
        """
        radius_f = _positive(radius, "radius")
        return self._search(["FROMMEMBER", to_bytes(member)], ["BYRADIUS", repr(radius_f)], unit, count, True)

    def plan_within_box(
        self, lon: float, lat: float, width: float, height: float, unit: str = "km", count: Optional[int] = None
    ) -> Plan[List[Tuple[str, float]]]:
        """Members inside a ``width`` x ``height`` box centred on a point, nearest first.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add_many([("a", 0, 0), ("b", 0, 1)])
            >>> [m for m, _ in g.within_box(0, 0, 50, 50)]
            ['a']
            >>> server.stop()
        """
        lon_f, lat_f = _lonlat(lon, lat)
        shape = ["BYBOX", repr(_positive(width, "width")), repr(_positive(height, "height"))]
        return self._search(["FROMLONLAT", repr(lon_f), repr(lat_f)], shape, unit, count)

    def plan_count(self) -> Plan[int]:
        """How many members the index holds (``len(index)`` on the sync class).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add_many([("a", 1, 2), ("b", 3, 4)]); g.count(), len(g)
            (2, 2)
            >>> server.stop()
        """
        return Plan.one(Call(("ZCARD", self.key)), int)


class GeoIndex(_GeoPlans):
    """Members with a longitude/latitude; radius and box searches, nearest first.

    Coordinates outside Redis's limits (longitude ±180, latitude
    ±85.05112878), NaN and inf raise ``ValueError``. Distances come back as
    floats in the requested unit (``m``, ``km``, ``mi``, ``ft``); Redis
    computes them with the haversine formula on a sphere of radius
    6372797.560856 m, from positions stored to about 0.6 m.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); g = GeoIndex(server.client(), "cities")
        >>> g.add("paris", 2.3522, 48.8566); g.add("london", -0.1276, 51.5072)
        True
        True
        >>> round(g.distance("paris", "london"))
        344
        >>> server.stop()
    """

    add = sync_operation(_GeoPlans.plan_add)
    add_many = sync_operation(_GeoPlans.plan_add_many)
    remove = sync_operation(_GeoPlans.plan_remove)
    position = sync_operation(_GeoPlans.plan_position)
    distance = sync_operation(_GeoPlans.plan_distance)
    near = sync_operation(_GeoPlans.plan_near)
    near_member = sync_operation(_GeoPlans.plan_near_member)
    within_box = sync_operation(_GeoPlans.plan_within_box)
    count = sync_operation(_GeoPlans.plan_count)

    def __len__(self) -> int:
        return self.count()


def _is_one(reply: Any) -> bool:
    return int(reply) == 1


def _optional_float(reply: Any) -> Optional[float]:
    return None if reply is None else float(reply)


def _position(reply: Any) -> Optional[Tuple[float, float]]:
    if not reply or reply[0] is None:
        return None
    lon, lat = reply[0]
    return float(lon), float(lat)


def _withdist_or_empty(replies: List[Any]) -> List[Tuple[str, float]]:
    (reply,) = replies
    if isinstance(reply, ResponseError):
        if "could not decode requested zset member" in str(reply):  # GEOSEARCH of a missing member
            return []
        raise reply
    return _parse_withdist(reply)


def _parse_withdist(reply: Any) -> List[Tuple[str, float]]:
    out: List[Tuple[str, float]] = []
    for row in reply or ():
        if isinstance(row, (list, tuple)) and len(row) >= 2:
            out.append((to_str(row[0]), float(to_str(row[1]))))
        else:  # pragma: no cover - WITHDIST always gives pairs
            raise ValueError(f"unexpected GEOSEARCH row {row!r}")
    return out
