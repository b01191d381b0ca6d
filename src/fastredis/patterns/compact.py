"""``CompactMap``: millions of small values in bucketed hashes.

Instead of one string key per item (about 100 bytes of overhead each on
Redis 7), items live as fields of small hashes ("buckets") that Redis stores
as listpacks (ziplists before Redis 7): about 20 bytes per item of a 16-byte
value, five times less memory. The technique Instagram described for 300M
small values.

Where an item lives (stable: it never depends on the process or the run):

- an ``int`` key ``k`` (a dense id) lives in bucket ``k // n`` as field
  ``k % n`` (a small integer, 2 bytes in the listpack), where ``n`` is the
  map's bucket size;
- a ``str`` (or ``bytes``) key lives in bucket ``crc32(utf8(key)) % b`` as
  field ``key`` itself, where ``b`` is the number of str buckets, sized from
  ``capacity`` (the expected number of str-keyed items) so that a bucket
  holds about 80 fields at capacity. ``"7"`` and ``7`` are different items;
  ``"a"`` and ``b"a"`` are the same item.

``n`` and ``b`` are chosen once, when the map is first used, and stored in
the map's layout hash (``<prefix>:<name>:meta``); later openers, in any
process, read the stored layout, so a config change never moves items.
``n`` follows the server's ``hash-max-listpack-entries`` and
``hash-max-listpack-value`` (``hash-max-ziplist-*`` on Redis 6.2), read with
``CONFIG GET``; where ``CONFIG`` is not allowed (managed services, a cluster
client) the documented fallback is 128 entries and 64 bytes. Within that
limit (and at most 128 items, which keeps lookups fast), ``n`` is the size
whose listpack, for values of about ``value_size`` bytes, fills a jemalloc
size class best: 128 fields of 16-byte values need 2,567 bytes, which
jemalloc rounds up to 3,072 (25 bytes per item); 123 fields need 2,467
bytes, rounded to 2,560 (21.4 bytes per item). With the default
``value_size=16`` that is 123 items per bucket, which also holds up for
values of 8 to 28 bytes.

A value (or str key) longer than ``hash-max-listpack-value`` still works,
but it converts its whole bucket to a real hash table: the write emits a
:class:`LargeValueWarning` and the bucket is listed in
:attr:`CompactMap.converted`; :meth:`CompactMap.stats` counts the buckets of
each encoding.

Values are stored as Redis strings, as ``SET`` would: ``bytes``, ``str``,
``int`` or a finite ``float`` in; what the client returns out (``bytes``,
or ``str`` with ``decode_responses=True``), like ``GET``. Pass
``serializer="json"`` to store JSON instead.

Expiry: only Redis 7.4+ has per-field TTL (``HPEXPIRE``). On older servers
the map has **no per-item TTL**: ``set(..., ttl=...)`` raises
:class:`ItemTTLUnsupportedError`.

Every operation is one round trip and runs under the write-retry policy; the
operations are planned without I/O (``plan_*``) and run by the sync shell
here and its asyncio twin, :class:`fastredis.asyncio.CompactMap`.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> users = CompactMap(r, "users")
    >>> users.set(1001, b"alice"); users.set("bob@example.com", "bob")
    True
    True
    >>> users.get(1001), 1001 in users, users.get(1002)
    (b'alice', True, None)
    >>> users.get_many([1001, "bob@example.com", 7])
    [b'alice', b'bob', None]
    >>> users.incr(5, 3)
    3
    >>> sorted((k for k, _ in users.scan()), key=str)
    [1001, 5, 'bob@example.com']
    >>> users.layout.bucket_size
    123
    >>> server.stop()
"""

from __future__ import annotations

import math
import sys
import warnings
import zlib
from itertools import groupby
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from redis.client import NEVER_DECODE
from redis.exceptions import ResponseError

from .._text import to_str
from ..exceptions import FastRedisError
from ..keys import KeySpace
from ..scripts import LuaScript, pipeline_for, run
from ..serializers import Serializer, get_serializer
from ._clients import check_sync_client, is_cluster
from ._plan import Call, Operation, Plan, Steps

__all__ = [
    "CompactMap",
    "CompactLayout",
    "CompactStats",
    "LargeValueWarning",
    "ItemTTLUnsupportedError",
    "choose_bucket_size",
    "size_class",
]

ItemKey = Union[int, str, bytes]

#: What ``CONFIG GET`` is assumed to say where it cannot be read: below
#: Redis's own default (512 entries), so buckets stay listpacks on servers
#: tuned down to 128.
FALLBACK_MAX_ENTRIES = 128
FALLBACK_MAX_VALUE = 64
#: The largest bucket chosen automatically: a lookup scans the listpack, so
#: bigger buckets save little memory and cost time.
AUTO_MAX_BUCKET = 128
#: Bytes a bucket costs besides its listpack: dict entry, key object, key
#: name, hash-table slot (Redis 7, 64-bit).
BUCKET_OVERHEAD = 72
_LAYOUT_VERSION = 1
_SLACK = 1.03  # headroom for values a little longer than value_size
_MAX_BULK = 512 * 1024 * 1024
_INT64 = (-(2**63), 2**63 - 1)


class LargeValueWarning(UserWarning):
    """A value (or str key) longer than the server's
    ``hash-max-listpack-value``: it is stored, and its bucket becomes a real
    hash table, which costs several times more memory per item.

    Example::

        >>> import warnings
        >>> issubclass(LargeValueWarning, UserWarning)
        True
    """


class ItemTTLUnsupportedError(FastRedisError, NotImplementedError):
    """Per-item expiry was asked of a server without hash-field TTL
    (``HPEXPIRE``, Redis 7.4+): there, a :class:`CompactMap` has no per-item TTL.

    Example::

        >>> issubclass(ItemTTLUnsupportedError, NotImplementedError)
        True
    """


class CompactLayout(NamedTuple):
    """Where a map's items live, fixed when the map was first used.

    ``bucket_size``: items per int bucket (key ``k`` -> bucket ``k // bucket_size``);
    ``str_buckets``: number of buckets for str keys (``crc32 % str_buckets``);
    ``max_entries`` / ``max_value``: the server's listpack limits when the
    layout was chosen (entries per hash, bytes per field or value).

    Example::

        >>> CompactLayout(123, 12500, 512, 64).bucket_size
        123
    """

    bucket_size: int
    str_buckets: int
    max_entries: int
    max_value: int


class CompactStats(NamedTuple):
    """What :meth:`CompactMap.stats` found: buckets, items, bytes
    (``MEMORY USAGE`` summed), buckets by encoding, and the keys of buckets
    that are real hash tables (up to 20).

    Example::

        >>> s = CompactStats(2, 150, 4096, {"listpack": 2}, [])
        >>> round(s.bytes_per_item, 1)
        27.3
    """

    buckets: int
    items: int
    memory_bytes: int
    encodings: Dict[str, int]
    hashtable_buckets: List[str]

    @property
    def bytes_per_item(self) -> float:
        """``memory_bytes / items`` (0.0 for an empty map)."""
        return self.memory_bytes / self.items if self.items else 0.0


# -- sizing (pure functions) --------------------------------------------------

def size_class(nbytes: int) -> int:
    """The jemalloc size class an allocation of ``nbytes`` takes (64-bit,
    as Redis links it): four classes per doubling above 128 bytes.

    Example::

        >>> size_class(1987), size_class(2049), size_class(2567)
        (2048, 2560, 3072)
    """
    if nbytes <= 8:
        return 8
    if nbytes <= 128:
        return (nbytes + 15) // 16 * 16
    k = (nbytes - 1).bit_length() - 1  # 2**k < nbytes <= 2**(k+1)
    step = 1 << (k - 2)
    return (nbytes + step - 1) // step * step


def _backlen(entry: int) -> int:
    return 1 if entry <= 127 else 2 if entry < 16383 else 3 if entry < 2097151 else 4 if entry < 268435455 else 5


def _lp_str(length: int) -> int:
    """Bytes of a listpack string entry of ``length`` bytes."""
    head = 1 if length <= 63 else 2 if length <= 4095 else 5
    return head + length + _backlen(head + length)


def _lp_int(value: int) -> int:
    """Bytes of a listpack integer entry."""
    if 0 <= value <= 127:
        body = 1
    elif -4096 <= value <= 4095:
        body = 2
    elif -(2**15) <= value < 2**15:
        body = 3
    elif -(2**23) <= value < 2**23:
        body = 4
    elif -(2**31) <= value < 2**31:
        body = 5
    else:
        body = 9
    return body + _backlen(body)


def choose_bucket_size(max_entries: int, max_value: int, value_size: int = 16) -> int:
    """Items per int bucket: the size, at most ``max_entries`` (and
    :data:`AUTO_MAX_BUCKET`), whose listpack of values of about
    ``value_size`` bytes wastes least to jemalloc's rounding, counting
    :data:`BUCKET_OVERHEAD` bytes per bucket and 3% headroom.

    Example::

        >>> choose_bucket_size(512, 64, 16)
        123
        >>> choose_bucket_size(64, 64, 16)      # 64 would need 1,287 bytes: 1,536 allocated
        61
    """
    top = max(1, min(int(max_entries), AUTO_MAX_BUCKET))
    value = _lp_str(max(0, min(int(value_size), max(int(max_value), 0))))
    best, best_cost = top, math.inf
    for n in range(max(1, top // 2), top + 1):
        listpack = 7 + sum(_lp_int(f) for f in range(n)) + value * n  # header + end, fields, values
        cost = (size_class(math.ceil(listpack * _SLACK)) + BUCKET_OVERHEAD) / n
        if cost <= best_cost + 1e-9:
            best, best_cost = n, cost
    return best


def _str_buckets(capacity: int, max_entries: int) -> int:
    """Buckets for ``capacity`` str keys: a bucket's count is about Poisson,
    so fill to m with m + 5*sqrt(m) <= the entry limit (m = 80 at 128)."""
    limit = max(1, min(max_entries, AUTO_MAX_BUCKET))
    m = max(1.0, ((-5 + math.sqrt(25 + 4 * limit)) / 2) ** 2)
    return max(1, math.ceil(capacity / m))


# -- argument checks ------------------------------------------------------------

_RAW_TYPES = (bytes, str, int, float, bytearray, memoryview)


def _check_key(key: Any) -> None:
    t = type(key)
    if t is int or t is str or t is bytes:
        return
    if isinstance(key, bool) or not isinstance(key, (int, str, bytes)):
        raise TypeError(f"a CompactMap key must be int, str or bytes, got {t.__name__}")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def _ttl_ms(ttl: Any) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    return max(1, int(math.ceil(ttl * 1000)))


def _identity(x: Any) -> Any:
    return x


def _one_or_zero(reply: Any) -> bool:
    return bool(int(reply))


# -- plans ------------------------------------------------------------------------

_BATCH = "batch"
_ROW = "row"
_RAW = {NEVER_DECODE: True}
#: get_many reads a whole bucket (HGETALL) when it wants this many of its items.
_WHOLE_BUCKET = 16


class ColumnPlan(Plan[Any]):
    """One round trip of many commands kept as columns, so that a shell can
    stage them with ``Pipeline.batch()`` (one C loop) instead of one Python
    call each. :attr:`calls` builds the equivalent :class:`Call` list for
    runners that do not know about columns (:func:`fastredis.scripts.run`).

    ``groups``: ``("batch", command, *columns)`` (each column a list; other
    arguments repeat) or ``("row", args[, options])`` entries, sent in order.

    Example::

        >>> p = ColumnPlan([("batch", "HGET", ["b:0", "b:1"], [5, 6]), ("row", ("HLEN", "b:0"))], list)
        >>> [c.args for c in p.calls]
        [('HGET', 'b:0', 5), ('HGET', 'b:1', 6), ('HLEN', 'b:0')]
    """

    def __init__(self, groups: List[Tuple[Any, ...]], interpret: Any, *, raise_on_error: bool = True) -> None:
        self.groups = groups
        self.interpret = interpret
        self.batch = True
        self.transaction = False
        self.raise_on_error = raise_on_error

    @property
    def calls(self) -> List[Call]:  # type: ignore[override]
        out: List[Call] = []
        for group in self.groups:
            if group[0] == _ROW:
                out.append(Call(tuple(group[1]), None, group[2] if len(group) > 2 else {}))
                continue
            command, args = group[1], group[2:]
            columns = [a for a in args if isinstance(a, list)]
            n = len(columns[0]) if columns else 1
            for i in range(n):
                out.append(Call((command, *[a[i] if isinstance(a, list) else a for a in args])))
        return out

    def stage(self, pipe: Any) -> None:
        """Stage every command on ``pipe`` (``batch()`` where it has one)."""
        has_batch = callable(getattr(pipe, "batch", None))
        for group in self.groups:
            if group[0] == _ROW:
                pipe.execute_command(*group[1], **(group[2] if len(group) > 2 else {}))
            elif has_batch:
                pipe.batch(*group[1:])
            else:
                for call in ColumnPlan([group], None).calls:
                    pipe.execute_command(*call.args)


def run_columns(client: Any, plan: Plan[Any]) -> Any:
    """Run ``plan`` on a sync client: a :class:`ColumnPlan` as one pipeline
    staged with ``batch()`` (under the write-retry policy), anything else
    with :func:`fastredis.scripts.run`.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> run_columns(r, ColumnPlan([("batch", "SET", ["a", "b"], [1, 2])], list))
        [True, True]
        >>> server.stop()
    """
    if type(plan) is not ColumnPlan:
        return run(client, plan)
    if not plan.groups:
        return plan.interpret([])
    pipe = pipeline_for(client)
    plan.stage(pipe)
    return plan.interpret(pipe.execute(raise_on_error=plan.raise_on_error))


class _Core:
    """The planning half of :class:`CompactMap` (no I/O); the shells run its plans."""

    _check_client = staticmethod(check_sync_client)

    def __init__(
        self,
        client: Any,
        name: Union[str, int],
        *,
        prefix: str = "cm",
        bucket_size: Optional[int] = None,
        capacity: int = 1_000_000,
        value_size: int = 16,
        serializer: Union[str, Serializer, None] = None,
    ) -> None:
        self.client = self._check_client(client, type(self).__name__)
        if isinstance(name, bool) or not isinstance(name, (str, int)) or name == "":
            raise TypeError(f"name must be a non-empty str (or an int), got {name!r}")
        if bucket_size is not None:
            bucket_size = _positive_int(bucket_size, "bucket_size")
            if bucket_size > 2**32:
                raise ValueError(f"bucket_size must be at most 2**32, got {bucket_size}")
        self._want_bucket_size = bucket_size
        self.capacity = _positive_int(capacity, "capacity")
        self.value_size = _positive_int(value_size, "value_size")
        self._serializer: Optional[Serializer] = None if serializer is None else get_serializer(serializer)
        self._ks = KeySpace(prefix)
        self.name = name
        self._base = self._ks.key(name)
        self.meta_key = self._base + ":meta"
        self._pattern = self._base + ":*"
        self._cluster = is_cluster(client)
        self._layout: Optional[CompactLayout] = None
        self._hexpire = False
        self._int_keys = _KeyCache(self._base + ":")
        self._str_keys = _KeyCache(self._base + ":h")
        #: Keys of buckets that this object knows to be real hash tables (a
        #: value or str key longer than the listpack limit was written).
        self.converted: Set[str] = set()
        self._decode: Optional[Tuple[str, str]] = _decoding_of(client)

    # -- layout ---------------------------------------------------------------
    @property
    def layout(self) -> CompactLayout:
        """The map's layout (after the first operation, or :meth:`open`)."""
        if self._layout is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} is not open yet: call open() or any operation first")
        return self._layout

    def plan_open(self) -> Steps[CompactLayout]:
        """Read the stored layout with the server's listpack limits; store a
        layout if there is none (a second round trip). Once per object; the
        operations run it first.

        Example::

            >>> from fastredis.server import RedisServer
            >>> from fastredis.scripts import run
            >>> server = RedisServer("--hash-max-listpack-entries", "64"); r = server.client()
            >>> run(r, CompactMap(r, "m").plan_open()).bucket_size
            61
            >>> server.stop()
        """
        entries, value, version = FALLBACK_MAX_ENTRIES, FALLBACK_MAX_VALUE, ""
        calls = [Call(("HGETALL", self.meta_key))]
        if not self._cluster:  # CONFIG/INFO have no key: a cluster client cannot route them to "the" server
            calls += [Call(("CONFIG", "GET", "hash-max-*")), Call(("INFO", "server"))]
        replies = yield Plan(calls, _identity, batch=True, raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        if len(replies) == 3:
            entries, value = _limits(replies[1], entries, value)
            info = replies[2]
            if isinstance(info, dict):
                version = to_str(info.get("redis_version", info.get(b"redis_version", ""))) or ""
        stored = _flat_dict(replies[0])
        if not stored:
            if self._want_bucket_size and len(replies) == 3 and self._want_bucket_size > entries:
                raise ValueError(
                    f"bucket_size={self._want_bucket_size} exceeds the server's hash-max-listpack-entries "
                    f"({entries}): its buckets would be hash tables, not listpacks"
                )
            n = self._want_bucket_size or choose_bucket_size(entries, value, self.value_size)
            b = _str_buckets(self.capacity, entries)
            stored = yield Plan.one(
                Call(_INIT.command([self.meta_key], [_LAYOUT_VERSION, n, b, entries, value]), _INIT), _flat_dict
            )
        layout = _parse_layout(stored, self.meta_key)
        if self._want_bucket_size is not None and layout.bucket_size != self._want_bucket_size:
            raise ValueError(
                f"CompactMap {self.name!r} was created with bucket_size={layout.bucket_size}, "
                f"not {self._want_bucket_size}: its items would move (omit bucket_size to use the stored one)"
            )
        self._hexpire = _version_at_least(version, (7, 4))
        self._layout = layout
        return layout

    def _opened(self, build: Any, *args: Any) -> Operation[Any]:
        if self._layout is not None:
            op: Operation[Any] = build(*args)
            return op
        return self._open_then(build, args)

    def _open_then(self, build: Any, args: Tuple[Any, ...]) -> Steps[Any]:
        yield from self.plan_open()
        op = build(*args)
        if isinstance(op, Plan):
            return (yield op)
        return (yield from op)

    # -- addressing -----------------------------------------------------------------
    def _where(self, key: Any) -> Tuple[str, Any]:
        """(bucket key, field) of an item key."""
        if type(key) is int:
            b, f = divmod(key, self._layout.bucket_size)  # type: ignore[union-attr]
            return self._int_keys[b], f
        _check_key(key)
        raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        k = self._str_keys[zlib.crc32(raw) % self._layout.str_buckets]  # type: ignore[union-attr]
        if len(raw) > self._layout.max_value:  # type: ignore[union-attr]
            self._report(k, f"key of {len(raw)} bytes")
        return k, raw

    def _columns(self, keys: List[Any]) -> Tuple[List[str], List[Any], int]:
        """Bucket keys and fields of ``keys``, in order, and how many distinct
        buckets they touch (the hot path of the *_many calls)."""
        if _only(keys, int):  # dense ids: no per-key Python call
            n = self._layout.bucket_size  # type: ignore[union-attr]
            buckets = [k // n for k in keys]
            return list(map(self._int_keys.__getitem__, buckets)), [k % n for k in keys], len(set(buckets))
        bkeys, fields = [], []
        for k in keys:
            bk, f = self._where(k)
            bkeys.append(bk)
            fields.append(f)
        return bkeys, fields, len(set(bkeys))

    # -- values ---------------------------------------------------------------------
    def _dump(self, value: Any, bucket: str) -> Any:
        if self._serializer is not None:
            data: Any = self._serializer.dumps(value)
        else:
            data = value
            t = type(value)
            if t is float:
                if not math.isfinite(value):
                    raise ValueError(f"a CompactMap value must be finite, got {value!r}")
            elif t is not bytes and t is not str and t is not int:
                if isinstance(value, bool) or not isinstance(value, _RAW_TYPES):
                    raise TypeError(
                        f"a CompactMap value must be bytes, str, int or float, got {t.__name__} "
                        "(or pass serializer='json')"
                    )
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"a CompactMap value must be finite, got {value!r}")
        size = _size_of(data)
        limit = self._layout.max_value  # type: ignore[union-attr]
        if size > limit:
            if size > _MAX_BULK:
                raise ValueError(f"a value of {size} bytes is larger than Redis accepts (512 MiB)")
            self._report(bucket, f"value of {size} bytes")
        return data

    def _dump_many(self, values: List[Any], bkeys: List[str]) -> List[Any]:
        """``_dump`` of each value; bytes-only batches of short values skip the per-value call."""
        if self._serializer is None and _only(values, bytes):
            if max(map(len, values)) <= self._layout.max_value:  # type: ignore[union-attr]
                return values
        dump = self._dump
        return [dump(v, bk) for v, bk in zip(values, bkeys)]

    def _report(self, bucket: str, what: str) -> None:
        if bucket in self.converted:
            return
        self.converted.add(bucket)
        warnings.warn(
            LargeValueWarning(
                f"CompactMap {self.name!r}: a {what} exceeds hash-max-listpack-value "
                f"({self._layout.max_value} bytes), so bucket {bucket!r} becomes a hash table "  # type: ignore[union-attr]
                "(several times the memory per item)"
            ),
            stacklevel=_caller_level(),
        )

    def _load(self, raw: Any) -> Any:
        if raw is None:
            return None
        if self._serializer is not None:
            return self._serializer.loads(raw)
        return raw

    def _load_raw(self, raw: bytes) -> Any:
        """A value read with NEVER_DECODE, as the client would have returned it."""
        if self._serializer is not None:
            return self._serializer.loads(raw)
        if self._decode is not None:
            return raw.decode(*self._decode)
        return raw

    # -- operations (plans) ---------------------------------------------------------
    def plan_get(self, key: ItemKey, default: Any = None) -> Operation[Any]:
        """The value of ``key``, or ``default``. One HGET.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.get(1, "none"), m.set(1, "x"), m.get(1)
            ('none', True, b'x')
            >>> server.stop()
        """
        _check_key(key)
        return self._opened(self._get, key, default)

    def _get(self, key: Any, default: Any) -> Plan[Any]:
        bucket, field = self._where(key)
        load = self._load
        return Plan.one(Call(("HGET", bucket, field)), lambda v: default if v is None else load(v))

    def plan_set(self, key: ItemKey, value: Any, *, ttl: Optional[float] = None) -> Operation[bool]:
        """Store ``value`` under ``key``; True if the item is new. One HSET
        (with ``ttl`` seconds: one script of HSET + HPEXPIRE, Redis 7.4+ only).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.set("a", 1), m.set("a", 2), m.get("a")
            (True, False, b'2')
            >>> server.stop()
        """
        _check_key(key)
        ttl_ms = None if ttl is None else _ttl_ms(ttl)
        return self._opened(self._set, key, value, ttl_ms)

    def _set(self, key: Any, value: Any, ttl_ms: Optional[int]) -> Plan[bool]:
        bucket, field = self._where(key)
        data = self._dump(value, bucket)
        if ttl_ms is None:
            return Plan.one(Call(("HSET", bucket, field, data)), _one_or_zero)
        self._need_ttl()
        return Plan.one(Call(_SET_TTL.command([bucket], [field, data, ttl_ms]), _SET_TTL), _one_or_zero)

    def _need_ttl(self) -> None:
        if not self._hexpire:
            raise ItemTTLUnsupportedError(
                f"CompactMap {self.name!r}: per-item TTL needs hash-field expiry (HPEXPIRE, Redis 7.4+); "
                "this server has none, so the map has no per-item TTL here. Store items that must "
                "expire as plain keys (SET ... EX), or expire the whole map"
            )

    def plan_delete(self, key: ItemKey) -> Operation[bool]:
        """Remove ``key``; True if it was there. One HDEL.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set(3, "x"); m.delete(3), m.delete(3)
            (True, False)
            >>> server.stop()
        """
        _check_key(key)
        return self._opened(self._delete, key)

    def _delete(self, key: Any) -> Plan[bool]:
        bucket, field = self._where(key)
        return Plan.one(Call(("HDEL", bucket, field)), _one_or_zero)

    def plan_contains(self, key: ItemKey) -> Operation[bool]:
        """Whether ``key`` is in the map. One HEXISTS.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set("k", "v"); "k" in m, "j" in m
            (True, False)
            >>> server.stop()
        """
        _check_key(key)
        return self._opened(self._contains, key)

    def _contains(self, key: Any) -> Plan[bool]:
        bucket, field = self._where(key)
        return Plan.one(Call(("HEXISTS", bucket, field)), _one_or_zero)

    def plan_incr(self, key: ItemKey, amount: int = 1) -> Operation[int]:
        """Add ``amount`` to the integer value of ``key`` (missing counts as 0)
        and return the new value. One HINCRBY; a value that is not an
        integer raises redis-py's ``ResponseError``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.incr(9), m.incr(9, -5), m.get(9)
            (1, -4, b'-4')
            >>> server.stop()
        """
        _check_key(key)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an int, got {type(amount).__name__}")
        if not _INT64[0] <= amount <= _INT64[1]:
            raise ValueError(f"amount must fit in a signed 64-bit integer, got {amount}")
        return self._opened(self._incr, key, amount)

    def _incr(self, key: Any, amount: int) -> Plan[int]:
        bucket, field = self._where(key)
        return Plan.one(Call(("HINCRBY", bucket, field, amount)), int)

    def plan_get_many(self, keys: Iterable[ItemKey]) -> Operation[List[Any]]:
        """The values of ``keys`` in order (None where missing), in one round
        trip: HGET per key staged with ``batch()``, or, when the keys share
        buckets (dense ids), one HMGET per bucket (HGETALL for a bucket of
        which 16 or more items are wanted). Spans many slots on a cluster.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set_many({i: i * i for i in range(300)})
            >>> m.get_many(range(98, 101)), m.get_many([299, -1, "x"])
            ([b'9604', b'9801', b'10000'], [b'89401', None, None])
            >>> server.stop()
        """
        keys = _key_list(keys)
        return self._opened(self._get_many, keys)

    def _get_many(self, keys: List[Any]) -> Plan[List[Any]]:
        if not keys:
            return Plan.done([])
        bkeys, fields, distinct = self._columns(keys)
        load = self._load if self._serializer is not None else None
        if distinct * 2 > len(keys):  # mostly one key per bucket: HGET each
            def interpret(replies: List[Any]) -> List[Any]:
                return [None if v is None else load(v) for v in replies] if load else replies

            return ColumnPlan([(_BATCH, "HGET", bkeys, fields)], interpret)
        # dense keys: per bucket, HMGET of a few fields, or HGETALL when many
        # are wanted (HMGET scans the listpack once per field: 123 fields of
        # a full bucket cost the server ~5x what one HGETALL does)
        runs = [(bk, len(list(g))) for bk, g in groupby(bkeys)]
        order: List[Tuple[str, Sequence[int]]] = []
        if len(runs) == distinct:  # each bucket's keys are together (ranges of ids)
            pos = 0
            for bk, n in runs:
                order.append((bk, range(pos, pos + n)))
                pos += n
        else:
            slots: Dict[str, List[int]] = {}
            for i, bk in enumerate(bkeys):
                slots.setdefault(bk, []).append(i)
            order = list(slots.items())
        groups: List[Tuple[Any, ...]] = []
        whole: List[bool] = []
        for bk, positions in order:
            if len(positions) >= _WHOLE_BUCKET:
                groups.append((_ROW, ("HGETALL", bk), _RAW))
                whole.append(True)
            else:
                groups.append((_ROW, ("HMGET", bk, *[fields[i] for i in positions])))
                whole.append(False)
        load_raw = self._load_raw

        def interpret_grouped(replies: List[Any]) -> List[Any]:
            out: List[Any] = [None] * len(keys)
            for (_, positions), all_fields, reply in zip(order, whole, replies):
                if all_fields:
                    found = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
                    for i in positions:
                        f = fields[i]
                        v = found.get(f if type(f) is bytes else b"%d" % f)
                        if v is not None:
                            out[i] = load_raw(v)
                elif load is None:
                    for i, v in zip(positions, reply):
                        out[i] = v
                else:
                    for i, v in zip(positions, reply):
                        out[i] = None if v is None else load(v)
            return out

        return ColumnPlan(groups, interpret_grouped)

    def plan_set_many(self, items: Union[Mapping[ItemKey, Any], Iterable[Tuple[ItemKey, Any]]]) -> Operation[int]:
        """Store every ``(key, value)`` of a mapping or of pairs in one round
        trip (HSET staged with ``batch()``, one per bucket for dense ids);
        returns how many items are new. Spans many slots on a cluster.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.set_many({1: "a", 2: "b"}), m.set_many([(2, "c"), ("x", "y")])
            (2, 1)
            >>> server.stop()
        """
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        keys = []
        values = []
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"set_many takes a mapping or (key, value) pairs, got {pair!r}")
            _check_key(pair[0])
            keys.append(pair[0])
            values.append(pair[1])
        return self._opened(self._set_many, keys, values)

    def _set_many(self, keys: List[Any], values: List[Any]) -> Plan[int]:
        if not keys:
            return Plan.done(0)
        bkeys, fields, distinct = self._columns(keys)
        data = self._dump_many(values, bkeys)
        if distinct * 2 > len(keys):
            return ColumnPlan([(_BATCH, "HSET", bkeys, fields, data)], _sum_ints)
        rows: Dict[str, List[Any]] = {}
        for bk, f, d in zip(bkeys, fields, data):
            row = rows.get(bk)
            if row is None:
                row = rows[bk] = ["HSET", bk]
            row.append(f)
            row.append(d)
        return ColumnPlan([(_ROW, tuple(row)) for row in rows.values()], _sum_ints)

    def plan_delete_many(self, keys: Iterable[ItemKey]) -> Operation[int]:
        """Remove ``keys`` in one round trip; returns how many were there.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set_many({1: "a", 2: "b"}); m.delete_many([1, 2, 3])
            2
            >>> server.stop()
        """
        keys = _key_list(keys)
        return self._opened(self._delete_many, keys)

    def _delete_many(self, keys: List[Any]) -> Plan[int]:
        if not keys:
            return Plan.done(0)
        bkeys, fields, _ = self._columns(keys)
        return ColumnPlan([(_BATCH, "HDEL", bkeys, fields)], _sum_ints)

    # -- whole-map plans (SCAN pages) -------------------------------------------
    def _no_cluster_scan(self) -> None:
        if self._cluster:
            raise TypeError(
                f"{type(self).__name__}.scan/stats/clear need a single-node client: a cluster keeps each "
                "node's keys apart (run them on each primary's client)"
            )

    def plan_scan_page(self, cursor: int = 0, count: int = 100) -> Operation[Tuple[int, List[Tuple[Any, Any]]]]:
        """One page of :meth:`CompactMap.scan`: ``(next cursor, [(key, value), ...])``
        from the buckets one ``SCAN cursor MATCH <map>:* COUNT count`` returns;
        the next cursor is 0 at the end. Two round trips.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set(7, "x"); m.scan_page(0, 1000)
            (0, [(7, b'x')])
            >>> server.stop()
        """
        self._no_cluster_scan()
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f"cursor must be an int >= 0, got {cursor!r}")
        count = _positive_int(count, "count")
        return self._opened(self._scan_page, cursor, count)

    def _scan_page(self, cursor: int, count: int) -> Steps[Tuple[int, List[Tuple[Any, Any]]]]:
        nxt, keys = yield Plan.one(Call(("SCAN", cursor, "MATCH", self._pattern, "COUNT", count)), _scan_reply)
        buckets = [k for k in keys if self._bucket_of(k) is not None]
        if not buckets:
            return nxt, []
        never = {NEVER_DECODE: True}
        replies = yield Plan([Call(("HGETALL", k), None, never) for k in buckets], _identity, batch=True)
        items: List[Tuple[Any, Any]] = []
        for k, fields in zip(buckets, replies):
            kind, b = self._bucket_of(k)  # type: ignore[misc]
            for f, v in _pairs(fields):
                if kind == "i":
                    key: Any = b * self.layout.bucket_size + int(f)
                else:
                    key = f.decode("utf-8", "surrogateescape")
                items.append((key, self._load_raw(v)))
        return nxt, items

    def _bucket_of(self, key: str) -> Optional[Tuple[str, int]]:
        """("i" | "h", bucket number) of one of this map's bucket keys, else None."""
        tail = key[len(self._base) + 1:]
        kind = "i"
        if tail.startswith("h"):
            kind, tail = "h", tail[1:]
        body = tail[1:] if kind == "i" and tail.startswith("-") else tail
        if not body.isdigit() or not body.isascii():
            return None
        return kind, int(tail)

    def plan_stats_page(self, cursor: int = 0, count: int = 100) -> Operation[Tuple[int, CompactStats]]:
        """One page of :meth:`CompactMap.stats`: the buckets one SCAN returns,
        with HLEN, OBJECT ENCODING and MEMORY USAGE each. Two round trips.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set(1, "x"); m.stats_page(0, 1000)[1].encodings
            {'listpack': 1}
            >>> server.stop()
        """
        self._no_cluster_scan()
        count = _positive_int(count, "count")
        return self._opened(self._stats_page, cursor, count)

    def _stats_page(self, cursor: int, count: int) -> Steps[Tuple[int, CompactStats]]:
        nxt, keys = yield Plan.one(Call(("SCAN", cursor, "MATCH", self._pattern, "COUNT", count)), _scan_reply)
        buckets = [k for k in keys if self._bucket_of(k) is not None]
        calls = []
        for k in buckets:
            calls += [Call(("HLEN", k)), Call(("OBJECT", "ENCODING", k)), Call(("MEMORY", "USAGE", k))]
        replies = yield Plan(calls, _identity, batch=True, raise_on_error=False) if calls else Plan.done([])
        items = memory = 0
        encodings: Dict[str, int] = {}
        big: List[str] = []
        seen = 0
        for i, k in enumerate(buckets):
            n, enc, mem = replies[3 * i: 3 * i + 3]
            if isinstance(n, Exception) or not n:  # deleted meanwhile
                continue
            seen += 1
            items += int(n)
            memory += int(mem) if isinstance(mem, int) else 0
            enc = to_str(enc) if not isinstance(enc, Exception) else "?"
            encodings[enc] = encodings.get(enc, 0) + 1
            if enc == "hashtable":
                big.append(k)
        return nxt, CompactStats(seen, items, memory, encodings, big)

    def plan_clear_page(self, cursor: int = 0, count: int = 500) -> Operation[Tuple[int, int]]:
        """One page of :meth:`CompactMap.clear`: UNLINK the buckets one SCAN
        returns; ``(next cursor, buckets removed)``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set(1, "x"); m.clear_page(0, 1000)
            (0, 1)
            >>> server.stop()
        """
        self._no_cluster_scan()
        count = _positive_int(count, "count")
        return self._opened(self._clear_page, cursor, count)

    def _clear_page(self, cursor: int, count: int) -> Steps[Tuple[int, int]]:
        nxt, keys = yield Plan.one(Call(("SCAN", cursor, "MATCH", self._pattern, "COUNT", count)), _scan_reply)
        buckets = [k for k in keys if self._bucket_of(k) is not None]
        if not buckets:
            return nxt, 0
        removed = yield Plan.one(Call(("UNLINK", *buckets)), int)
        self.converted.difference_update(buckets)
        return nxt, removed

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, prefix={self._ks.prefix!r}, layout={self._layout})"


# -- reply helpers ------------------------------------------------------------------

def _key_list(keys: Iterable[Any]) -> List[Any]:
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise TypeError(f"expected an iterable of keys, got {type(keys).__name__}")
    out = keys if type(keys) is list else list(keys)
    if not _only(out, int):
        for k in out:
            _check_key(k)
    return out


def _only(items: List[Any], kind: type) -> bool:
    """Whether every item's type is exactly ``kind`` (bool is not int here)."""
    return not items or set(map(type, items)) == {kind}


class _KeyCache(dict):  # type: ignore[type-arg]
    """bucket number -> bucket key, built on first use (bounded)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __missing__(self, bucket: int) -> str:
        if len(self) >= 200_000:
            self.clear()
        key = self[bucket] = f"{self.prefix}{bucket}"
        return key


def _sum_ints(replies: Sequence[Any]) -> int:
    return sum(int(r) for r in replies)


def _scan_reply(reply: Any) -> Tuple[int, List[str]]:
    cursor, keys = reply
    return int(cursor), [to_str(k) for k in keys]


def _pairs(reply: Any) -> List[Tuple[bytes, bytes]]:
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2]))


def _flat_dict(reply: Any) -> Dict[str, str]:
    if isinstance(reply, dict):
        return {to_str(k): to_str(v) for k, v in reply.items()}
    return {to_str(k): to_str(v) for k, v in zip(reply[::2], reply[1::2])}


def _parse_layout(fields: Dict[str, str], meta_key: str) -> CompactLayout:
    try:
        if int(fields.get("v", "0")) != _LAYOUT_VERSION:
            raise ValueError(f"layout version {fields.get('v')!r}")
        return CompactLayout(int(fields["n"]), int(fields["b"]), int(fields["e"]), int(fields["s"]))
    except (KeyError, ValueError) as error:
        raise ValueError(f"{meta_key!r} does not hold a CompactMap layout this version reads ({error})") from None


def _limits(config: Any, entries: int, value: int) -> Tuple[int, int]:
    """hash-max-listpack-entries/-value from a CONFIG GET reply (ziplist names on 6.2)."""
    if isinstance(config, ResponseError) or isinstance(config, Exception) or not config:
        return entries, value
    if not isinstance(config, dict):
        config = dict(zip(config[::2], config[1::2]))
    got = {to_str(k): to_str(v) for k, v in config.items()}
    for kind in ("listpack", "ziplist"):
        e, s = got.get(f"hash-max-{kind}-entries"), got.get(f"hash-max-{kind}-value")
        if e is not None and s is not None:
            try:
                return int(e), int(s)
            except ValueError:
                break
    return entries, value


def _version_at_least(version: str, want: Tuple[int, int]) -> bool:
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return len(parts) == 2 and parts >= want


def _size_of(data: Any) -> int:
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogateescape"))
    if isinstance(data, memoryview):
        return data.nbytes
    return len(repr(data))


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside fastredis (the user's call)."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("fastredis"):
        frame, level = frame.f_back, level + 1
    return level


def _decoding_of(client: Any) -> Optional[Tuple[str, str]]:
    """(encoding, errors) when ``client`` decodes replies, else None."""
    try:
        encoder = client.get_encoder()
    except Exception:
        return None
    if getattr(encoder, "decode_responses", False):
        return encoder.encoding, encoder.encoding_errors
    return None


_INIT = LuaScript.load("compact_init")
_SET_TTL = LuaScript.load("compact_set_ttl")


# -- the sync shell ----------------------------------------------------------------

class CompactMap(_Core):
    """A map of small values kept in bucketed hashes (see the module
    docstring for where items live, sizing, large values and expiry).

    ``client``: ``fastredis.Redis`` or ``redis.Redis`` (a cluster client
    works for the per-item and ``*_many`` calls). ``name``: the map's name,
    under ``prefix``. ``bucket_size``: items per int bucket (default: chosen
    from the server's limits and ``value_size``, then stored). ``capacity``:
    expected number of str-keyed items (sets the str bucket count, stored).
    ``serializer``: None (values as Redis strings) or ``"json"`` / an object
    with ``dumps``/``loads``.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> counters = CompactMap(r, "views", serializer="json")
        >>> counters.set(42, {"n": 1}); counters.get(42)
        True
        {'n': 1}
        >>> server.stop()
    """

    def open(self) -> CompactLayout:
        """Read (or store) the layout now; the first operation does it otherwise.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m", bucket_size=50)
            >>> m.open().bucket_size
            50
            >>> server.stop()
        """
        if self._layout is None:
            run(self.client, self.plan_open())
        return self._layout  # type: ignore[return-value]

    def _run(self, op: Operation[Any]) -> Any:
        if type(op) is ColumnPlan:
            return run_columns(self.client, op)
        return run(self.client, op)

    def get(self, key: ItemKey, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (see :meth:`plan_get`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.get("missing", b"")
            b''
            >>> server.stop()
        """
        return self._run(self.plan_get(key, default))

    def set(self, key: ItemKey, value: Any, *, ttl: Optional[float] = None) -> bool:
        """Store ``value``; True if the item is new (see :meth:`plan_set`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.set(1, 2.5), m.get(1)
            (True, b'2.5')
            >>> server.stop()
        """
        return self._run(self.plan_set(key, value, ttl=ttl))  # type: ignore[no-any-return]

    def delete(self, key: ItemKey) -> bool:
        """Remove ``key``; True if it was there (see :meth:`plan_delete`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.delete("nothing")
            False
            >>> server.stop()
        """
        return self._run(self.plan_delete(key))  # type: ignore[no-any-return]

    def contains(self, key: ItemKey) -> bool:
        """Whether ``key`` is in the map (also ``key in m``).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.contains(0)
            False
            >>> server.stop()
        """
        return self._run(self.plan_contains(key))  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return self.contains(key)  # type: ignore[arg-type]

    def incr(self, key: ItemKey, amount: int = 1) -> int:
        """Add ``amount`` to an integer value; the new value (see :meth:`plan_incr`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.incr("hits"), m.incr("hits", 10)
            (1, 11)
            >>> server.stop()
        """
        return self._run(self.plan_incr(key, amount))  # type: ignore[no-any-return]

    def get_many(self, keys: Iterable[ItemKey]) -> List[Any]:
        """The values of ``keys``, in order, in one round trip (see :meth:`plan_get_many`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set(1, "a"); m.get_many([1, 2])
            [b'a', None]
            >>> server.stop()
        """
        return self._run(self.plan_get_many(keys))  # type: ignore[no-any-return]

    def set_many(self, items: Union[Mapping[ItemKey, Any], Iterable[Tuple[ItemKey, Any]]]) -> int:
        """Store many items in one round trip; how many are new (see :meth:`plan_set_many`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.set_many({i: "v" for i in range(1000)})
            1000
            >>> server.stop()
        """
        return self._run(self.plan_set_many(items))  # type: ignore[no-any-return]

    def delete_many(self, keys: Iterable[ItemKey]) -> int:
        """Remove many items in one round trip; how many were there.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.delete_many([1, 2])
            0
            >>> server.stop()
        """
        return self._run(self.plan_delete_many(keys))  # type: ignore[no-any-return]

    def scan_page(self, cursor: int = 0, count: int = 100) -> Tuple[int, List[Tuple[Any, Any]]]:
        """One page of :meth:`scan` (see :meth:`plan_scan_page`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.scan_page()
            (0, [])
            >>> server.stop()
        """
        return self._run(self.plan_scan_page(cursor, count))  # type: ignore[no-any-return]

    def scan(self, count: int = 100) -> Iterator[Tuple[Any, Any]]:
        """Every ``(key, value)`` of the map, bucket by bucket, with ``SCAN``'s
        guarantees: an item present for the whole scan is returned (possibly
        twice if SCAN returns its bucket twice); int keys come back as int,
        str/bytes keys as str. Never blocks the server for long.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set_many({1: "a", "b": "c"}); sorted(m.scan(), key=lambda item: str(item[0]))
            [(1, b'a'), ('b', b'c')]
            >>> server.stop()
        """
        cursor = 0
        while True:
            cursor, items = self.scan_page(cursor, count)
            yield from items
            if cursor == 0:
                return

    def stats_page(self, cursor: int = 0, count: int = 100) -> Tuple[int, CompactStats]:
        """One page of :meth:`stats` (see :meth:`plan_stats_page`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.stats_page()[1].buckets
            0
            >>> server.stop()
        """
        return self._run(self.plan_stats_page(cursor, count))  # type: ignore[no-any-return]

    def stats(self, count: int = 100) -> CompactStats:
        """Buckets, items, memory (``MEMORY USAGE``) and buckets by encoding,
        over the whole map (SCAN pages). Buckets that are ``hashtable`` hold
        a large value or too many str keys.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set_many({i: "0123456789abcdef" for i in range(984)})   # 8 buckets of 123
            >>> s = m.stats(); s.buckets, s.items, s.encodings, s.bytes_per_item < 25
            (8, 984, {'listpack': 8}, True)
            >>> server.stop()
        """
        cursor, total = 0, CompactStats(0, 0, 0, {}, [])
        while True:
            cursor, page = self.stats_page(cursor, count)
            total = _add_stats(total, page)
            if cursor == 0:
                return total

    def clear_page(self, cursor: int = 0, count: int = 500) -> Tuple[int, int]:
        """One page of :meth:`clear` (see :meth:`plan_clear_page`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> m.clear_page()
            (0, 0)
            >>> server.stop()
        """
        return self._run(self.plan_clear_page(cursor, count))  # type: ignore[no-any-return]

    def clear(self, count: int = 500) -> int:
        """Remove every item (UNLINK of the buckets, SCAN page by page; not
        atomic); the layout stays. Returns the number of buckets removed.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); m = CompactMap(server.client(), "m")
            >>> _ = m.set_many({1: "a", 500: "b"}); m.clear(), m.get(1)
            (2, None)
            >>> server.stop()
        """
        cursor, removed = 0, 0
        while True:
            cursor, n = self.clear_page(cursor, count)
            removed += n
            if cursor == 0:
                return removed


def _add_stats(a: CompactStats, b: CompactStats) -> CompactStats:
    enc = dict(a.encodings)
    for k, v in b.encodings.items():
        enc[k] = enc.get(k, 0) + v
    return CompactStats(a.buckets + b.buckets, a.items + b.items, a.memory_bytes + b.memory_bytes, enc,
                        (a.hashtable_buckets + b.hashtable_buckets)[:20])
