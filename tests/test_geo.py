"""GeoIndex: GEOSEARCH results match haversine; coordinates are validated."""

import math
import random

import pytest

from fastredis.patterns.geo import MAX_LATITUDE, GeoIndex

EARTH_R_M = 6372797.560856  # the radius Redis uses


def haversine_km(lon1, lat1, lon2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_R_M * math.asin(math.sqrt(a)) / 1000


@pytest.fixture
def points():
    rng = random.Random(7)
    return [(f"p{i}", rng.uniform(2.0, 3.0), rng.uniform(48.5, 49.2)) for i in range(300)]


def test_near_matches_haversine(any_client, points):
    g = GeoIndex(any_client, "pts")
    assert g.add_many(points) == 300
    lon, lat, radius = 2.35, 48.85, 25.0
    got = g.near(lon, lat, radius)
    expected = sorted(
        (haversine_km(lon, lat, plon, plat), m) for m, plon, plat in points if haversine_km(lon, lat, plon, plat) <= radius
    )
    got_names = {m for m, _ in got}
    # members within 1 m of the boundary may fall either side (stored to ~0.6 m)
    sure = {m for d, m in expected if d < radius - 0.001}
    assert sure <= got_names
    assert all(haversine_km(lon, lat, *next((p[1], p[2]) for p in points if p[0] == m)) <= radius + 0.001 for m in got_names)
    dists = [d for _, d in got]
    assert dists == sorted(dists)  # nearest first
    truth = {m: d for d, m in expected}
    for m, d in got:
        if m in truth:
            assert abs(d - truth[m]) < 0.002  # within Redis's 52-bit geohash precision
    assert len(g.near(lon, lat, radius, count=5)) == 5
    assert g.near(lon, lat, radius, count=5) == got[:5]


def test_units_distance_position(any_client):
    g = GeoIndex(any_client, "cities")
    g.add("paris", 2.3522, 48.8566)
    g.add("london", -0.1276, 51.5072)
    km = g.distance("paris", "london")
    assert abs(km - haversine_km(2.3522, 48.8566, -0.1276, 51.5072)) < 0.01
    assert abs(g.distance("paris", "london", unit="m") - km * 1000) < 1
    assert abs(g.distance("paris", "london", unit="mi") - km / 1.609344) < 0.01
    assert g.distance("paris", "nowhere") is None
    lon, lat = g.position("paris")
    assert abs(lon - 2.3522) < 1e-5 and abs(lat - 48.8566) < 1e-5
    assert g.position("nowhere") is None
    assert not g.add("paris", 2.0, 48.0)  # moved, not new
    assert len(g) == 2
    assert g.remove("paris", "nowhere") == 1 and len(g) == 1
    with pytest.raises(ValueError):
        g.distance("a", "b", unit="furlong")


def test_near_member_and_box(any_client):
    g = GeoIndex(any_client, "g")
    g.add_many([("o", 0, 0), ("n", 0, 0.5), ("e", 0.5, 0), ("far", 10, 10)])
    near = g.near_member("o", 100)
    assert [m for m, _ in near][0] == "o" and near[0][1] == 0
    assert {m for m, _ in near} == {"o", "n", "e"}
    assert g.near_member("missing", 100) == []
    # a 120 km x 20 km box: "e" (55 km east) is inside, "n" (55 km north) is not
    assert {m for m, _ in g.within_box(0, 0, 120, 20)} == {"o", "e"}
    assert {m for m, _ in g.within_box(0, 0, 20, 120)} == {"o", "n"}


@pytest.mark.parametrize(
    "lon,lat,error",
    [(0, 85.06, ValueError), (0, -85.06, ValueError), (180.01, 0, ValueError), (-180.01, 0, ValueError),
     (float("nan"), 0, ValueError), (0, float("inf"), ValueError),
     ("1", 2, TypeError), (None, 0, TypeError), (True, 0, TypeError)],  # a wrong type is a TypeError
)
def test_invalid_coordinates(any_client, lon, lat, error):
    g = GeoIndex(any_client, "g")
    with pytest.raises(error):
        g.add("m", lon, lat)
    with pytest.raises(error):
        g.near(lon, lat, 1)
    with pytest.raises(error):
        g.add_many([("ok", 1, 1), ("m", lon, lat)])
    assert len(g) == 0  # nothing half-added


def test_limits_accepted(any_client):
    g = GeoIndex(any_client, "g")
    assert g.add("edge", 180, MAX_LATITUDE)
    assert g.add("edge2", -180, -MAX_LATITUDE)
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            g.near(0, 0, bad)
        with pytest.raises(ValueError):
            g.within_box(0, 0, bad, 1)
    with pytest.raises(ValueError):
        g.near(0, 0, 1, count=0)


def test_hostile_members_and_names(any_client):
    g = GeoIndex(any_client, "n:*{x}")
    other = GeoIndex(any_client, "n")
    member = b"\xff:*\r\n"
    g.add(member, 1, 1)
    assert g.near(1, 1, 1)[0][0] == member.decode("utf-8", "surrogateescape")
    assert other.near(1, 1, 1) == []
