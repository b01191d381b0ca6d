"""Kept for imports written before the split: sessions, carts and presence
now live in :mod:`fastredis.patterns.sessions`, :mod:`fastredis.patterns.cart`
and :mod:`fastredis.patterns.presence`.

Example::

    >>> from fastredis.patterns.session import Cart
    >>> Cart.__module__
    'fastredis.patterns.cart'
"""

from .cart import Cart
from .presence import Presence
from .sessions import SessionStore

__all__ = ["SessionStore", "Cart", "Presence"]
