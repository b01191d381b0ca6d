"""Who is online in a room: ``Presence``.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> Presence(server.client(), "lobby").heartbeat("alice")
    True
    >>> server.stop()
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Set, Union

from .._text import check_finite, to_bytes, to_str
from ..keys import KeySpace
from ..scripts import LuaScript
from ._clients import check_sync_client
from ._plan import Plan, script_call, sync_operation

__all__ = ["Presence"]

_UPDATE = LuaScript.load("presence_update")
_WITH_USER = ("heartbeat", "leave", "member")

User = Union[str, bytes, int]


def _is_one(reply: Any) -> bool:
    return int(reply) == 1


def _users(reply: Any) -> Set[str]:
    return {to_str(m) for m in reply}


class _PresencePlans:
    """The plans of :class:`Presence` (no I/O), shared with its asyncio twin."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(self, client: Any, room: Union[str, int], *, timeout: float = 30, prefix: str = "presence", events: bool = False) -> None:
        if not isinstance(events, bool):
            raise TypeError(f"events must be True or False, got {type(events).__name__}")
        self.client = self._check_client(client, type(self).__name__)
        self.room = room
        self.keys = KeySpace(prefix)
        self.key = self.keys.key(room)
        self.timeout = check_finite(timeout, "timeout")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.events = events
        self.channel_name = self.keys.key(room, "events")

    def _call(self, mode: str, user: Any, at: Optional[float], interpret: Callable[[Any], Any]) -> Plan[Any]:
        now = "" if at is None else repr(check_finite(at, "at"))
        member = to_bytes(user) if mode in _WITH_USER else b""
        if mode in _WITH_USER and not member:
            raise ValueError("user must not be empty")
        chan = self.channel_name if self.events else ""
        args = [now, repr(self.timeout), chan, mode, member, to_bytes(self.room)]
        return Plan.one(script_call(_UPDATE, [self.key], args), interpret)

    def plan_heartbeat(self, user: User, *, at: Optional[float] = None) -> Plan[bool]:
        """Mark ``user`` online now (or at ``at``); ``True`` if it just joined.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> p.heartbeat("ann"), p.heartbeat("ann")
            (True, False)
            >>> server.stop()
        """
        return self._call("heartbeat", user, at, _is_one)

    def plan_leave(self, user: User, *, at: Optional[float] = None) -> Plan[bool]:
        """Mark ``user`` offline; ``True`` if it was online.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> _ = p.heartbeat("ann"); p.leave("ann"), p.is_online("ann")
            (True, False)
            >>> server.stop()
        """
        return self._call("leave", user, at, _is_one)

    def plan_online(self, *, at: Optional[float] = None) -> Plan[Set[str]]:
        """The users online now (or at ``at``).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> _ = p.heartbeat("ann"); p.online()
            {'ann'}
            >>> server.stop()
        """
        return self._call("list", "", at, _users)

    def plan_count(self, *, at: Optional[float] = None) -> Plan[int]:
        """How many users are online.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> _ = p.heartbeat("ann"); p.count()
            1
            >>> server.stop()
        """
        return self._call("count", "", at, int)

    def plan_is_online(self, user: User, *, at: Optional[float] = None) -> Plan[bool]:
        """Whether ``user`` is online.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); p = Presence(server.client(), "r")
            >>> p.is_online("ann")
            False
            >>> server.stop()
        """
        return self._call("member", user, at, _is_one)


class Presence(_PresencePlans):
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

    heartbeat = sync_operation(_PresencePlans.plan_heartbeat)
    leave = sync_operation(_PresencePlans.plan_leave)
    online = sync_operation(_PresencePlans.plan_online)
    count = sync_operation(_PresencePlans.plan_count)
    is_online = sync_operation(_PresencePlans.plan_is_online)

    def events_channel(self) -> Any:
        """The :class:`~fastredis.patterns.pubsub.Channel` carrying join/leave events.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> Presence(server.client(), "lobby", events=True).events_channel().channel
            'presence:lobby:events'
            >>> server.stop()
        """
        from .pubsub import Channel

        return Channel._raw(self.client, self.channel_name)
