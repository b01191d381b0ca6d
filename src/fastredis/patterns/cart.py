"""Shopping carts: ``Cart``.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); cart = Cart(server.client())
    >>> cart.add("alice", "apple", 3)
    3
    >>> server.stop()
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, Union

from .._text import to_bytes, to_str
from ..keys import KeySpace, max_key_part
from ..scripts import LuaScript
from ._clients import check_sync_client
from ._plan import Call, Plan, script_call, sync_operation
from .sessions import ttl_ms

__all__ = ["Cart", "DEFAULT_MAX_ITEMS"]

#: The most distinct items one cart holds.
DEFAULT_MAX_ITEMS = 1000

_CHANGE = LuaScript.load("cart_change")
_MERGE = LuaScript.load("cart_merge")

Owner = Union[str, int]
Item = Union[str, bytes, int]


def _quantity(qty: Any, cap: int, name: str = "qty") -> int:
    """An integer quantity in ``[0, cap]`` (an integral float is accepted)."""
    if isinstance(qty, bool) or not isinstance(qty, (int, float)):
        raise TypeError(f"{name} must be an integer, got {type(qty).__name__}")
    if isinstance(qty, float):
        if not qty.is_integer():
            raise ValueError(f"{name} must be a whole number, got {qty!r}")
        qty = int(qty)
    if qty < 0 or qty > cap:
        raise ValueError(f"{name} must be between 0 and {cap}, got {qty}")
    return qty


def _items(raw: Any) -> Dict[str, int]:
    if not isinstance(raw, dict):  # HGETALL without redis-py's callback: a flat list
        raw = dict(zip(raw[0::2], raw[1::2]))
    return {to_str(k): int(v) for k, v in raw.items()}


def _total(values: Any) -> int:
    return sum(int(v) for v in values)


def _nothing(_reply: Any) -> None:
    return None


def _is_one(reply: Any) -> bool:
    return int(reply) == 1


class _CartPlans:
    """The plans of :class:`Cart` (no I/O), shared with its asyncio twin."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(self, client: Any, *, prefix: str = "cart", ttl: float = 604800, max_qty: int = 10_000,
                 max_items: int = DEFAULT_MAX_ITEMS) -> None:
        if isinstance(max_qty, bool) or not isinstance(max_qty, int):
            raise TypeError(f"max_qty must be an int, got {type(max_qty).__name__}")
        if max_qty < 1 or max_qty >= 2**53:
            raise ValueError(f"max_qty must be an integer between 1 and 2**53, got {max_qty!r}")
        if isinstance(max_items, bool) or not isinstance(max_items, int):
            raise TypeError(f"max_items must be an int, got {type(max_items).__name__}")
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items!r}")
        self.max_items = max_items
        self.client = self._check_client(client, type(self).__name__)
        self.keys = KeySpace(prefix)
        self.ttl_ms = ttl_ms(ttl)
        self.max_qty = max_qty

    def key(self, owner: Owner) -> str:
        """The Redis key of ``owner``'s cart.

        Example::

            >>> import redis
            >>> Cart(redis.Redis()).key("alice")
            'cart:{alice}'
        """
        return self.keys.tagged(owner)

    def _change(self, mode: str, owner: Owner, item: Item, qty: int) -> Plan[int]:
        keys = [self.keys.tagged(owner), self.keys.tagged(owner, "ops")]
        name = to_bytes(item)
        if len(name) > max_key_part():
            raise ValueError(
                f"a cart item name is {len(name)} bytes, over the limit of {max_key_part()} bytes: "
                "shorten it, or raise the limit for the process with fastredis.keys.set_max_key_part(n)"
            )
        args = [mode, name, qty, self.max_qty, self.ttl_ms, secrets.token_hex(8), 60_000, self.max_items]
        cap, most = self.max_qty, self.max_items

        def interpret(reply: Any) -> int:
            result = int(reply)
            if result == -2:
                raise ValueError(
                    f"the cart already holds max_items={most} distinct items (nothing was added): "
                    f"remove some, or raise the limit with {type(self).__name__}(..., max_items=N)"
                )
            if result < 0:
                raise ValueError(f"quantity of {to_str(item)!r} would exceed max_qty={cap}")
            return result

        return Plan.one(script_call(_CHANGE, keys, args), interpret)

    def plan_add(self, owner: Owner, item: Item, qty: int = 1) -> Plan[int]:
        """Add ``qty`` of ``item``; returns the new quantity. ``ValueError`` past ``max_qty``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> cart.add("u", "pen"), cart.add("u", "pen", 4)
            (1, 5)
            >>> server.stop()
        """
        return self._change("add", owner, item, _quantity(qty, self.max_qty))

    def plan_set_qty(self, owner: Owner, item: Item, qty: int) -> Plan[int]:
        """Set the quantity of ``item`` (0 removes it); returns it.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> cart.set_qty("u", "pen", 7)
            7
            >>> server.stop()
        """
        return self._change("set", owner, item, _quantity(qty, self.max_qty))

    def plan_remove(self, owner: Owner, item: Item) -> Plan[bool]:
        """Remove ``item``; ``True`` if it was in the cart.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen"); cart.remove("u", "pen")
            True
            >>> server.stop()
        """
        return Plan.one(Call(("HDEL", self.keys.tagged(owner), to_bytes(item))), _is_one)

    def plan_items(self, owner: Owner) -> Plan[Dict[str, int]]:
        """Every item and its quantity.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen", 2); cart.items("u")
            {'pen': 2}
            >>> server.stop()
        """
        return Plan.one(Call(("HGETALL", self.keys.tagged(owner))), _items)

    def plan_count(self, owner: Owner) -> Plan[int]:
        """Total number of units in the cart (the sum of quantities).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen", 2); _ = cart.add("u", "ink"); cart.count("u")
            3
            >>> server.stop()
        """
        return Plan.one(Call(("HVALS", self.keys.tagged(owner))), _total)

    def plan_clear(self, owner: Owner) -> Plan[None]:
        """Empty the cart.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("u", "pen"); cart.clear("u"); cart.items("u")
            {}
            >>> server.stop()
        """
        return Plan.one(Call(("DEL", self.keys.tagged(owner))), _nothing)

    def plan_merge(self, from_owner: Owner, to_owner: Owner) -> Plan[int]:
        """Atomically add ``from_owner``'s cart into ``to_owner``'s and delete the source.

        Sums above ``max_qty`` are clamped to ``max_qty``, and items that would
        take the target past ``max_items`` are dropped (a login must not
        fail). Returns the number of distinct items moved.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cart = Cart(server.client())
            >>> _ = cart.add("anon", "pen"); cart.merge("anon", "alice")
            1
            >>> server.stop()
        """
        if self.keys.tagged(from_owner) == self.keys.tagged(to_owner):
            return Plan.done(0)
        keys = [self.keys.tagged(from_owner), self.keys.tagged(to_owner)]
        return Plan.one(script_call(_MERGE, keys, [self.max_qty, self.ttl_ms, self.max_items]), int)


class Cart(_CartPlans):
    """Shopping carts: a hash of item -> integer quantity per owner, with a TTL.

    Quantities are integers in ``[0, max_qty]``: another type raises
    ``TypeError``, a value outside the range ``ValueError``. A cart holds at
    most ``max_items`` distinct items (default 1000): adding one more raises
    ``ValueError`` and changes nothing. ``add`` carries
    an operation id, so a replay by the client's retry policy is not counted
    twice. ``merge`` touches two owners' carts, which live in different
    cluster slots: on Redis Cluster it needs both owners in one slot (it
    raises CROSSSLOT otherwise).

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

    add = sync_operation(_CartPlans.plan_add)
    set_qty = sync_operation(_CartPlans.plan_set_qty)
    remove = sync_operation(_CartPlans.plan_remove)
    items = sync_operation(_CartPlans.plan_items)
    count = sync_operation(_CartPlans.plan_count)
    clear = sync_operation(_CartPlans.plan_clear)
    merge = sync_operation(_CartPlans.plan_merge)
