"""Server-side sessions: ``SessionStore``.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> store = SessionStore(r, ttl=60)
    >>> sid = store.create({"theme": "dark"}, user_id="alice")
    >>> store.get(sid)
    {'theme': 'dark'}
    >>> server.stop()
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .._text import check_finite, to_str
from ..keys import KeySpace
from ..scripts import LuaScript
from ..serializers import Serializer, get_serializer
from ._clients import check_sync_client
from ._plan import Call, Plan, Steps, script_call, sync_operation

__all__ = ["SessionStore", "ttl_ms"]

_CREATE = LuaScript.load("session_create")
_ACCESS = LuaScript.load("session_access")
_ROTATE = LuaScript.load("session_rotate")
_DESTROY = LuaScript.load("session_destroy")

_SID_RE = re.compile(r"\A([0-9a-f]{16})\.([A-Za-z0-9_-]{32})\Z")
_DATA = "d:"  # hash fields holding user data; "m:" fields are bookkeeping


def ttl_ms(ttl: Any, name: str = "ttl") -> int:
    """Seconds (finite, > 0) as whole milliseconds, rounded up.

    Example::

        >>> ttl_ms(1.0001)
        1001
    """
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


class _SessionPlans:
    """The plans of :class:`SessionStore` (no I/O), shared with its asyncio twin."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "sess",
        ttl: float = 1800,
        sliding: bool = True,
        serializer: Union[str, Serializer, None] = "json",
    ) -> None:
        if not isinstance(sliding, bool):
            raise TypeError(f"sliding must be True or False, got {type(sliding).__name__}")
        self.client = self._check_client(client, type(self).__name__)
        self.keys = KeySpace(prefix)
        self.ttl_ms = ttl_ms(ttl)
        self.sliding = sliding
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
    def plan_create(self, data: Optional[Mapping[str, Any]] = None, *, user_id: Optional[Union[str, int]] = None) -> Plan[str]:
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
        sid = f"{tag}.{secret}"
        call = script_call(_CREATE, self._session_keys(tag, secret), [self.ttl_ms, uid, secret, *fields])
        return Plan.one(call, lambda _reply: sid)

    def _access(self, sid: Any, want: bool, delete: Sequence[str], fields: Sequence[Any],
                interpret: Callable[[Any], Any], unknown: Any, sliding: Optional[bool] = None) -> Plan[Any]:
        parsed = self._parse(sid)
        if parsed is None:
            return Plan.done(unknown)
        tag, secret = parsed
        slide = self.sliding if sliding is None else sliding
        args = [self.ttl_ms, "1" if slide else "0", secret, "1" if want else "0", len(delete), *delete, *fields]
        return Plan.one(script_call(_ACCESS, self._session_keys(tag, secret), args), interpret)

    def plan_get(self, sid: str) -> Plan[Optional[Dict[str, Any]]]:
        """The session's data, or ``None``; a sliding store re-arms the TTL.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> store.get("0123456789abcdef." + "x" * 32) is None
            True
            >>> server.stop()
        """
        return self._access(sid, True, (), (), lambda r: None if r is None else self._decode_fields(r), None)

    def plan_touch(self, sid: str) -> Plan[bool]:
        """Re-arm the session's TTL (even when not sliding); ``False`` if unknown.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> store.touch(store.create())
            True
            >>> server.stop()
        """
        return self._access(sid, False, (), (), _is_live, False, sliding=True)

    def plan_update(self, sid: str, **fields: Any) -> Plan[bool]:
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
        return self._access(sid, False, (), self._encode_fields(fields), _is_live, False)

    def plan_delete_fields(self, sid: str, *names: str) -> Plan[bool]:
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
        return self._access(sid, False, delete, (), _is_live, False)

    def plan_rotate(self, sid: str) -> Plan[Optional[str]]:
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
            return Plan.done(None)
        tag, secret = parsed
        new_secret = secrets.token_urlsafe(24)
        keys = [self.keys.tagged(tag, secret), self.keys.tagged(tag, new_secret), self.keys.tagged(tag, "idx")]
        new_sid = f"{tag}.{new_secret}"
        call = script_call(_ROTATE, keys, [self.ttl_ms, secret, new_secret])
        return Plan.one(call, lambda ok: new_sid if int(ok) == 1 else None)

    def plan_destroy(self, sid: str) -> Plan[bool]:
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
            return Plan.done(False)
        tag, secret = parsed
        keys = [self.keys.tagged(tag, "idx"), self.keys.tagged(tag, secret)]
        return Plan.one(script_call(_DESTROY, keys, ["", secret]), _positive)

    def plan_destroy_all_for(self, user_id: Union[str, int]) -> Steps[int]:
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
        uid = _user_id(user_id)  # checked now, before the steps run
        return self._destroy_all_steps(uid)

    def _destroy_all_steps(self, uid: str) -> Steps[int]:
        tag = self._user_tag(uid)
        index = self.keys.tagged(tag, "idx")
        total = 0
        for _ in range(10):  # more rounds only if sessions are created meanwhile
            members = yield Plan.one(Call(("ZRANGE", index, 0, -1)), _strs)
            if not members:
                break
            keys = [index] + [self.keys.tagged(tag, m) for m in members]
            deleted = yield Plan.one(script_call(_DESTROY, keys, [uid, *members]), int)
            total += deleted
            if deleted == 0:
                break  # whatever is left belongs to another user sharing the tag
        return total


def _is_live(reply: Any) -> bool:
    return reply is not None


def _positive(reply: Any) -> bool:
    return int(reply) > 0


def _strs(reply: Any) -> List[str]:
    return [to_str(m) for m in reply]


class SessionStore(_SessionPlans):
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

    create = sync_operation(_SessionPlans.plan_create)
    get = sync_operation(_SessionPlans.plan_get)
    touch = sync_operation(_SessionPlans.plan_touch)
    update = sync_operation(_SessionPlans.plan_update)
    delete_fields = sync_operation(_SessionPlans.plan_delete_fields)
    rotate = sync_operation(_SessionPlans.plan_rotate)
    destroy = sync_operation(_SessionPlans.plan_destroy)
    destroy_all_for = sync_operation(_SessionPlans.plan_destroy_all_for)
