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

from typing import Any, Iterable, List, Optional, Tuple, Union

from .._text import check_finite, to_bytes, to_str
from ..keys import KeySpace

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
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int or None, got {count!r}")
    return count


class GeoIndex:
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

    def __init__(self, client: Any, name: Union[str, int], *, prefix: str = "geo") -> None:
        self.client = client
        self.key = KeySpace(prefix).key(name)

    def add(self, member: Member, lon: float, lat: float) -> bool:
        """Add or move ``member``; ``True`` if it is new.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> g.add("a", 10, 20), g.add("a", 11, 20)
            (True, False)
            >>> server.stop()
        """
        return self.add_many([(member, lon, lat)]) == 1

    def add_many(self, items: Iterable[Tuple[Member, float, float]]) -> int:
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
            return 0
        return int(self.client.execute_command("GEOADD", self.key, *args))

    def remove(self, *members: Member) -> int:
        """Remove members; returns how many existed.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add("a", 1, 2); g.remove("a", "b")
            1
            >>> server.stop()
        """
        if not members:
            return 0
        return int(self.client.zrem(self.key, *[to_bytes(m) for m in members]))

    def position(self, member: Member) -> Optional[Tuple[float, float]]:
        """``(lon, lat)`` of ``member`` as stored (±0.6 m), or ``None``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add("a", 1, 2); [round(x, 4) for x in g.position("a")]
            [1.0, 2.0]
            >>> server.stop()
        """
        pos = self.client.geopos(self.key, to_bytes(member))
        if not pos or pos[0] is None:
            return None
        lon, lat = pos[0]
        return float(lon), float(lat)

    def distance(self, a: Member, b: Member, unit: str = "km") -> Optional[float]:
        """Distance between two members, or ``None`` if either is missing.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); g = GeoIndex(server.client(), "g")
            >>> _ = g.add_many([("a", 0, 0), ("b", 0, 1)]); round(g.distance("a", "b"), 1)
            111.2
            >>> server.stop()
        """
        d = self.client.geodist(self.key, to_bytes(a), to_bytes(b), _unit(unit))
        return None if d is None else float(d)

    def _search(self, origin: List[Any], shape: List[Any], unit: str, count: Optional[int]) -> List[Tuple[str, float]]:
        cmd: List[Any] = ["GEOSEARCH", self.key, *origin, *shape, _unit(unit), "ASC", "WITHDIST"]
        n = _count(count)
        if n is not None:
            cmd += ["COUNT", n]
        # sent raw: redis-py's GEOSEARCH callback needs per-call options to parse
        return _parse_withdist(self.client.execute_command(*cmd))

    def near(self, lon: float, lat: float, radius: float, unit: str = "km", count: Optional[int] = None) -> List[Tuple[str, float]]:
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

    def near_member(self, member: Member, radius: float, unit: str = "km", count: Optional[int] = None) -> List[Tuple[str, float]]:
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
        try:
            return self._search(["FROMMEMBER", to_bytes(member)], ["BYRADIUS", repr(radius_f)], unit, count)
        except Exception as e:  # GEOSEARCH errors when the member is missing
            if "could not decode requested zset member" in str(e):
                return []
            raise

    def within_box(
        self, lon: float, lat: float, width: float, height: float, unit: str = "km", count: Optional[int] = None
    ) -> List[Tuple[str, float]]:
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

    def __len__(self) -> int:
        return int(self.client.zcard(self.key))


def _parse_withdist(reply: Any) -> List[Tuple[str, float]]:
    out: List[Tuple[str, float]] = []
    for row in reply or ():
        if isinstance(row, (list, tuple)) and len(row) >= 2:
            out.append((to_str(row[0]), float(to_str(row[1]))))
        else:  # pragma: no cover - WITHDIST always gives pairs
            raise ValueError(f"unexpected GEOSEARCH row {row!r}")
    return out
