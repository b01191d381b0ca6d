"""Sessions, shopping carts and presence: ``SessionStore``, ``Cart``, ``Presence``.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> store = SessionStore(r, ttl=60)
    >>> sid = store.create({"theme": "dark"}, user_id="alice")
    >>> store.get(sid)
    {'theme': 'dark'}
    >>> cart = Cart(r)
    >>> cart.add("alice", "apple", 3)
    3
    >>> Presence(r, "lobby").heartbeat("alice")
    True
    >>> server.stop()
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .._text import check_finite, to_bytes, to_str
from ..keys import KeySpace
from ..scripts import LuaScript
from ..serializers import Serializer, get_serializer

__all__ = ["SessionStore", "Cart", "Presence"]

_SID_RE = re.compile(r"\A([0-9a-f]{16})\.([A-Za-z0-9_-]{32})\Z")
_DATA = "d:"  # hash fields holding user data; "m:" fields are bookkeeping


def _ttl_ms(ttl: Any, name: str = "ttl") -> int:
    seconds = check_finite(ttl, name)
    if seconds <= 0:
        raise ValueError(f"{name} must be > 0 seconds, got {ttl!r}")
    return max(1, int(math.ceil(seconds * 1000)))


def _user_id(user_id: Any) -> str:
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
        raise TypeError(f"user_id must be str or int, got {type(user_id).__name__}")
    uid = str(user_id)
    if not uid:
        raise ValueError("user_id must not be empty")
    return uid


def _field_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"session field names must be str, got {type(name).__name__}")
    return name


class SessionStore:
    """Server-side sessions: JSON values in a hash, sliding TTL, rotation, per-user index.

    Session ids are ``<tag>.<secret>``: 192 random bits from :mod:`secrets`
    plus a 64-bit hash tag. The tag is random for anonymous sessions and a
    hash of the user id otherwise, so a user's sessions and their index share
    one cluster slot and ``destroy_all_for`` is one script. (A consequence:
    two ids of the same user carry the same tag, which links them; the
    secret part alone authenticates.) Unknown, expired and malformed ids all
    give ``None``/``False`` the same way, revealing nothing about existence.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> store = SessionStore(r, ttl=60)
        >>> sid = store.create({"cart": [1, 2]}, user_id=42)
        >>> store.update(sid, theme="dark")
        True
        >>> new = store.rotate(sid)
        >>> store.get(sid) is None, store.get(new)
        (True, {'cart': [1, 2], 'theme': 'dark'})
        >>> store.destroy_all_for(42)
        1
        >>> server.stop()
    """

    _create = LuaScript.load("session_create")
    _access = LuaScript.load("session_access")
    _rotate = LuaScript.load("session_rotate")
    _destroy = LuaScript.load("session_destroy")

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "sess",
        ttl: float = 1800,
        sliding: bool = True,
        serializer: Union[str, Serializer, None] = "json",
    ) -> None:
        self.client = client
        self.keys = KeySpace(prefix)
        self.ttl_ms = _ttl_ms(ttl)
        self.sliding = bool(sliding)
        self.serializer = get_serializer(serializer)

    # -- ids and keys -----------------------------------------------------
    def _user_tag(self, uid: str) -> str:
        return hashlib.sha256(f"{self.keys.prefix}\x00{uid}".encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def _parse(self, sid: Any) -> Optional[Tuple[str, str]]:
        if isinstance(sid, bytes):
            sid = sid.decode("ascii", "replace")
        if not isinstance(sid, str):
            raise TypeError(f"session id must be str, got {type(sid).__name__}")
        m = _SID_RE.match(sid)
        return (m.group(1), m.group(2)) if m else None

    def _session_keys(self, tag: str, secret: str) -> List[str]:
        return [self.keys.tagged(tag, secret), self.keys.tagged(tag, "idx")]

    def _encode_fields(self, data: Mapping[str, Any]) -> List[Any]:
        out: List[Any] = []
        for name, value in data.items():
            out += [_DATA + _field_name(name), self.serializer.dumps(value)]
        return out

    def _decode_fields(self, flat: Any) -> Dict[str, Any]:
        if isinstance(flat, dict):  # a client that maps replies; Lua replies are flat lists
            flat = [x for kv in flat.items() for x in kv]
        out: Dict[str, Any] = {}
        for i in range(0, len(flat), 2):
            name = to_str(flat[i])
            if name.startswith(_DATA):
                out[name[len(_DATA):]] = self.serializer.loads(flat[i + 1])
        return out

    # -- operations -------------------------------------------------------
    def create(self, data: Optional[Mapping[str, Any]] = None, *, user_id: Optional[Union[str, int]] = None) -> str:
        """Store ``data`` (JSON values) under a new session id and return the id.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> len(store.create({"a": 1}))
            49
            >>> server.stop()
        """
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, got {type(data).__name__}")
        uid = "" if user_id is None else _user_id(user_id)
        tag = self._user_tag(uid) if uid else secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        fields = self._encode_fields(data)
        self._create(self.client, self._session_keys(tag, secret), [self.ttl_ms, uid, secret, *fields])
        return f"{tag}.{secret}"

    def _run_access(self, sid: Any, want: bool, delete: Sequence[str] = (), fields: Sequence[Any] = ()) -> Any:
        parsed = self._parse(sid)
        if parsed is None:
            return None
        tag, secret = parsed
        args = [self.ttl_ms, "1" if self.sliding else "0", secret, "1" if want else "0", len(delete), *delete, *fields]
        return self._access(self.client, self._session_keys(tag, secret), args)

    def get(self, sid: str) -> Optional[Dict[str, Any]]:
        """The session's data, or ``None``; a sliding store re-arms the TTL.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> store.get("0123456789abcdef." + "x" * 32) is None
            True
            >>> server.stop()
        """
        reply = self._run_access(sid, True)
        return None if reply is None else self._decode_fields(reply)

    def touch(self, sid: str) -> bool:
        """Re-arm the session's TTL (even when not sliding); ``False`` if unknown.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> store.touch(store.create())
            True
            >>> server.stop()
        """
        parsed = self._parse(sid)
        if parsed is None:
            return False
        tag, secret = parsed
        reply = self._access(self.client, self._session_keys(tag, secret), [self.ttl_ms, "1", secret, "0", 0])
        return reply is not None

    def update(self, sid: str, **fields: Any) -> bool:
        """Set fields (JSON values) of a live session; ``False`` if unknown (nothing created).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> sid = store.create({"a": 1}); store.update(sid, b=[2])
            True
            >>> store.get(sid)
            {'a': 1, 'b': [2]}
            >>> server.stop()
        """
        return self._run_access(sid, False, (), self._encode_fields(fields)) is not None

    def delete_fields(self, sid: str, *names: str) -> bool:
        """Remove fields of a live session; ``False`` if unknown.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> sid = store.create({"a": 1, "b": 2}); store.delete_fields(sid, "a")
            True
            >>> store.get(sid)
            {'b': 2}
            >>> server.stop()
        """
        delete = [_DATA + _field_name(n) for n in names]
        return self._run_access(sid, False, delete) is not None

    def rotate(self, sid: str) -> Optional[str]:
        """Move the session to a fresh id and kill the old one (session-fixation defence).

        Returns the new id, or ``None`` if ``sid`` is unknown. Call it at login
        and at every privilege change.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> old = store.create({"a": 1}); new = store.rotate(old)
            >>> store.get(old), store.get(new)
            (None, {'a': 1})
            >>> server.stop()
        """
        parsed = self._parse(sid)
        if parsed is None:
            return None
        tag, secret = parsed
        new_secret = secrets.token_urlsafe(24)
        keys = [self.keys.tagged(tag, secret), self.keys.tagged(tag, new_secret), self.keys.tagged(tag, "idx")]
        ok = self._rotate(self.client, keys, [self.ttl_ms, secret, new_secret])
        return f"{tag}.{new_secret}" if int(ok) == 1 else None

    def destroy(self, sid: str) -> bool:
        """Delete the session (logout); ``True`` if it was live.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> sid = store.create(); store.destroy(sid), store.get(sid)
            (True, None)
            >>> server.stop()
        """
        parsed = self._parse(sid)
        if parsed is None:
            return False
        tag, secret = parsed
        keys = [self.keys.tagged(tag, "idx"), self.keys.tagged(tag, secret)]
        return int(self._destroy(self.client, keys, ["", secret])) > 0

    def destroy_all_for(self, user_id: Union[str, int]) -> int:
        """Delete every session of ``user_id`` (e.g. after a password change); returns how many.

        Reads the user's index, then deletes the listed sessions in one script
        that re-checks each owner; repeats while sessions created meanwhile
        remain (at most a few rounds).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> _ = store.create(user_id="bob"); _ = store.create(user_id="bob")
            >>> store.destroy_all_for("bob")
            2
            >>> server.stop()
        """
        uid = _user_id(user_id)
        tag = self._user_tag(uid)
        index = self.keys.tagged(tag, "idx")
        total = 0
        for _ in range(10):  # more rounds only if sessions are created meanwhile
            members = [to_str(m) for m in self.client.zrange(index, 0, -1)]
            if not members:
                break
            keys = [index] + [self.keys.tagged(tag, m) for m in members]
            deleted = int(self._destroy(self.client, keys, [uid, *members]))
            total += deleted
            if deleted == 0:
                break  # whatever is left belongs to another user sharing the tag
        return total


# -- Cart -----------------------------------------------------------------------

def _quantity(qty: Any, cap: int, name: str = "qty") -> int:
    if isinstance(qty, bool) or not isinstance(qty, int):
        if isinstance(qty, float) and qty.is_integer():
            qty = int(qty)
        else:
            raise ValueError(f"{name} must be an integer, got {qty!r}")
    if qty < 0 or qty > cap:
        raise ValueError(f"{name} must be between 0 and {cap}, got {qty}")
    return qty


class Cart:
    """Shopping carts: a hash of item -> integer quantity per owner, with a TTL.

    Quantities are integers in ``[0, max_qty]``; anything else raises
    ``ValueError``. ``add`` carries an operation id, so a replay by the
    client's retry policy is not counted twice. ``merge`` touches two owners'
    carts, which live in different cluster slots: on Redis Cluster it needs
    both owners in one slot (it raises CROSSSLOT otherwise).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); cart = Cart(server.client())
        >>> cart.add("anon-1", "apple", 2); cart.add("alice", "apple", 1)
        2
        1
        >>> cart.merge("anon-1", "alice")
        1
        >>> cart.items("alice"), cart.items("anon-1")
        ({'apple': 3}, {})
        >>> server.stop()
    """

    _change = LuaScript.load("cart_change")
    _merge = LuaScript.load("cart_merge")

    def __init__(self, client: Any, *, prefix: str = "cart", ttl: float = 604800, max_qty: int = 10_000) -> None:
        if isinstance(max_qty, bool) or not isinstance(max_qty, int) or max_qty < 1 or max_qty >= 2**53:
            raise ValueError(f"max_qty must be an integer between 1 and 2**53, got {max_qty!r}")
        self.client = client
        self.keys = KeySpace(prefix)
        self.ttl_ms = _ttl_ms(ttl)
        self.max_qty = max_qty

    def key(self, owner: Union[str, int]) -> str:
        """The Redis key of ``owner``'s cart."""
        return self.keys.tagged(owner)

    def _run(self, mode: str, owner: Union[str, int], item: Union[str, bytes, int], qty: int) -> int:
        keys = [self.keys.tagged(owner), self.keys.tagged(owner, "ops")]
        args = [mode, to_bytes(item), qty, self.max_qty, self.ttl_ms, secrets.token_hex(8), 60_000]
        result = int(self._change(self.client, keys, args))
        if result < 0:
            raise ValueError(f"quantity of {to_str(item)!r} would exceed max_qty={self.max_qty}")
        return result

    def add(self, owner: Union[str, int], item: Union[str, bytes, int], qty: int = 1) -> int:
        """Add ``qty`` of ``item``; returns the new quantity. ``ValueError`` past ``max_qty``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> cart.add("u", "pen"), cart.add("u", "pen", 4)
            (1, 5)
            >>> server.stop()
        """
        return self._run("add", owner, item, _quantity(qty, self.max_qty))

    def set_qty(self, owner: Union[str, int], item: Union[str, bytes, int], qty: int) -> int:
        """Set the quantity of ``item`` (0 removes it); returns it.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> cart.set_qty("u", "pen", 7)
            7
            >>> server.stop()
        """
        return self._run("set", owner, item, _quantity(qty, self.max_qty))

    def remove(self, owner: Union[str, int], item: Union[str, bytes, int]) -> bool:
        """Remove ``item``; ``True`` if it was in the cart.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen"); cart.remove("u", "pen")
            True
            >>> server.stop()
        """
        return int(self.client.hdel(self.keys.tagged(owner), to_bytes(item))) == 1

    def items(self, owner: Union[str, int]) -> Dict[str, int]:
        """Every item and its quantity.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen", 2); cart.items("u")
            {'pen': 2}
            >>> server.stop()
        """
        raw = self.client.hgetall(self.keys.tagged(owner))
        return {to_str(k): int(v) for k, v in raw.items()}

    def count(self, owner: Union[str, int]) -> int:
        """Total number of units in the cart (the sum of quantities).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen", 2); _ = cart.add("u", "ink"); cart.count("u")
            3
            >>> server.stop()
        """
        return sum(int(v) for v in self.client.hvals(self.keys.tagged(owner)))

    def clear(self, owner: Union[str, int]) -> None:
        """Empty the cart.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen"); cart.clear("u"); cart.items("u")
            {}
            >>> server.stop()
        """
        self.client.delete(self.keys.tagged(owner))

    def merge(self, from_owner: Union[str, int], to_owner: Union[str, int]) -> int:
        """Atomically add ``from_owner``'s cart into ``to_owner``'s and delete the source.

        Sums above ``max_qty`` are clamped to ``max_qty`` (a login must not
        fail). Returns the number of distinct items moved.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("anon", "pen"); cart.merge("anon", "alice")
            1
            >>> server.stop()
        """
        if self.keys.tagged(from_owner) == self.keys.tagged(to_owner):
            return 0
        keys = [self.keys.tagged(from_owner), self.keys.tagged(to_owner)]
        return int(self._merge(self.client, keys, [self.max_qty, self.ttl_ms]))


# -- Presence ------------------------------------------------------------------

class Presence:
    """Who is online in a room: a heartbeat sorted set, pruned atomically on every call.

    A user is online while its last heartbeat is at most ``timeout`` seconds
    old. With ``events=True`` joins and leaves (explicit, or noticed when a
    stale member is pruned) are published as JSON on :meth:`events_channel`.
    ``at=`` (seconds since the epoch) replaces the server's clock, for tests
    and replays; the set itself expires ``timeout + 1`` s of real time after
    the last heartbeat.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); p = Presence(server.client(), "lobby", timeout=30)
        >>> p.heartbeat("ann", at=1000.0), p.heartbeat("bob", at=1010.0)
        (True, True)
        >>> sorted(p.online(at=1020.0)), sorted(p.online(at=1035.0))
        (['ann', 'bob'], ['bob'])
        >>> server.stop()
    """

    _script = LuaScript.load("presence_update")

    def __init__(self, client: Any, room: Union[str, int], *, timeout: float = 30, prefix: str = "presence", events: bool = False) -> None:
        self.client = client
        self.room = room
        self.keys = KeySpace(prefix)
        self.key = self.keys.key(room)
        self.timeout = check_finite(timeout, "timeout")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.events = bool(events)
        self.channel_name = self.keys.key(room, "events")

    def events_channel(self) -> Any:
        """The :class:`~fastredis.patterns.messaging.Channel` carrying join/leave events.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> Presence(server.client(), "lobby", events=True).events_channel().channel
            'presence:lobby:events'
            >>> server.stop()
        """
        from .messaging import Channel

        return Channel._raw(self.client, self.channel_name)

    def _call(self, mode: str, user: Any = "", at: Optional[float] = None) -> Any:
        now = "" if at is None else repr(check_finite(at, "at"))
        member = to_bytes(user) if mode in ("heartbeat", "leave", "member") else b""
        if mode in ("heartbeat", "leave", "member") and not member:
            raise ValueError("user must not be empty")
        chan = self.channel_name if self.events else ""
        return self._script(self.client, [self.key], [now, repr(self.timeout), chan, mode, member, to_bytes(self.room)])

    def heartbeat(self, user: Union[str, bytes, int], *, at: Optional[float] = None) -> bool:
        """Mark ``user`` online now (or at ``at``); ``True`` if it just joined.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> p.heartbeat("ann"), p.heartbeat("ann")
            (True, False)
            >>> server.stop()
        """
        return int(self._call("heartbeat", user, at)) == 1

    def leave(self, user: Union[str, bytes, int], *, at: Optional[float] = None) -> bool:
        """Mark ``user`` offline; ``True`` if it was online.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> _ = p.heartbeat("ann"); p.leave("ann"), p.is_online("ann")
            (True, False)
            >>> server.stop()
        """
        return int(self._call("leave", user, at)) == 1

    def online(self, *, at: Optional[float] = None) -> Set[str]:
        """The users online now (or at ``at``).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> _ = p.heartbeat("ann"); p.online()
            {'ann'}
            >>> server.stop()
        """
        return {to_str(m) for m in self._call("list", at=at)}

    def count(self, *, at: Optional[float] = None) -> int:
        """How many users are online.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> _ = p.heartbeat("ann"); p.count()
            1
            >>> server.stop()
        """
        return int(self._call("count", at=at))

    def is_online(self, user: Union[str, bytes, int], *, at: Optional[float] = None) -> bool:
        """Whether ``user`` is online.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> p.is_online("ann")
            False
            >>> server.stop()
        """
        return int(self._call("member", user, at)) == 1
