"""Sessions, carts and presence for asyncio: :class:`SessionStore`,
:class:`Cart` and :class:`Presence`, the twins of
:mod:`fastredis.patterns.sessions`, :mod:`~fastredis.patterns.cart` and
:mod:`~fastredis.patterns.presence` (same plans, scripts and results), awaited.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         store = SessionStore(r, ttl=60)
    ...         sid = await store.create({"theme": "dark"}, user_id="alice")
    ...         return await store.get(sid), await Cart(r).add("alice", "apple", 3)
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    ({'theme': 'dark'}, 3)
"""

from __future__ import annotations

from typing import Any, Callable

from ...patterns._clients import check_async_client
from ...patterns._plan import async_operation
from ...patterns.cart import _CartPlans
from ...patterns.presence import _PresencePlans
from ...patterns.sessions import _SessionPlans

__all__ = ["SessionStore", "Cart", "Presence"]

class SessionStore(_SessionPlans):
    """Server-side sessions (see :class:`fastredis.SessionStore`), awaited.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     store = SessionStore(r, ttl=60)
        ...     sid = await store.create({"cart": [1, 2]}, user_id=42)
        ...     await store.update(sid, theme="dark")
        ...     new = await store.rotate(sid)
        ...     result = await store.get(sid), await store.get(new), await store.destroy_all_for(42)
        ...     await r.aclose()
        ...     return result
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (None, {'cart': [1, 2], 'theme': 'dark'}, 1)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    create = async_operation(_SessionPlans.plan_create)
    get = async_operation(_SessionPlans.plan_get)
    touch = async_operation(_SessionPlans.plan_touch)
    update = async_operation(_SessionPlans.plan_update)
    delete_fields = async_operation(_SessionPlans.plan_delete_fields)
    rotate = async_operation(_SessionPlans.plan_rotate)
    destroy = async_operation(_SessionPlans.plan_destroy)
    destroy_all_for = async_operation(_SessionPlans.plan_destroy_all_for)


class Cart(_CartPlans):
    """Shopping carts (see :class:`fastredis.Cart`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         cart = Cart(r)
        ...         await cart.add("anon-1", "apple", 2); await cart.add("alice", "apple", 1)
        ...         moved = await cart.merge("anon-1", "alice")
        ...         return moved, await cart.items("alice"), await cart.count("alice")
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (1, {'apple': 3}, 3)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    add = async_operation(_CartPlans.plan_add)
    set_qty = async_operation(_CartPlans.plan_set_qty)
    remove = async_operation(_CartPlans.plan_remove)
    items = async_operation(_CartPlans.plan_items)
    count = async_operation(_CartPlans.plan_count)
    clear = async_operation(_CartPlans.plan_clear)
    merge = async_operation(_CartPlans.plan_merge)


class Presence(_PresencePlans):
    """Who is online in a room (see :class:`fastredis.Presence`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         p = Presence(r, "lobby", timeout=30)
        ...         await p.heartbeat("ann", at=1000.0); await p.heartbeat("bob", at=1010.0)
        ...         return sorted(await p.online(at=1020.0)), sorted(await p.online(at=1035.0))
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (['ann', 'bob'], ['bob'])
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    heartbeat = async_operation(_PresencePlans.plan_heartbeat)
    leave = async_operation(_PresencePlans.plan_leave)
    online = async_operation(_PresencePlans.plan_online)
    count = async_operation(_PresencePlans.plan_count)
    is_online = async_operation(_PresencePlans.plan_is_online)

    def events_channel(self) -> Any:
        """The asyncio :class:`~fastredis.asyncio.patterns.pubsub.Channel` carrying join/leave events.

        Example::

            >>> import redis.asyncio
            >>> Presence(redis.asyncio.Redis(), "lobby", events=True).events_channel().channel
            'presence:lobby:events'
        """
        from .pubsub import Channel

        return Channel._raw(self.client, self.channel_name)
