"""Plans: what a pattern operation sends and how it reads the replies, with no I/O.

Every pattern operation is decided by plain code (h11 / wsproto style):

- a :class:`Plan` is one round trip: the :class:`Call` objects to send
  together (one command, a pipeline, or a transaction) and ``interpret``,
  which turns the replies into the operation's result;
- an operation of several steps (a lock's wait, a consumer's claim loop, the
  cache's lease) is a generator: it yields a Plan (and gets back the
  interpreted result, or the error raised into it) or an effect
  (:class:`Sleep`, :class:`Invoke`, :class:`Subscribe`, :class:`Listen`,
  :class:`FanOut`) and returns the result.

The shells run them: :func:`fastredis.scripts.run` on a sync client,
:func:`fastredis.scripts.arun` on an asyncio client. Threads versus tasks,
``time.sleep`` versus ``asyncio.sleep``, live only there.

Example::

    >>> plan = Plan.one(Call(("INCRBY", "n", 2)), int)
    >>> plan.calls[0].args, plan.interpret(b"7")
    (('INCRBY', 'n', 2), 7)
    >>> def twice():                       # a two-step operation
    ...     first = yield plan
    ...     yield Sleep(0.01)
    ...     second = yield plan
    ...     return first, second
    >>> steps = twice(); steps.send(None) is plan
    True
    >>> type(steps.send(7)).__name__, steps.send(None) is plan
    ('Sleep', True)
"""

from __future__ import annotations

import functools
import inspect
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Generic,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from typing import Concatenate, ParamSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..scripts import LuaScript

P = ParamSpec("P")

__all__ = ["Call", "Plan", "Steps", "Operation", "Sleep", "Invoke", "Subscribe", "Listen", "FanOut",
           "sync_operation", "async_operation", "script_call"]

T = TypeVar("T")
_NO_OPTIONS: Mapping[str, Any] = {}


class Call(NamedTuple):
    """One command: its arguments (as ``execute_command`` takes them), the
    :class:`~fastredis.scripts.LuaScript` when it is an ``EVALSHA`` of one
    (so a NOSCRIPT reply can be repaired), and ``execute_command`` options.

    Example::

        >>> Call(("GET", "k")).script is None
        True
    """

    args: Tuple[Any, ...]
    script: Optional["LuaScript"] = None
    options: Mapping[str, Any] = _NO_OPTIONS


def script_call(script: "LuaScript", keys: Sequence[Any] = (), args: Sequence[Any] = (), **options: Any) -> Call:
    """The :class:`Call` that runs ``script`` with ``keys`` and ``args``.

    Example::

        >>> from fastredis.scripts import LuaScript
        >>> s = LuaScript("return 1", name="one")
        >>> script_call(s, ["k"], [2]).args == ("EVALSHA", s.sha, 1, "k", 2)
        True
    """
    return Call(script.command(keys, args), script, options or _NO_OPTIONS)


class Plan(Generic[T]):
    """One round trip: ``calls`` sent together, ``interpret`` reading the replies.

    ``batch=False`` (one call): ``interpret(reply)``; ``batch=True``:
    ``interpret([reply, ...])``, one reply per call in order (an empty plan
    sends nothing and gets ``[]``). ``transaction=True`` wraps the calls in
    MULTI/EXEC. With ``raise_on_error=False`` error replies are handed to
    ``interpret`` in their slots instead of being raised.

    Example::

        >>> p = Plan([Call(("GET", "a")), Call(("GET", "b"))], lambda replies: replies, batch=True)
        >>> len(p.calls), p.interpret([1, 2])
        (2, [1, 2])
    """

    __slots__ = ("calls", "interpret", "batch", "transaction", "raise_on_error")

    def __init__(
        self,
        calls: Sequence[Call],
        interpret: Callable[[Any], T],
        *,
        batch: bool = False,
        transaction: bool = False,
        raise_on_error: bool = True,
    ) -> None:
        if not batch and len(calls) != 1:
            raise ValueError("a plan of other than one call needs batch=True")
        self.calls = calls
        self.interpret = interpret
        self.batch = batch
        self.transaction = transaction
        self.raise_on_error = raise_on_error

    @classmethod
    def one(cls, call: Call, interpret: Callable[[Any], T]) -> "Plan[T]":
        """A plan of one call.

        Example::

            >>> Plan.one(Call(("PING",)), bool).batch
            False
        """
        return cls((call,), interpret)

    @classmethod
    def done(cls, value: T) -> "Plan[T]":
        """A plan that sends nothing and results in ``value``.

        Example::

            >>> Plan.done(0).calls, Plan.done(0).interpret([])
            ((), 0)
        """
        return cls((), lambda _replies: value, batch=True)

    def __repr__(self) -> str:
        shown = ", ".join(str(c.args[0]) for c in self.calls[:3])
        more = f", +{len(self.calls) - 3}" if len(self.calls) > 3 else ""
        return f"<Plan [{shown}{more}]{' MULTI' if self.transaction else ''}>"


def identity(value: T) -> T:
    """The reply as it came (an ``interpret`` for plans whose reply is the result)."""
    return value


class Sleep(NamedTuple):
    """Effect: pause ``seconds`` (``time.sleep`` / ``asyncio.sleep``).

    Example::

        >>> Sleep(0.5).seconds
        0.5
    """

    seconds: float


class Invoke(NamedTuple):
    """Effect: call user code, ``fn(*args)``; an asyncio shell awaits the
    result when it is awaitable (an ``async def`` loader or writer).

    Example::

        >>> Invoke(len, ("abc",)).fn("xy")
        2
    """

    fn: Callable[..., Any]
    args: Tuple[Any, ...] = ()


class Subscribe(NamedTuple):
    """Effect: (re)subscribe the operation's private pub/sub connection to
    ``channel`` and wait up to ``timeout`` s for the confirmation. Sends back
    True once confirmed, False when the connection failed or the time ran
    out. The shell closes the connection when the operation ends.

    Example::

        >>> Subscribe("lock:{x}:released", 1.0).channel
        'lock:{x}:released'
    """

    channel: str
    timeout: Optional[float]


class Listen(NamedTuple):
    """Effect: wait up to ``timeout`` s for a message on the subscription.
    Sends back True (a message came), False (timeout) or None (the
    connection was lost, or the client cannot subscribe: subscribe again).

    Example::

        >>> Listen(0.25).timeout
        0.25
    """

    timeout: float


class FanOut(NamedTuple):
    """Effect: run ``plan`` on every node of a multi-node pattern at once
    (Redlock), each call bounded by the nodes' timeout. Sends back the number
    of nodes whose result was truthy; with ``quorum`` the shell may stop
    counting once that many succeeded or can no longer succeed.

    Example::

        >>> FanOut(Plan.done(True), 2).quorum
        2
    """

    plan: Plan[Any]
    quorum: Optional[int] = None


#: A multi-step operation: yields plans and effects, returns the result.
Steps = Generator[Any, Any, T]
#: What a shell runs: one round trip or several steps.
Operation = Union[Plan[T], Steps[T]]


def sync_operation(plan: Callable[Concatenate[Any, P], Operation[T]]) -> Callable[Concatenate[Any, P], T]:
    """A sync shell method running the operation that ``plan`` builds on ``self.client``.

    The method keeps the plan's name, signature and docstring; its logic is
    the plan's, shared with the asyncio shell (:func:`async_operation`).

    Example::

        >>> class Core:
        ...     def plan_double(self, n: int) -> Plan[int]:
        ...         "Twice n."
        ...         return Plan.one(Call(("ECHO", n)), lambda reply: 2 * int(reply))
        >>> class Shell(Core):
        ...     double = sync_operation(Core.plan_double)
        >>> Shell.double.__name__, Shell.double.__doc__
        ('double', 'Twice n.')
    """
    from ..scripts import run

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return run(self.client, plan(self, *args, **kwargs))

    return _named(method, plan)  # type: ignore[return-value]


def async_operation(plan: Callable[Concatenate[Any, P], Operation[T]]) -> Callable[Concatenate[Any, P], Awaitable[T]]:
    """The asyncio twin of :func:`sync_operation`: an ``async def`` method
    awaiting the same operation on ``self.client``.

    Example::

        >>> import inspect
        >>> class Core:
        ...     def plan_ping(self) -> Plan[bool]:
        ...         "Ping."
        ...         return Plan.one(Call(("PING",)), bool)
        >>> class Shell(Core):
        ...     ping = async_operation(Core.plan_ping)
        >>> inspect.iscoroutinefunction(Shell.ping), Shell.ping.__name__
        (True, 'ping')
    """
    from ..scripts import arun

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await arun(self.client, plan(self, *args, **kwargs))

    return _named(method, plan)  # type: ignore[return-value]


def _named(method: Callable[..., Any], plan: Callable[..., Any]) -> Callable[..., Any]:
    functools.update_wrapper(method, plan)
    name = plan.__name__
    if name.startswith("plan_"):
        name = name[len("plan_"):]
    method.__name__ = name
    method.__qualname__ = plan.__qualname__.rsplit(".", 1)[0] + "." + name if "." in plan.__qualname__ else name
    # help() and inspect.signature show the plan's parameters and the
    # operation's result (Plan[Decision] -> Decision); the docstring's
    # examples still run once, with the plan's module.
    signature = inspect.signature(plan)
    result = signature.return_annotation
    if isinstance(result, str):
        for wrapper in ("Plan[", "Steps[", "Operation["):
            if result.startswith(wrapper) and result.endswith("]"):
                result = result[len(wrapper):-1]
    method.__signature__ = signature.replace(return_annotation=result)  # type: ignore[attr-defined]
    del method.__wrapped__  # type: ignore[attr-defined]
    return method


def drive_value(steps: Steps[T], send: Callable[[Any], Any], fail: Callable[[BaseException], Any]) -> T:
    """Advance ``steps`` by hand (tests of the logic): ``send`` answers each
    yielded item; an exception it raises is thrown into the steps.

    Example::

        >>> def op():
        ...     x = yield Sleep(1)
        ...     return x + 1
        >>> drive_value(op(), lambda item: 41, lambda e: None)
        42
    """
    try:
        item = next(steps)
        while True:
            try:
                answer = send(item)
            except BaseException as error:  # noqa: B902 - handed to the steps
                fail(error)
                item = steps.throw(error)
                continue
            item = steps.send(answer)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]

