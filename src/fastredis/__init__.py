"""fastredis: a drop-in faster redis-py client, and Redis patterns done right.

Example::

    >>> import fastredis
    >>> fastredis.Redis.__mro__[1].__module__
    'redis.client'
"""

from .client import Pipeline, Redis
from .scripts import LuaScript
from .server import RedisServer

__version__ = "0.1.0"

__all__ = ["Redis", "Pipeline", "LuaScript", "RedisServer", "__version__"]
