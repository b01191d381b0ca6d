"""``fastredis.asyncio.RedisCluster``: redis-py's asyncio cluster client with
the core's reply reader on every node connection and fast pipelines across
the cluster, under the write-retry policy.

- :class:`RedisCluster` subclasses ``redis.asyncio.cluster.RedisCluster``:
  same constructor, ``from_url``, commands, errors and callbacks, plus
  ``retry_writes``. Node connections read through
  :class:`~fastredis.asyncio.FastAsyncParser`; one-key commands skip
  redis-py's per-command policy lookup and, from concurrent tasks, share one
  multiplexed connection per node (:class:`~fastredis.asyncio.mux.Multiplexer`);
  a write that may have reached a node is not re-sent after a connection
  error unless ``retry_writes=True``.
- :class:`ClusterPipeline` subclasses ``redis.asyncio.cluster.ClusterPipeline``.
  ``execute()`` routes every command to its slot's node (the sync
  :mod:`fastredis.cluster` routing), encodes each node's commands into one
  buffer with the core, writes to every node before reading any, and reads
  all nodes concurrently. Only redirected commands (MOVED, ASK, TRYAGAIN)
  are re-sent, grouped per node in one round trip each, after one slot-map
  update per batch of redirects. Transactions are redis-py's, under the
  write-retry policy.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisCluster as TestCluster
    >>> async def main(port):
    ...     async with fastredis.asyncio.RedisCluster(host="127.0.0.1", port=port) as rc:
    ...         p = rc.pipeline()
    ...         for i in range(4):
    ...             _ = p.set(f"user:{i}", i)
    ...         return await p.get("user:3").incrby("visits", 0).execute()
    >>> with TestCluster(3) as cluster:
    ...     asyncio.run(main(cluster.ports[0]))
    [True, True, True, True, b'3', 0]
"""

from __future__ import annotations

import asyncio
import types
from typing import Any, Dict, List, Optional, Sequence, Tuple

import redis.asyncio.client as _aclient
import redis.asyncio.cluster as _acluster
from redis._parsers.commands import CommandPolicies, RequestPolicy, ResponsePolicy
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
    WatchError,
)
from redis.utils import safe_str, truncate_text

from .. import _aioproto, _redispy, _resp
from .. import cluster as _sync
from .._redispy import EMPTY_RESPONSE, NEVER_DECODE
from ..exceptions import OutcomeUnknownError, ProtocolError
from ..pipeline import HOT_COMMANDS
from ..retry_policy import NotWritten, _lost, is_idempotent, outcome_unknown
from .client import is_multiplexed
from .connection import FastAsyncParser, aread_into, closed_by_server, install_fast_async_parser, refused_by_server
from .mux import Multiplexer
from .pipeline import aapply_callbacks

__all__ = ["RedisCluster", "ClusterPipeline", "cluster_class_for"]

_PARENT: Any = _acluster.ClusterPipeline
_NO_OPTIONS: Any = _sync._NO_OPTIONS
_PENDING: Any = _sync._PENDING
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, OSError, asyncio.TimeoutError)
_REDIRECTS = (MovedError, AskError, TryAgainError)
_REDO: Any = object()  # the single command did not run: redis-py's loop sends it
# Options only redis-py's node reads honour: such a pipeline runs on its code.
_REDIS_ONLY_OPTIONS = (NEVER_DECODE, EMPTY_RESPONSE)
# A stand-in node for the commands whose node only redis-py's (awaitable)
# policy lookup knows: routed after the core has placed all the others.
_DEFERRED: Any = types.SimpleNamespace(name="\x00deferred")
#: Whether the parts of redis.asyncio.cluster this module drives are there.
FAST_PATH = _redispy.ASYNC_FAST_PATH and all(
    hasattr(cls, name)
    for cls, name in (
        (_acluster.ClusterNode, "acquire_connection"),
        (_acluster.ClusterNode, "disconnect_if_needed"),
        (_acluster.ClusterNode, "release"),
        (_acluster.NodesManager, "move_slot"),
        (_acluster.RedisCluster, "_determine_nodes"),
        (_acluster.RedisCluster, "_execute_command"),
        (_acluster, "PipelineCommand"),
        (_acluster, "TransactionStrategy"),
    )
)


# -- the client ---------------------------------------------------------------
class RedisCluster(_acluster.RedisCluster):
    """``redis.asyncio.cluster.RedisCluster`` with the core's reader on every
    node connection and fast pipelines.

    Same constructor and ``from_url`` as redis-py, plus ``retry_writes``
    (default False): whether a write that may have reached a node is re-sent
    after a connection error, as redis-py does; and ``multiplexed`` (default
    True): whether one-key commands from concurrent tasks share one
    connection per node (written together once per event-loop iteration)
    instead of taking a pooled connection each, as redis-py's do (at most
    ``max_connections``, 100 by default, per node).

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisCluster as TestCluster
        >>> async def main(url):
        ...     rc = fastredis.asyncio.RedisCluster.from_url(url)
        ...     await rc.set("{user:1}:name", "ann")
        ...     try:
        ...         return await rc.get("{user:1}:name"), len(rc.get_primaries())
        ...     finally:
        ...         await rc.aclose()
        >>> with TestCluster(3) as cluster:
        ...     asyncio.run(main(f"redis://{cluster.host}:{cluster.ports[0]}"))
        (b'ann', 3)
    """

    #: The class of :meth:`pipeline`'s pipelines.
    pipeline_class: Any = None  # ClusterPipeline, set below
    #: The reply parser of the node connections.
    parser_class: Any = FastAsyncParser
    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp

    #: The ``MuxProtocol`` core module (compiled ``_aioproto_c`` or its twin).
    mux_core: Any = _aioproto

    def __init__(self, *args: Any, retry_writes: bool = False, multiplexed: bool = True, **kwargs: Any) -> None:
        if not isinstance(retry_writes, bool):
            raise TypeError(f"retry_writes must be True or False, got {type(retry_writes).__name__}")
        if not isinstance(multiplexed, bool):
            raise TypeError(f"multiplexed must be True or False, got {type(multiplexed).__name__}")
        self.retry_writes = retry_writes
        #: Whether one-key commands from many tasks share one connection per
        #: node (written together, once per loop iteration) instead of taking
        #: a pooled connection each.
        self.multiplexed = multiplexed
        self._muxes: Dict[str, Tuple[Any, Multiplexer]] = {}
        super().__init__(*args, **kwargs)
        if FAST_PATH:
            _use_parser(self, self.parser_class)

    async def aclose(self) -> None:
        """Close the multiplexed connections, then every connection (redis-py's ``aclose``)."""
        muxes, self._muxes = self._muxes, {}
        for _, mux in muxes.values():
            await mux.aclose()
        await super().aclose()

    def _mux_of(self, node: Any) -> Multiplexer:
        entry = self._muxes.get(node.name)
        if entry is None or entry[0] is not node:  # a new node object for that address
            if entry is not None:
                entry[1].close_sync()
            entry = self._muxes[node.name] = (node, Multiplexer(_NodePool(node), 1, self.mux_core, self.core))
        return entry[1]

    def pipeline(self, transaction: Optional[Any] = None, shard_hint: Optional[Any] = None) -> "ClusterPipeline":
        """A :class:`ClusterPipeline` (redis-py semantics, fast execute);
        ``transaction=True`` is redis-py's one-slot MULTI/EXEC."""
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return self.pipeline_class(self, transaction)  # type: ignore[no-any-return]

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """As redis-py's, with a shortcut for one-key commands (str/bytes
        key, no ``target_nodes``, primaries only): the slot's node is looked
        up directly. Redirects stay redis-py's; a failure redis-py would
        retry takes its full path."""
        node = self._shortcut_node(args, kwargs)
        if node is not None:
            try:
                # ``keys`` only serves client-side caching, which cluster nodes do not do.
                if (not kwargs or kwargs.keys() == {"keys"}) and not _redispy.async_observability_enabled():
                    reply = await self._direct(node, args)
                    if reply is not _REDO:
                        return reply
                return await self._execute_command(node, *args, **kwargs)
            except OutcomeUnknownError:
                raise
            except Exception as e:
                if type(e) not in self.ERRORS_ALLOW_RETRY or self.retry.get_retries() <= 0:
                    raise
                # redis-py's loop retries these after its topology refresh.
        return await super().execute_command(*args, **kwargs)

    def _shortcut_node(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Any:
        if (
            len(args) < 2
            or _sync._KEY_SPECS.get(args[0]) != _sync._ONE_KEY
            or self._initialize
            or "target_nodes" in kwargs
            or self.read_from_replicas
            or self.load_balancing_strategy
            or args[0] in self.result_callbacks
            or not FAST_PATH
        ):
            return None
        enc = self.encoder
        slot = _sync._cluster.slot_of(args[1], enc.encoding, enc.encoding_errors)
        nodes = self.nodes_manager.slots_cache.get(slot) if slot >= 0 else None
        return nodes[0] if nodes else None

    async def _direct(self, node: Any, args: Sequence[Any]) -> Any:
        """One command on ``node``'s connection, written by the core's
        encoder and read by its reader, when nothing needs redis-py's
        per-node loop: on the node's multiplexed connection when the
        command may share one, else on a pooled one. ``_REDO``: it did not
        run (a redirect, a refusal, a failure before the write, or a lost
        idempotent command): redis-py's loop takes it from there. A lost
        write raises outcome-unknown."""
        if self.multiplexed and is_multiplexed(args):
            mux = self._mux_of(node)
            if mux.enabled:
                try:
                    reply = await mux.connection().proto.send(args)
                except (NotWritten, *_CONNECTION_ERRORS) as error:
                    if isinstance(error, NotWritten):
                        return _REDO
                    if not (self.retry_writes or is_idempotent(args)) and _lost(error):
                        raise outcome_unknown(_sync._as_redis_error(error), [args]) from error
                    return _REDO
                return self._direct_reply(node, args, reply)
        conn = node.acquire_connection()
        written = False
        out: List[Any] = []
        try:
            await _ready(node, conn)
            enc = conn.encoder
            written = True
            await _send(conn, self.core.pack_command(args, enc.encoding, enc.encoding_errors))
            await aread_into(conn, out, 1)
        except _CONNECTION_ERRORS as error:
            if written and not (self.retry_writes or is_idempotent(args)) and _lost(error):
                raise outcome_unknown(_sync._as_redis_error(error), [args]) from error
            return _REDO
        finally:
            if written and not out:
                await conn.disconnect(nowait=True)  # its state is unknown
            node.release(conn)
        return self._direct_reply(node, args, out[0])

    @staticmethod
    def _direct_reply(node: Any, args: Sequence[Any], reply: Any) -> Any:
        if isinstance(reply, Exception):
            if isinstance(reply, _sync._REFUSED) or refused_by_server(reply):
                return _REDO
            reply.connection = node  # type: ignore[attr-defined]  # as redis-py's loop marks it
            raise reply
        callback = node.response_callbacks.get(args[0])
        return callback(reply) if callback is not None else reply

    async def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        """redis-py's per-node send (redirects, topology refresh) under the
        write-retry policy: a connection error after the command may have
        been written raises an outcome-unknown error instead of being
        retried, unless the command is idempotent or ``retry_writes``."""
        guarded = not (self.retry_writes or is_idempotent(args))
        if guarded:
            await _drop_closed(target_node)  # else their failure would look like a lost write
        try:
            return await super()._execute_command(target_node, *args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            if not guarded or isinstance(error, OutcomeUnknownError) or not _lost(error) or _connect_failure(error):
                raise
            raise outcome_unknown(error, [args]) from error


def _use_parser(client: Any, parser_class: Any) -> None:
    """Give the node connections of ``client`` (now and after each topology
    refresh: the nodes manager builds nodes from the same kwargs)
    ``parser_class``, unless the user chose a connection class or parser."""
    kw = client.connection_kwargs
    if install_fast_async_parser(types.SimpleNamespace(connection_kwargs=kw, connection_class=kw.get("connection_class")), parser_class):
        manager = client.nodes_manager
        for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values(), *client.startup_nodes]:
            install_fast_async_parser(node, parser_class)


def _connect_failure(error: BaseException) -> bool:
    """Whether redis-py raised ``error`` while opening the connection (so
    nothing was written). Its asyncio connection says so only in the text."""
    text = str(error.args[0]) if error.args else ""
    return " connecting to " in text or text.startswith("Error connecting to") or text == "Timeout connecting to server"


async def _drop_closed(node: Any) -> None:
    """Disconnect the idle connections of ``node`` that the server closed
    (CLIENT KILL, timeout, restart): they reconnect when next used, and a
    failure then comes before any byte of the command."""
    for conn in tuple(node._free):
        if closed_by_server(conn):
            await conn.disconnect(nowait=True)


class _NodePool:
    """A cluster node's connections, shaped as the pool a :class:`Multiplexer` takes."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.connection_kwargs = node.connection_kwargs

    async def get_connection(self) -> Any:
        node = self.node
        conn = node.acquire_connection()
        try:
            await _ready(node, conn)
        except BaseException:
            await conn.disconnect(nowait=True)
            node.release(conn)
            raise
        return conn

    async def release(self, conn: Any) -> None:
        self.node.release(conn)

    def make_connection(self) -> Any:
        return self.node.connection_class(**self.connection_kwargs)


async def _send(conn: Any, data: bytes) -> None:
    """Write ``data``: straight into the transport when the socket takes it
    all at once (no write timeout task to start); else redis-py's write,
    which waits for the socket under ``socket_timeout``."""
    writer = getattr(conn, "_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is None or transport.is_closing():
        await conn.send_packed_command([data], check_health=False)
        return
    writer.write(data)
    if transport.get_write_buffer_size():
        await conn.send_packed_command([], check_health=False)  # drain the rest


async def _ready(node: Any, conn: Any) -> None:
    """Make ``conn`` ready to write: redis-py's lazy reconnect, a reconnect
    if the server closed it while idle, the health check."""
    await node.disconnect_if_needed(conn)
    if closed_by_server(conn):
        await conn.disconnect(nowait=True)
    if not conn.is_connected:
        await conn.connect()
    if conn.health_check_interval:
        await conn.check_health()


# -- the pipeline --------------------------------------------------------------
class ClusterPipeline(_PARENT):  # type: ignore[misc,valid-type]
    """A redis-py asyncio ``ClusterPipeline`` whose ``execute()`` runs on the core.

    Results, callbacks, errors (``Command # N (...) of pipeline caused
    error: ...``) and ``raise_on_error=False`` are redis-py's. Differences,
    all on the side of safety and speed:

    - every node is written before any is read, and all are read concurrently;
    - MOVED/ASK/TRYAGAIN (and CLUSTERDOWN, LOADING) replies are re-sent
      grouped per node, one round trip per node and round; a command that
      has its reply is never re-sent;
    - after a connection error only commands that never reached the node,
      or are idempotent, are re-sent; the others get an outcome-unknown
      error, in place with ``raise_on_error=False``, else raised naming them
      all (``retry_writes=True`` re-sends them, as redis-py does);
    - :meth:`batch` stages many commands at once, across slots.

    ``pipeline(transaction=True)`` is redis-py's cluster transaction (every
    key in one slot, ``CrossSlotTransactionError`` otherwise), re-sent only
    when it cannot have run: a MULTI/EXEC lost on the way raises an
    outcome-unknown error naming its commands, and a connection lost while
    keys are watched raises ``WatchError`` (redis-py would run the
    transaction unwatched on a new connection).

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisCluster as TestCluster
        >>> async def main(port):
        ...     async with fastredis.asyncio.RedisCluster(host="127.0.0.1", port=port) as rc:
        ...         p = rc.pipeline().batch("SET", ["a", "b", "c"], [1, 2, 3])
        ...         return await p.batch("GET", ["c", "a"]).hgetall("h").execute()
        >>> with TestCluster(3) as cluster:
        ...     asyncio.run(main(cluster.ports[0]))
        [True, True, True, b'3', b'1', {}]
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp
    #: Re-send writes after a connection error, as redis-py does.
    retry_writes: bool = False
    _tx = False
    _has_batch = False
    _redis_only = False  # a command only redis-py's path handles is staged

    def __init__(self, client: Any, transaction: Optional[bool] = None) -> None:
        super().__init__(client, transaction)
        self._stack: List[Any] = []
        self._batches: List[Any] = []
        self._batch_slots: Optional[Dict[Any, Any]] = None
        self._tx = isinstance(self._execution_strategy, _acluster.TransactionStrategy)
        if self._tx:
            self._execution_strategy = _PolicyTransactionStrategy(self)
        self.retry_writes = bool(getattr(client, "retry_writes", False))

    # -- the stack ---------------------------------------------------------
    @property
    def command_stack(self) -> List[Any]:
        """The staged commands as ``(args, options)`` (batch rows share one entry)."""
        if self._tx:
            return [(c.args, c.kwargs) for c in self._execution_strategy._command_queue]
        return self._stack

    def __len__(self) -> int:
        return super().__len__() if self._tx else len(self._stack)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._tx:
            return self._execution_strategy.execute_command(*args, **kwargs)
        if kwargs:
            kwargs.pop("keys", None)  # only for client-side caching; popped before callbacks
            if any(k in kwargs for k in _REDIS_ONLY_OPTIONS):
                self._redis_only = True
        name = args[0] if args else ""
        if isinstance(name, str) and name.upper().startswith("HIMPORT"):
            self._redis_only = True
        self._stack.append((args, kwargs or _NO_OPTIONS))
        return self

    #: Stage ``len(column)`` commands at once; rows may map to any slots (as
    #: :meth:`fastredis.cluster.ClusterPipeline.batch`; see the class example).
    batch: Any = _sync.ClusterPipeline.batch

    def mset_nonatomic(self, mapping: Any) -> Any:
        """One MSET per slot, as redis-py's."""
        if self._tx:
            return super().mset_nonatomic(mapping)
        encoder = self.cluster_client.encoder
        by_slot: Dict[int, List[Any]] = {}
        for pair in mapping.items():
            by_slot.setdefault(_sync.key_slot(encoder.encode(pair[0])), []).extend(pair)
        for pairs in by_slot.values():
            self.execute_command("MSET", *pairs)
        return self

    async def unlink(self, *names: Any) -> Any:  # type: ignore[override]
        """``UNLINK``: one key per call outside a transaction, as in redis-py."""
        if self._tx:
            return await super().unlink(*names)
        if len(names) != 1:
            raise RedisClusterException("unlinking multiple keys is not implemented in pipeline command")
        return self.execute_command("UNLINK", names[0])

    async def reset(self) -> None:
        """Empty the pipeline (and end a transaction's WATCH)."""
        self._stack = []
        self._has_batch = False
        self._batches = []
        self._batch_slots = None
        self._redis_only = False
        await super().reset()

    # -- execution -----------------------------------------------------------
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> List[Any]:
        """Execute every staged command; see the class docstring."""
        if self._tx:
            return await super().execute(raise_on_error, allow_redirections)  # type: ignore[no-any-return]
        stack = self._stack
        try:
            if not stack:
                return []
            if self._redis_only or not FAST_PATH:
                return await self._execute_redis_path(stack, raise_on_error, allow_redirections)
            return await self._execute_fast(stack, raise_on_error, allow_redirections)
        finally:
            await self.reset()

    async def _execute_redis_path(self, stack: List[Any], raise_on_error: bool, allow_redirections: bool) -> List[Any]:
        """redis-py's own execution of the stack (HIMPORT, NEVER_DECODE, ...)."""
        rows = _sync._LazyRows(stack, self._has_batch)
        strategy = self._execution_strategy
        strategy._command_queue = [
            _acluster.PipelineCommand(i, *rows[i], **(dict(options) if options else {})) for i, (_, options) in enumerate(stack)
        ]
        return await strategy.execute(raise_on_error, allow_redirections)  # type: ignore[no-any-return]

    async def _execute_fast(self, stack: List[Any], raise_on_error: bool, allow_redirections: bool) -> List[Any]:
        client = self.cluster_client
        if client._initialize:
            await client.initialize()
        rows = _sync._LazyRows(stack, self._has_batch)
        results: List[Any] = [_PENDING] * len(rows)
        pending: List[int] = list(range(len(rows)))
        asking: Dict[int, Tuple[str, int]] = {}  # index -> ASK target (host, port)
        unknown: List[int] = []
        failures = 0
        has_errors = False
        rounds = 0
        while pending:
            rounds += 1
            if rounds > client.RedisClusterRequestTTL:
                _sync._ttl_exhausted(pending, results)
                has_errors = True
                break
            groups = await self._route_round(rows, stack, pending, asking)
            if groups is None:
                return await self._execute_redis_path(stack, raise_on_error, allow_redirections)
            await self._send_and_read(groups, rows, stack)
            retry_next, moved, asking, failed, wait, refresh, errors = _sync._sort_replies(groups, results, rows, unknown, self.retry_writes)
            has_errors = has_errors or errors
            if not allow_redirections:
                retry_next, redirected = _keep_redirects(retry_next, results)
                has_errors = has_errors or redirected
            if failed:
                failures += 1
                for g in failed:
                    await _forget_node(client, g.node)
                if failures > client.retry.get_retries():
                    retry_next, gave_up = _sync._give_up_lost(failed, retry_next, results)
                    has_errors = has_errors or gave_up
                else:
                    refresh = True
                    backoff = getattr(client.retry, "_backoff", None)
                    if backoff is not None:
                        wait = max(wait, backoff.compute(failures))
            if retry_next:
                await self._before_resend(moved, wait, refresh)
            retry_next.sort()
            pending = retry_next
        return await self._finish(stack, rows, results, has_errors, unknown, raise_on_error)

    async def _before_resend(self, moved: Dict[int, MovedError], wait: float, refresh: bool) -> None:
        """Bring the slot map up to date once for the whole batch of
        redirects: a full refresh after a failure or CLUSTERDOWN, else the
        MOVED slots patched (a full refresh every ``reinitialize_steps``)."""
        client = self.cluster_client
        manager = client.nodes_manager
        if wait:
            await asyncio.sleep(wait)
        if refresh:
            try:
                await manager.initialize()
            except (RedisError, RedisClusterException, OSError):
                pass  # no node answered: the next round fails to connect and counts
        elif moved:
            client.reinitialize_counter += 1
            steps = client.reinitialize_steps
            if steps and client.reinitialize_counter % steps == 0:
                first = next(iter(moved.values()))
                await manager.initialize(additional_startup_nodes_info=[(first.host, first.port)])
                client.reinitialize_counter = 0
            else:
                for e in moved.values():
                    await manager.move_slot(e)

    async def _finish(
        self, stack: List[Any], rows: Any, results: List[Any], has_errors: bool, unknown: List[int], raise_on_error: bool
    ) -> List[Any]:
        if unknown and raise_on_error:
            first = results[unknown[0]]
            error = outcome_unknown(first.__cause__ or first, [rows[i] for i in unknown])
            raise error from first.__cause__
        await aapply_callbacks(results, stack, self.cluster_client.response_callbacks, has_errors)
        if raise_on_error and has_errors:
            for i, r in enumerate(results):
                if isinstance(r, Exception):
                    if not isinstance(r, (ConnectionError, TimeoutError)):  # those redis-py raises as they are
                        _annotate(r, i + 1, rows[i])
                    raise r
        return results

    # -- routing ---------------------------------------------------------------
    async def _route_round(self, rows: Any, stack: List[Any], pending: List[int], asking: Dict[int, Tuple[str, int]]) -> Optional[List[Any]]:
        """:meth:`_route`, after one topology refresh if a slot has no known
        owner (redis-py's pipeline retries the same way)."""
        client = self.cluster_client
        try:
            return await self._route(rows, stack, pending, asking)
        except (SlotNotCoveredError, ClusterDownError):
            if client.retry.get_retries() <= 0:
                raise
            await client.aclose()
            await asyncio.sleep(0.25)
            await client.initialize()
            return await self._route(rows, stack, pending, asking)

    async def _route(self, rows: Any, stack: List[Any], pending: List[int], asking: Dict[int, Tuple[str, int]]) -> Optional[List[Any]]:
        """Group ``pending`` per node, as the sync pipeline does
        (:func:`fastredis.cluster._route_groups`); the commands that need
        redis-py's policy lookup are placed afterwards, in stack order.
        None: a command only redis-py's path handles."""
        client = self.cluster_client
        manager = client.nodes_manager
        enc = client.encoder
        groups = _sync._route_groups(
            stack, rows, pending, asking, manager, self._ask_node, lambda args, options: _DEFERRED,
            enc.encoding, enc.encoding_errors,
            fast=not (client.read_from_replicas or client.load_balancing_strategy),
            table={}, cluster_callbacks=None,
            batch_slots=self._cached_batch_slots if self._batches else None,
        )
        if groups is None:
            return None
        deferred = next((g for g in groups if g.node is _DEFERRED), None)
        if deferred is None:
            return groups
        groups.remove(deferred)
        by_name = {g.node.name: g for g in groups if not g.asking}
        touched = set()
        for i in deferred.idxs:
            node = await self._route_slow(rows[i], stack[i][1])
            g = by_name.get(node.name)
            if g is None:
                g = by_name[node.name] = _sync._Group(node)
                groups.append(g)
            g.idxs.append(i)
            touched.add(g)
        for g in touched:
            g.idxs.sort()
        return groups

    def _cached_batch_slots(self, enc: str, errs: str) -> Dict[Any, Any]:
        if self._batch_slots is None:
            self._batch_slots = _sync._slots_of_batches(self._batches, enc, errs)
        return self._batch_slots

    def _ask_node(self, host: str, port: int) -> Any:
        manager = self.cluster_client.nodes_manager
        node = manager.get_node(host=host, port=port)
        if node is None:  # a node the slot map does not know yet: kept, so aclose() closes it
            node = _acluster.ClusterNode(host, port, _acluster.PRIMARY, **manager.connection_kwargs)
            manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node

    async def _route_slow(self, args: Sequence[Any], options: Any) -> Any:
        """The node redis-py's asyncio cluster pipeline sends ``args`` to, with its errors."""
        client = self.cluster_client
        passed = options.pop("target_nodes", None) if options else None
        policies = await client._policy_resolver.resolve(args[0].lower())
        if passed and not client._is_node_flag(passed):
            targets = client._parse_target_nodes(passed)
        else:
            if not policies:
                policies = await _default_policies(client, args)
            targets = await client._determine_nodes(*args, request_policy=policies.request_policy, node_flag=passed)
            if not targets:
                raise RedisClusterException(f"No targets were found to execute {args} command on")
        if len(targets) > 1:
            raise RedisClusterException(f"Too many targets for command {args}")
        return targets[0]

    # -- I/O -----------------------------------------------------------------
    async def _send_and_read(self, groups: List[Any], rows: Any, stack: List[Any]) -> None:
        """Encode every group, take a connection per node, write all, read all
        concurrently. Errors are left on the groups (``error``, ``phase``);
        connections are released (dropped when their state is unknown)."""
        for g in groups:
            _sync._encode_group(g, self.core, g.node.connection_kwargs, rows, stack)
        try:
            # Every connection first: an exhausted pool raises before anything is sent.
            for g in groups:
                g.phase = "connect"
                g.conn = g.node.acquire_connection()
            for g in groups:
                try:
                    await _ready(g.node, g.conn)
                except _CONNECTION_ERRORS as e:
                    g.error = _sync._as_redis_error(e)
            # Then every write, before any read.
            for g in groups:
                if g.error is None:
                    await _write(g)
            reading = [g for g in groups if g.phase == "read"]
            if len(reading) == 1:
                await _read(reading[0])
            elif reading:
                done = await asyncio.gather(*(_read(g) for g in reading), return_exceptions=True)
                for outcome in done:
                    if isinstance(outcome, BaseException):
                        raise outcome
        finally:
            for g in groups:
                if g.conn is not None:
                    await _release(g)


async def _write(g: Any) -> None:
    g.phase = "write"
    g.dirty = True
    try:
        await _send(g.conn, g.buf.take())
    except _CONNECTION_ERRORS as e:
        g.error = _sync._as_redis_error(e)
        return
    g.phase = "read"


async def _read(g: Any) -> None:
    """Read ``g``'s replies into ``g.out`` (those that arrived stay there
    after a failure)."""
    try:
        g.errors = await aread_into(g.conn, g.out, g.wire)
    except _CONNECTION_ERRORS as e:
        g.error = _sync._as_redis_error(e)
        return
    except ProtocolError as e:
        g.error = e
        return
    # A LOADING reply (in its slot, re-sent) leaves the connection as redis-py drops it.
    g.phase = "read" if g.errors and any(refused_by_server(r) for r in g.out) else "done"


async def _release(g: Any) -> None:
    conn, g.conn = g.conn, None
    try:
        if g.dirty and g.phase != "done":
            await conn.disconnect(nowait=True)  # its state is unknown
    finally:
        g.node.release(conn)


async def _forget_node(client: Any, node: Any) -> None:
    """After a connection error on ``node``: redis-py's clean-up (drop the
    idle connections, try this node last when refreshing)."""
    try:
        node.update_active_connections_for_reconnect()
        await node.disconnect_free_connections()
    except Exception:
        pass
    client.nodes_manager.move_node_to_end_of_cached_nodes(node.name)


async def _default_policies(client: Any, args: Sequence[Any]) -> Any:
    """redis-py's command policies for a command its resolver does not list."""
    flag = client.command_flags.get(args[0])
    if not flag:
        slot = await client._determine_slot(*args) if client.get_default_node() else None
        if slot is None:
            return CommandPolicies()
        return CommandPolicies(request_policy=RequestPolicy.DEFAULT_KEYED, response_policy=ResponsePolicy.DEFAULT_KEYED)
    if flag in client._command_flags_mapping:
        return CommandPolicies(request_policy=client._command_flags_mapping[flag])
    return CommandPolicies()


# -- transactions ------------------------------------------------------------
class _PolicyTransactionStrategy(_acluster.TransactionStrategy):  # type: ignore[misc,valid-type]
    """redis-py's asyncio cluster transaction, re-sent only when that is
    safe: after a redirect (EXEC aborted, nothing applied) or a failure
    before MULTI was written; otherwise an outcome-unknown error names the
    commands; a connection lost while keys are watched raises ``WatchError``.
    The async twin of :class:`fastredis.cluster._PolicyTransactionStrategy`
    (the same rules; only the awaits differ)."""

    def __init__(self, pipe: Any) -> None:
        super().__init__(pipe)
        self._sent = False
        self._watched = False  # a WATCH succeeded on the transaction connection

    def _validate_watch(self) -> None:
        if not self._watching:
            self._watched = False
        super()._validate_watch()

    async def _reinitialize_on_error(self, error: Any, failure_count: int) -> None:
        watch_lost = self._watching and self._watched and isinstance(error, _CONNECTION_ERRORS)
        await super()._reinitialize_on_error(error, failure_count)
        if watch_lost:
            self._watching = self._watched = False
            raise WatchError(f"A {type(error).__name__} occurred while watching one or more keys") from error

    async def _execute_transaction(self, stack: List[Any], raise_on_error: bool) -> Any:
        self._sent = False
        if len(self._pipeline_slots) == 1:
            node, conn = self._get_client_and_connection_for_transaction()
            if self._watching:
                if closed_by_server(conn):
                    await self._reinitialize_on_error(ConnectionError("the server closed the watching connection"), 0)
            else:
                await _ready(node, conn)  # a failure to connect here wrote nothing
        self._sent = True
        return await super()._execute_transaction(stack, raise_on_error)

    async def _execute_transaction_with_retries(self, stack: List[Any], raise_on_error: bool) -> Any:
        held: List[BaseException] = []

        def retryable(error: BaseException) -> bool:
            if isinstance(error, self.SLOT_REDIRECT_ERRORS) or not self._sent or self._pipe.retry_writes:
                return True
            if isinstance(error, _CONNECTION_ERRORS):
                held.append(error)
                return False
            return True

        try:
            return await self._retry.call_with_retry(
                lambda: self._execute_transaction(stack, raise_on_error),
                self._reinitialize_on_error,
                is_retryable=retryable,
                with_failure_count=True,
            )
        except _CONNECTION_ERRORS as error:
            if not held or error is not held[-1]:
                raise
            try:
                await self._reinitialize_on_error(error, 0)
            except Exception:
                pass  # the error to raise is the outcome-unknown one
            raise outcome_unknown(_sync._as_redis_error(error), [c.args for c in stack]) from error

    async def _immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        sent = [False]

        async def do() -> Any:
            sent[0] = False
            node, conn = self._get_client_and_connection_for_transaction()
            if not self._watching or not self._watched:
                await _ready(node, conn)  # nothing watched on it yet: reconnecting loses nothing
            sent[0] = True
            reply = await self._get_connection_and_send_command(*args, **options)
            if args[0] == "WATCH":
                self._watched = True
            return reply

        def retryable(error: BaseException) -> bool:
            return not sent[0] or self._pipe.retry_writes or _sync._resendable_before_multi(args) or not isinstance(error, _CONNECTION_ERRORS)

        try:
            return await self._retry.call_with_retry(do, self._reinitialize_on_error, is_retryable=retryable, with_failure_count=True)
        except _CONNECTION_ERRORS as error:
            if not sent[0] or self._pipe.retry_writes or _sync._resendable_before_multi(args):
                raise
            raise outcome_unknown(_sync._as_redis_error(error), [args]) from error


def _keep_redirects(retry_next: List[int], results: List[Any]) -> Tuple[List[int], bool]:
    """``allow_redirections=False``: MOVED/ASK/TRYAGAIN replies stay in place."""
    keep = [i for i in retry_next if not isinstance(results[i], _REDIRECTS)]
    return keep, len(keep) != len(retry_next)


def _annotate(error: Exception, number: int, args: Sequence[Any]) -> None:
    """redis-py's asyncio cluster pipeline's wording (it shows the error's args tuple)."""
    command = " ".join(map(safe_str, args))
    error.args = (f"Command # {number} ({truncate_text(command)}) of pipeline caused error: {error.args}",) + error.args[1:]


RedisCluster.pipeline_class = ClusterPipeline


def cluster_class_for(core: Any) -> type:
    """A :class:`RedisCluster` subclass running on ``core`` (``_resp_c`` or
    ``_resp_py``): node connections' parser and pipelines alike. Used by the
    tests and benchmarks to run both twins in one process.

    Example::

        >>> from fastredis import _resp_py
        >>> cls = cluster_class_for(_resp_py)
        >>> cls.pipeline_class.core is cls.parser_class.core is _resp_py, cls.mux_core.__name__
        (True, 'fastredis._aioproto_py')
    """
    from .client import client_class_for

    if core is _resp:
        return RedisCluster
    suffix = core.__name__.rsplit(".", 1)[-1]
    pipe = type(f"ClusterPipeline{suffix}", (ClusterPipeline,), {"core": core})
    single = client_class_for(core)
    return type(
        f"RedisCluster{suffix}",
        (RedisCluster,),
        {"parser_class": single.parser_class, "pipeline_class": pipe, "mux_core": single.mux_core, "core": core},  # type: ignore[attr-defined]
    )

# Hot staging methods (the sync cluster pipeline's), except where redis-py's
# asyncio cluster pipeline has its own method (blocked, or split by slot).
for _method, _row in HOT_COMMANDS.items():
    if getattr(_PARENT, _method, None) is getattr(_aclient.Redis, _method, object()):
        setattr(ClusterPipeline, _method, _sync._make_hot(_method, *_row, parent=_PARENT, owner="fastredis.asyncio.cluster.ClusterPipeline"))
del _method, _row
