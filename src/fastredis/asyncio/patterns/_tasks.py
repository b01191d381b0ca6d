"""Ending the tasks an asyncio pattern owns.

A task is ended on request (``aclose()``) or when its owner is garbage
collected; either may happen while the task is inside redis-py code that
turns a cancellation racing a timeout into a ``TimeoutError`` and retries
(a connect under ``socket_connect_timeout``), so a single ``cancel()`` is not
enough: :func:`cancel_and_wait` cancels until the tasks are done.

Example::

    >>> import asyncio
    >>> async def main():
    ...     task = asyncio.ensure_future(asyncio.sleep(60))
    ...     await cancel_and_wait([task])
    ...     return task.cancelled()
    >>> asyncio.run(main())
    True
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Iterable, Optional

__all__ = ["cancel_and_wait", "end_with", "cancel_soon"]


async def cancel_and_wait(tasks: Iterable[Optional["asyncio.Future[Any]"]], timeout: float = 10.0) -> None:
    """Cancel ``tasks`` (again, every 50 ms, while any is running) and wait for them.

    Example::

        >>> asyncio.run(cancel_and_wait([None]))
    """
    pending = {t for t in tasks if t is not None and not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending and loop.time() < deadline:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    for t in pending:  # pragma: no cover - a task refusing cancellation for 10 s
        t.cancel()


def cancel_soon(task: "asyncio.Future[Any]") -> None:
    """Cancel ``task`` on its own loop, from any thread (a finalizer may run anywhere).

    Example::

        >>> async def main():
        ...     task = asyncio.ensure_future(asyncio.sleep(60))
        ...     cancel_soon(task); await asyncio.wait([task], timeout=5)
        ...     return task.cancelled()
        >>> asyncio.run(main())
        True
    """
    if not task.done():
        try:
            task.get_loop().call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop is closed: nothing runs any more
            pass


def end_with(owner: Any, task: "asyncio.Future[Any]") -> None:
    """Cancel ``task`` when ``owner`` is garbage collected (``task`` must not
    reference ``owner``, or it never is).

    Example::

        >>> class Owner: pass
        >>> async def main():
        ...     owner = Owner(); task = asyncio.ensure_future(asyncio.sleep(60))
        ...     end_with(owner, task); del owner; await asyncio.wait([task], timeout=5)
        ...     return task.cancelled()
        >>> asyncio.run(main())
        True
    """
    weakref.finalize(owner, cancel_soon, task)
