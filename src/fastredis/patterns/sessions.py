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
from ._plan import Call, Operation, Plan, Steps, script_call, sync_operation

__all__ = ["SessionStore", "ttl_ms", "DEFAULT_MAX_AGE", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_FIELDS"]

_CREATE = LuaScript.load("session_create")
_ACCESS = LuaScript.load("session_access")
_ROTATE = LuaScript.load("session_rotate")
_DESTROY = LuaScript.load("session_destroy")
_USER_TAG = LuaScript.load("session_user_tag")

_SID_RE = re.compile(r"\A([0-9a-f]{16})\.([A-Za-z0-9_-]{32})\Z")
_TAG_RE = re.compile(r"\A[0-9a-f]{16}\Z")
_DATA = "d:"  # hash fields holding user data; "m:" fields are bookkeeping

#: Absolute session lifetime (seconds): 30 days from creation, however often used.
DEFAULT_MAX_AGE = 30 * 86400.0
#: Most bytes of data one session holds (field names plus serialized values): 1 MiB.
DEFAULT_MAX_BYTES = 1 << 20
#: Most data fields one session holds.
DEFAULT_MAX_FIELDS = 256
# A user's tag key outlives max_age by this much: a session created right
# after the tag was read still ends before the tag key does.
_TAG_MARGIN_MS = 3_600_000


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


def _limit(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


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
        max_age: Optional[float] = DEFAULT_MAX_AGE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_fields: int = DEFAULT_MAX_FIELDS,
    ) -> None:
        if not isinstance(sliding, bool):
            raise TypeError(f"sliding must be True or False, got {type(sliding).__name__}")
        self.client = self._check_client(client, type(self).__name__)
        self.keys = KeySpace(prefix)
        self.ttl_ms = ttl_ms(ttl)
        self.sliding = sliding
        self.serializer = get_serializer(serializer)
        #: Absolute lifetime in ms (0: none).
        self.max_age_ms = 0 if max_age is None else ttl_ms(max_age, "max_age")
        self.max_bytes = _limit(max_bytes, "max_bytes")
        self.max_fields = _limit(max_fields, "max_fields")

    # -- ids and keys -----------------------------------------------------
    def _user_key(self, uid: str) -> str:
        """The key holding ``uid``'s random tag (server-side only; never in an id)."""
        return self.keys.key("user", uid)

    def _legacy_tag(self, uid: str) -> str:
        """The tag ids had before the random per-user tag: a hash of the prefix
        and user id (ids of that scheme still work until they end)."""
        return hashlib.sha256(f"{self.keys.prefix}\x00{uid}".encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def _user_tag_plan(self, uid: str) -> Plan[str]:
        life = self.max_age_ms + _TAG_MARGIN_MS if self.max_age_ms else 0
        key = self._user_key(uid)

        def interpret(reply: Any) -> str:
            tag = to_str(reply)
            if not _TAG_RE.match(tag):
                raise RuntimeError(f"{key!r} does not hold a session tag (16 hex digits): it was overwritten")
            return tag

        return Plan.one(script_call(_USER_TAG, [key], [secrets.token_hex(8), life]), interpret)

    def _parse(self, sid: Any) -> Optional[Tuple[str, str]]:
        if isinstance(sid, bytes):
            sid = sid.decode("ascii", "replace")
        if not isinstance(sid, str):
            raise TypeError(f"session id must be str, got {type(sid).__name__}")
        m = _SID_RE.match(sid)
        return (m.group(1), m.group(2)) if m else None

    def _session_keys(self, tag: str, secret: str) -> List[str]:
        return [self.keys.tagged(tag, secret), self.keys.tagged(tag, "idx")]

    def _encode_fields(self, data: Mapping[str, Any], what: str) -> List[Any]:
        """``[field, value, ...]`` of ``data``, checked against ``max_fields``
        and ``max_bytes`` (``what`` names the data in the error)."""
        if len(data) > self.max_fields:
            raise ValueError(
                f"{what} has {len(data)} fields, over max_fields={self.max_fields} of this "
                f"{type(self).__name__}: store fewer, or raise the limit with max_fields="
            )
        out: List[Any] = []
        size = 0
        for name, value in data.items():
            payload = self.serializer.dumps(value)
            size += len(_field_name(name).encode("utf-8", "surrogatepass")) + len(payload)
            out += [_DATA + name, payload]
        if size > self.max_bytes:
            raise ValueError(
                f"{what} is {size} bytes (field names plus serialized values), over max_bytes="
                f"{self.max_bytes} of this {type(self).__name__}: store less, or raise the limit with max_bytes="
            )
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
    def plan_create(self, data: Optional[Mapping[str, Any]] = None, *, user_id: Optional[Union[str, int]] = None) -> Operation[str]:
        """Store ``data`` (JSON values) under a new session id and return the id.

        With ``user_id`` the session joins the user's index (for
        :meth:`destroy_all_for`) under the user's random tag, which takes one
        more round trip. ``ValueError`` when ``data`` has more than
        ``max_fields`` fields or ``max_bytes`` bytes.

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
        fields = self._encode_fields(data, "session data")
        secret = secrets.token_urlsafe(24)
        if not uid:
            tag = secrets.token_hex(8)
            sid = f"{tag}.{secret}"
            return Plan.one(self._create_call(tag, secret, "", fields), lambda _reply: sid)
        return self._create_steps(uid, secret, fields)

    def _create_call(self, tag: str, secret: str, uid: str, fields: List[Any]) -> Call:
        return script_call(_CREATE, self._session_keys(tag, secret), [self.ttl_ms, uid, secret, self.max_age_ms, *fields])

    def _create_steps(self, uid: str, secret: str, fields: List[Any]) -> Steps[str]:
        # The user's random tag first (its key's lifetime re-armed), then the
        # session under it: two round trips, the tag key in its own slot.
        tag = yield self._user_tag_plan(uid)
        yield Plan.one(self._create_call(tag, secret, uid, fields), _is_live)
        return f"{tag}.{secret}"

    def _access(self, sid: Any, want: bool, delete: Sequence[str], fields: Sequence[Any],
                interpret: Callable[[Any], Any], unknown: Any, sliding: Optional[bool] = None) -> Plan[Any]:
        parsed = self._parse(sid)
        if parsed is None:
            return Plan.done(unknown)
        tag, secret = parsed
        slide = self.sliding if sliding is None else sliding
        args = [self.ttl_ms, "1" if slide else "0", secret, "1" if want else "0",
                self.max_age_ms, self.max_bytes, self.max_fields, len(delete), *delete, *fields]
        return Plan.one(script_call(_ACCESS, self._session_keys(tag, secret), args), interpret)

    def _updated(self, reply: Any) -> bool:
        if reply is None:
            return False
        if isinstance(reply, int) and reply < 0:
            limit = f"max_bytes={self.max_bytes}" if reply == -1 else f"max_fields={self.max_fields}"
            raise ValueError(
                f"the update would take the session past {limit} of this {type(self).__name__} "
                f"(nothing was changed): store less, or raise the limit with {limit.split('=')[0]}="
            )
        return True

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

        ``ValueError`` (nothing changed) when the session would then hold more
        than ``max_fields`` fields or ``max_bytes`` bytes of data.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); store = SessionStore(server.client())
            >>> sid = store.create({"a": 1}); store.update(sid, b=[2])
            True
            >>> store.get(sid)
            {'a': 1, 'b': [2]}
            >>> server.stop()
        """
        return self._access(sid, False, (), self._encode_fields(fields, "the update"), self._updated, False)

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
        and at every privilege change. The session keeps its creation time, so
        rotating never extends it past ``max_age``.

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
        call = script_call(_ROTATE, keys, [self.ttl_ms, secret, new_secret, self.max_age_ms])
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

        Reads the user's tag, then the index of that tag, then deletes the
        listed sessions in one script that re-checks each owner; repeats while
        sessions created meanwhile remain (at most a few rounds). Sessions made
        under the previous id scheme (a hash of the user id as the tag) are
        found and deleted too.

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
        # The user's random tag (none: no session since its key expired), and
        # the tag of the previous id scheme, whose ids work until they end.
        tag = yield Plan.one(Call(("GET", self._user_key(uid))), _opt_str)
        total = 0
        for t in dict.fromkeys(x for x in (tag, self._legacy_tag(uid)) if x and _TAG_RE.match(x)):
            total += yield from self._destroy_tag_steps(t, uid)
        return total

    def _destroy_tag_steps(self, tag: str, uid: str) -> Steps[int]:
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


def _opt_str(reply: Any) -> Optional[str]:
    return None if reply is None else to_str(reply)


class SessionStore(_SessionPlans):
    """Server-side sessions: JSON values in a hash, sliding TTL, rotation, per-user index.

    Session ids are ``<tag>.<secret>``: 192 random bits from :mod:`secrets`
    (the secret, which alone authenticates) and a 64-bit cluster hash tag.
    The tag is random too: fresh for an anonymous session, and for a user
    the user's own random tag, drawn at their first session and kept
    server-side under ``<prefix>:user:<user id>``. So an id discloses
    nothing about its user, while one user's sessions and their index share
    one cluster slot and ``destroy_all_for`` stays one script. (Two live ids
    of one user share the tag, so whoever holds both can tell they belong
    to the same, unknown, user.) Unknown, expired and malformed ids all give
    ``None``/``False`` the same way, revealing nothing about existence.

    Lifetimes: ``ttl`` (seconds) is the idle timeout, re-armed by every use
    when ``sliding``; ``max_age`` (default 30 days; ``None`` for none) is
    the absolute timeout from creation, which no use or rotation extends.
    A user's tag key lives ``max_age`` (plus an hour) after their latest
    session was created, so it outlives all of them; without ``max_age``
    it never expires.

    Limits on what callers store (``ValueError`` naming the limit, nothing
    stored): ``max_fields`` data fields (default 256) and ``max_bytes``
    bytes of field names plus serialized values (default 1 MiB) per session.

    Ids of the previous scheme, whose tag was a hash of the user id, keep
    working until they end (at most ``max_age`` after their first use by
    this version), and ``destroy_all_for`` still finds them. See SECURITY.md.

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
