"""Kept for imports written before the split: pub/sub now lives in
:mod:`fastredis.patterns.pubsub`, streams in :mod:`fastredis.patterns.streams`.

Example::

    >>> from fastredis.patterns.messaging import EventStream
    >>> EventStream.__module__
    'fastredis.patterns.streams'
"""

from .pubsub import Channel, Gap, Message, Subscription
from .streams import Consumer, Entry, EventStream, PendingStats

__all__ = ["Channel", "Subscription", "Message", "Gap", "EventStream", "Consumer", "Entry", "PendingStats"]
