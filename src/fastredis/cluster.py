"""``fastredis.RedisCluster``: redis-py's cluster client with fast pipelines
across the cluster, exactly once through slot migration and failover.

- :class:`RedisCluster` subclasses ``redis.cluster.RedisCluster``: same
  constructor, ``from_url``, commands, errors and callbacks. Its node clients
  are :class:`fastredis.Redis` (the fast parser on every node's pool), and
  single commands follow the write-retry policy
  (:mod:`fastredis.retry_policy`): a write that may have reached a node is
  not re-sent after a connection error unless ``retry_writes=True``.
- :class:`ClusterPipeline` subclasses ``redis.cluster.ClusterPipeline``.
  ``execute()`` routes every command to its slot's node, encodes each node's
  commands into one buffer with the core, writes to every node before reading
  any, and reads the replies from all nodes as they arrive. Only redirected
  commands (MOVED, ASK, TRYAGAIN) are re-sent, grouped per target node in one
  round trip each (ASKING before each ASK), after one slot-map refresh per
  batch of redirects; a command that has its reply is never re-sent.

Example::

    >>> import fastredis
    >>> from fastredis.server import RedisCluster as TestCluster
    >>> cluster = TestCluster.shared()  # a throwaway 3-master cluster
    >>> rc = fastredis.RedisCluster(host=cluster.host, port=cluster.ports[0])
    >>> with rc.pipeline() as p:
    ...     for i in range(4):
    ...         _ = p.set(f"user:{i}", i)
    ...     _ = p.get("user:3").incrby("visits", 0)
    ...     p.execute()
    [True, True, True, True, b'3', 0]
    >>> rc.close()
"""

from __future__ import annotations

import select
import socket
import time
from binascii import crc_hqx
from bisect import bisect_left
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import redis
import redis.cluster
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    ConnectionError,
    MaxConnectionsError,
    MovedError,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
    WatchError,
)

from . import _cluster, _pipeline, _redispy, _resp
from ._redispy import NEVER_DECODE, OK_CALLBACKS
from .client import Redis
from .connection import FastParser, install_fast_parser, is_fast_connection
from .exceptions import OutcomeUnknownError, ProtocolError
from .pipeline import HOT_COMMANDS, _BatchArgs, _is_column, _plain_column
from .retry_policy import is_idempotent, outcome_unknown

__all__ = ["RedisCluster", "ClusterPipeline", "key_slot", "cluster_class_for"]

_PARENT_PIPELINE: Any = redis.cluster.ClusterPipeline
_TransactionStrategy: Any = redis.cluster.TransactionStrategy
_NO_OPTIONS: Any = ()
_PENDING: Any = object()
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, socket.timeout, OSError)
# Replies after which the command certainly did not run: re-sent.
_REFUSED = (MovedError, AskError, TryAgainError, ClusterDownError, BusyLoadingError)

# How the keys of a command are found, for the commands routed without
# redis-py's per-command key lookup (every other command takes redis-py's
# routing, with its errors): 1 = one key, args[1]; 2 = every argument after
# the name is a key (all must share a slot); 3 = EVAL/EVALSHA (numkeys, keys).
_ONE_KEY = 1
_ALL_KEYS = 2
_SCRIPT_KEYS = 3
_KEY_SPECS: Dict[str, int] = dict.fromkeys(
    (
        "GET SET SETEX PSETEX SETNX GETSET GETDEL GETEX APPEND STRLEN GETRANGE SETRANGE "
        "INCR INCRBY INCRBYFLOAT DECR DECRBY "
        "HGET HSET HSETNX HMSET HMGET HGETALL HDEL HEXISTS HINCRBY HINCRBYFLOAT HKEYS HVALS HLEN HSTRLEN "
        "LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LRANGE LLEN LINDEX LSET LREM LTRIM LPOS "
        "SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER "
        "ZADD ZINCRBY ZSCORE ZMSCORE ZCARD ZCOUNT ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE "
        "ZRANK ZREVRANK ZREM ZREMRANGEBYRANK ZREMRANGEBYSCORE ZPOPMIN ZPOPMAX "
        "PFADD EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST TTL PTTL TYPE "
        "GETBIT SETBIT BITCOUNT BITPOS XADD XLEN XRANGE XREVRANGE XDEL GEOADD GEOPOS GEODIST GEOHASH"
    ).split(),
    _ONE_KEY,
)
_KEY_SPECS.update(dict.fromkeys(("DEL", "EXISTS", "UNLINK", "TOUCH", "MGET", "PFCOUNT"), _ALL_KEYS))
_KEY_SPECS.update(dict.fromkeys(("EVALSHA", "EVAL"), _SCRIPT_KEYS))


def key_slot(key: Any, encoding: str = "utf-8", errors: str = "strict") -> int:
    """The cluster hash slot of ``key`` (str, bytes, int or float), as Redis
    computes it: CRC16 of the key, or of its ``{hash tag}``, modulo 16384.

    Example::

        >>> key_slot("user:1000") == key_slot("{user:1000}:followers")
        True
        >>> key_slot(b"foo")
        12182
    """
    if type(key) is str:
        raw = key.encode(encoding, errors)
    elif type(key) is bytes:
        raw = key
    else:
        raw = redis.connection.Encoder(encoding, errors, False).encode(key)
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return crc_hqx(raw, 0) & 16383


# -- the client ---------------------------------------------------------------
class RedisCluster(redis.cluster.RedisCluster):
    """``redis.cluster.RedisCluster`` whose pipelines run on the fastredis core.

    Same constructor and ``from_url`` as redis-py, plus ``retry_writes``
    (default False): whether a write that may have reached a node is re-sent
    after a connection error, as redis-py does. Node clients
    (``get_redis_connection(node)``) are :class:`fastredis.Redis`.

    Example::

        >>> import fastredis
        >>> from fastredis.server import RedisCluster as TestCluster
        >>> cluster = TestCluster.shared()
        >>> rc = fastredis.RedisCluster.from_url(f"redis://{cluster.host}:{cluster.ports[0]}")
        >>> rc.set("{user:1}:name", "ann")
        True
        >>> rc.get("{user:1}:name"), len(rc.get_primaries())
        (b'ann', 3)
        >>> type(rc.get_redis_connection(rc.get_node_from_key("x"))).__name__
        'Redis'
        >>> rc.close()
    """

    #: The class of the node clients (a :class:`fastredis.Redis` subclass).
    node_client_class: Any = Redis
    #: The class of :meth:`pipeline`'s pipelines.
    pipeline_class: Any = None  # ClusterPipeline, set below

    def __init__(self, *args: Any, retry_writes: bool = False, **kwargs: Any) -> None:
        if not isinstance(retry_writes, bool):
            raise TypeError(f"retry_writes must be True or False, got {type(retry_writes).__name__}")
        self.retry_writes = retry_writes
        super().__init__(*args, **kwargs)
        if _redispy.CLUSTER_FAST_PATH:
            _adopt_node_clients(self.nodes_manager, self.node_client_class, retry_writes)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> "ClusterPipeline":
        """A :class:`ClusterPipeline` (redis-py semantics, fast execute).

        ``transaction=True`` runs MULTI/EXEC on the node owning the one slot
        every key maps to; redis-py's errors otherwise.
        """
        if shard_hint:
            raise redis.cluster.RedisClusterException("shard_hint is deprecated in cluster mode")
        pipe = self.pipeline_class(**_pipeline_kwargs(self, transaction))
        pipe.retry_writes = self.retry_writes
        return pipe  # type: ignore[no-any-return]

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """As redis-py's, with a shortcut for one-key commands (the fast
        table, str/bytes key, no ``target_nodes``): the slot's primary is
        looked up directly instead of through redis-py's per-command policy
        and key resolution. Redirects, refreshes and errors stay redis-py's;
        a failure that redis-py would retry takes redis-py's full path."""
        if (
            len(args) > 1
            and _KEY_SPECS.get(args[0]) == _ONE_KEY
            and "target_nodes" not in kwargs
            and not (self.read_from_replicas or self.load_balancing_strategy)
            and _redispy.CLUSTER_FAST_PATH
        ):
            enc = self.encoder
            slot = _cluster.slot_of(args[1], enc.encoding, enc.encoding_errors)
            nodes = self.nodes_manager.slots_cache.get(slot) if slot >= 0 else None
            if nodes and args[0] not in self.result_callbacks:
                try:
                    return self._execute_command(nodes[0], *args, **kwargs)
                except OutcomeUnknownError:
                    raise
                except Exception as e:
                    if type(e) not in self.ERRORS_ALLOW_RETRY or self.retry.get_retries() <= 0:
                        raise
                    # redis-py's loop retries these after its topology refresh.
        return super().execute_command(*args, **kwargs)

    def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        """redis-py's per-node send (redirects, topology refresh) under the
        write-retry policy: a connection error after the command may have been
        written raises an outcome-unknown error instead of being retried,
        unless the command is idempotent or ``retry_writes`` is set."""
        try:
            return super()._execute_command(target_node, *args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            if self.retry_writes or isinstance(error, OutcomeUnknownError) or is_idempotent(args):
                raise
            # redis-py stores the connection on the error once it had one;
            # before that (pool exhausted, connect failed) it stores the node,
            # and nothing was written.
            if not isinstance(getattr(error, "connection", None), redis.connection.AbstractConnection):
                raise
            raise outcome_unknown(error, [args]) from error


def _pipeline_kwargs(client: Any, transaction: Any) -> Dict[str, Any]:
    """The arguments redis-py's ``RedisCluster.pipeline()`` passes to its pipeline."""
    return dict(
        nodes_manager=client.nodes_manager,
        commands_parser=client.commands_parser,
        startup_nodes=client.nodes_manager.startup_nodes,
        result_callbacks=client.result_callbacks,
        cluster_response_callbacks=client.cluster_response_callbacks,
        read_from_replicas=client.read_from_replicas,
        load_balancing_strategy=client.load_balancing_strategy,
        reinitialize_steps=client.reinitialize_steps,
        retry=client.retry,
        lock=client._lock,
        transaction=transaction,
        event_dispatcher=client._event_dispatcher,
    )


def _adopt_node_clients(manager: Any, node_class: Any, retry_writes: bool) -> None:
    """Make every node client of ``manager`` (now and after each topology
    refresh) a ``node_class`` sharing the pool redis-py built, with the fast
    parser installed on that pool."""
    original = type(manager).create_redis_node

    def create_redis_node(host: Any, port: Any, **kwargs: Any) -> Any:
        plain = original(manager, host, port, **kwargs)
        pool = plain.connection_pool
        install_fast_parser(pool, node_class.parser_class)
        fast = node_class(connection_pool=pool, retry_writes=retry_writes)
        fast.auto_close_connection_pool = plain.auto_close_connection_pool
        return fast

    manager.create_redis_node = create_redis_node
    nodes = {id(n): n for n in list(manager.nodes_cache.values()) + list(manager.startup_nodes.values())}
    stale = []
    for node in nodes.values():
        old = node.redis_connection
        if old is not None and not isinstance(old, node_class):
            stale.append(old)
            node.redis_connection = None
    manager.create_redis_connections([n for n in nodes.values() if n.redis_connection is None])
    for old in stale:
        old.close()


# -- the pipeline --------------------------------------------------------------
class _Group:
    """One node's share of a round: its commands, buffer, connection, replies."""

    __slots__ = ("node", "redis_node", "idxs", "asking", "conn", "buf", "wire", "out", "errors", "err0", "error", "phase", "slow", "last", "dirty")

    def __init__(self, node: Any, asking: bool = False) -> None:
        self.node = node
        self.redis_node: Any = None
        self.idxs: List[int] = []
        self.asking = asking  # every command preceded by ASKING (after an ASK redirect)
        self.conn: Any = None
        self.buf: Any = None
        self.wire = 0  # replies expected (commands + ASKINGs)
        self.out: List[Any] = []
        self.errors = 0  # error replies among ``out``
        self.err0 = 0  # the parser's error count before this group's reads
        self.error: Optional[BaseException] = None
        self.phase = "route"  # route -> connect -> write -> read -> done
        self.slow = False  # read reply by reply through redis-py
        self.last = 0.0
        self.dirty = False


def _encode_group(g: _Group, core: Any, kw: Dict[str, Any], rows: Any, stack: List[Any]) -> None:
    """Encode ``g``'s commands into one buffer (``g.buf``) with the core, with
    the node's encoding (``kw``: its connection kwargs); ``g.wire``: how many
    replies they make (an ASKING before each after an ASK redirect)."""
    buf = g.buf = core.CommandBuffer(kw.get("encoding", "utf-8"), kw.get("encoding_errors", "strict"))
    command = buf.command
    if g.asking:
        for i in g.idxs:
            command(("ASKING",))
            command(rows[i])
    elif not rows.has_batch:
        _cluster.encode_commands(command, stack, g.idxs)
    else:
        _encode_with_batches(buf, g.idxs, stack, rows)
    g.wire = len(g.idxs) * (2 if g.asking else 1)


def _sort_replies(
    groups: List[_Group], results: List[Any], rows: Any, unknown: List[int], retry_writes: bool
) -> Tuple[List[int], Dict[int, MovedError], Dict[int, Tuple[str, int]], List[_Group], float, bool, bool]:
    """Sort a round's replies into ``results``: final, refused (to re-send),
    or lost with the connection (re-sent only if it never reached the node,
    is idempotent, or ``retry_writes``; else an outcome-unknown error, its
    index added to ``unknown``). Shared by the sync and asyncio pipelines.

    Returns (indexes to re-send, MovedError by slot, ASK target by index,
    groups whose connection failed, seconds to wait, whether the slot map
    needs a full refresh, whether an error is now in ``results``).
    """
    retry_next: List[int] = []
    moved: Dict[int, MovedError] = {}
    asking: Dict[int, Tuple[str, int]] = {}
    failed: List[_Group] = []
    wait = 0.0
    refresh = False
    has_errors = False
    for g in groups:
        out = g.out
        idxs = g.idxs
        if g.asking:
            # Every other reply is ASKING's +OK; a lost reply cuts the pair.
            out = out[1::2]
        if not g.errors and g.error is None and len(out) == len(idxs):
            _cluster.scatter(results, idxs, out)
            continue
        lost_from = min(len(out), len(idxs))
        for i, r in zip(idxs, out):
            if isinstance(r, Exception):
                if isinstance(r, _REFUSED):
                    results[i] = r  # until a later round replaces it
                    retry_next.append(i)
                    if isinstance(r, MovedError):
                        moved.setdefault(r.slot_id, r)
                    elif isinstance(r, AskError):
                        asking[i] = (r.host, r.port)
                    elif isinstance(r, TryAgainError):
                        wait = max(wait, 0.05)
                    else:  # CLUSTERDOWN, LOADING: a failover or restart in progress
                        wait = max(wait, 0.25)
                        refresh = True
                    continue
                has_errors = True
            results[i] = r
        if lost_from < len(idxs):
            failed.append(g)
            error = g.error
            for i in idxs[lost_from:]:
                if g.phase == "connect" or retry_writes or is_idempotent(rows[i]):
                    retry_next.append(i)
                else:
                    results[i] = outcome_unknown(error, [rows[i]])  # type: ignore[arg-type]
                    results[i].__cause__ = error
                    unknown.append(i)
                    has_errors = True
    return retry_next, moved, asking, failed, wait, refresh, has_errors


def _ttl_exhausted(pending: List[int], results: List[Any]) -> None:
    """Still redirected or refused after the request TTL: redis-py's
    ``ClusterError("TTL exhausted.")``, or the last refusal (e.g.
    CLUSTERDOWN) where there is one."""
    for i in pending:
        if results[i] is _PENDING:
            results[i] = ClusterError("TTL exhausted.")


def _give_up_lost(failed: List[_Group], retry_next: List[int], results: List[Any]) -> Tuple[List[int], bool]:
    """Retries exhausted: the commands lost with a failed connection get its
    error in place; the others (redirected) are still re-sent. Returns those
    and whether any error was placed."""
    lost = {i for g in failed for i in g.idxs}
    by_index = {i: g.error for g in failed for i in g.idxs}
    keep = []
    placed = False
    for i in retry_next:
        if i in lost:
            results[i] = by_index[i]
            placed = True
        else:
            keep.append(i)
    return keep, placed


class ClusterPipeline(_PARENT_PIPELINE):  # type: ignore[misc,valid-type]
    """A redis-py ``ClusterPipeline`` whose ``execute()`` runs on the core.

    Results, callbacks, errors (``Command # N (...) of pipeline caused
    error: ...``) and ``raise_on_error=False`` are redis-py's. Differences,
    all on the side of safety and speed:

    - every node is written before any is read, and replies are read from
      all nodes as they arrive;
    - MOVED/ASK/TRYAGAIN (and CLUSTERDOWN, LOADING) replies are re-sent
      grouped per node, one round trip per node and round, instead of one
      command at a time;
    - after a connection error only commands that never reached the node,
      or are idempotent, are re-sent; the others get an outcome-unknown error
      (:class:`~fastredis.exceptions.OutcomeUnknownConnectionError`), in
      place with ``raise_on_error=False``, else raised naming them all;
    - :meth:`batch` stages many commands at once, across slots.

    Example::

        >>> import fastredis
        >>> from fastredis.server import RedisCluster as TestCluster
        >>> cluster = TestCluster.shared()
        >>> rc = fastredis.RedisCluster(host=cluster.host, port=cluster.ports[0])
        >>> p = rc.pipeline()
        >>> p.batch("SET", ["a", "b", "c"], [1, 2, 3]).batch("GET", ["c", "a"]).execute()
        [True, True, True, b'3', b'1']
        >>> rc.close()
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp
    #: Re-send writes after a connection error, as redis-py does.
    retry_writes: bool = False
    _tx = False
    _has_batch = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stack: List[Any] = []
        self._batches: List[_BatchArgs] = []
        self._batch_slots: Optional[Dict[Any, Any]] = None
        super().__init__(*args, **kwargs)
        #: Scripts (``sha``, ``script``) to preload before a transaction runs.
        self.scripts: Set[Any] = set()
        strategy: Any = getattr(self, "_execution_strategy")  # set by redis-py's __init__
        if isinstance(strategy, _TransactionStrategy):
            self._tx = True
            self._execution_strategy = _PolicyTransactionStrategy(self)

    @classmethod
    def for_client(cls, client: Any, transaction: bool = False, retry_writes: bool = False) -> "ClusterPipeline":
        """A fast pipeline on any ``redis.cluster.RedisCluster`` (a plain
        redis-py client too: its nodes keep their own parsers, and the write
        policy and grouped redirects apply).

        Example::

            >>> from redis.cluster import RedisCluster as PlainCluster
            >>> from fastredis.server import RedisCluster as TestCluster
            >>> cluster = TestCluster.shared()
            >>> plain = PlainCluster(host=cluster.host, port=cluster.ports[0])
            >>> ClusterPipeline.for_client(plain).set("k", 1).incr("k").execute()
            [True, 2]
            >>> plain.close()
        """
        pipe = cls(**_pipeline_kwargs(client, transaction))
        pipe.retry_writes = bool(retry_writes or getattr(client, "retry_writes", False))
        return pipe

    def fresh(self, transaction: bool = False) -> "ClusterPipeline":
        """An empty pipeline of the same kind, on the same cluster.

        Example::

            >>> from fastredis.server import RedisCluster as TestCluster
            >>> import fastredis
            >>> rc = fastredis.RedisCluster("127.0.0.1", TestCluster.shared().ports[0])
            >>> len(rc.pipeline().set("a", 1).fresh())
            0
            >>> rc.close()
        """
        pipe = type(self)(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=self.startup_nodes,
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            policy_resolver=self._policy_resolver,
            event_dispatcher=self._event_dispatcher,
        )
        pipe.retry_writes = self.retry_writes
        return pipe

    @property
    def transaction(self) -> bool:
        """Whether ``execute()`` runs MULTI/EXEC (``pipeline(transaction=True)``)."""
        return self._tx

    # -- the stack ---------------------------------------------------------
    @property  # type: ignore[override]
    def command_stack(self) -> List[Any]:
        """The staged commands as ``(args, options)`` (batch rows share one entry)."""
        if self._tx:
            return [(c.args, c.options) for c in self._execution_strategy.command_queue]
        return self._stack

    @command_stack.setter
    def command_stack(self, value: List[Any]) -> None:
        self._stack = value

    def __len__(self) -> int:
        if self._tx:
            return len(self._execution_strategy.command_queue)
        return len(self._stack)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._tx:
            return self._execution_strategy.execute_command(*args, **kwargs)
        return self.pipeline_execute_command(*args, **kwargs)

    def pipeline_execute_command(self, *args: Any, **options: Any) -> "ClusterPipeline":
        if self._tx:
            return self._execution_strategy.execute_command(*args, **options)  # type: ignore[no-any-return]
        if options:
            options.pop("keys", None)  # only for client-side caching; popped before callbacks
        self._stack.append((args, options or _NO_OPTIONS))
        return self

    def batch(self, command: str, *columns: Any) -> "ClusterPipeline":
        """Stage ``len(column)`` commands at once; rows may map to any slots.

        Each argument that is a column (a sequence or numpy array, not
        str/bytes/bytearray/memoryview) is iterated; scalars repeat. Replies
        come back from :meth:`execute` in order, with redis-py's callbacks.

        Example::

            >>> import fastredis
            >>> from fastredis.server import RedisCluster as TestCluster
            >>> rc = fastredis.RedisCluster("127.0.0.1", TestCluster.shared().ports[0])
            >>> rc.pipeline().batch("HSET", ["h1", "h2"], "field", [1.5, 2]).execute()
            [1, 1]
            >>> rc.close()
        """
        if not isinstance(command, (str, bytes)):
            raise TypeError("batch() takes the command name first, e.g. batch('SET', keys, values)")
        name = command.decode() if isinstance(command, bytes) else command
        args = (name, *columns)
        cols = [i for i, a in enumerate(args) if i and _is_column(a)]
        lengths = {len(args[i]) for i in cols}
        if len(lengths) > 1:
            raise ValueError(f"batch() columns differ in length: {sorted(lengths)}")
        if not cols:
            return self.execute_command(*args)  # type: ignore[no-any-return]
        # Copy the columns: a caller mutating them before execute() must not
        # change what is sent.
        args = tuple(list(a) if i in cols and not hasattr(a, "dtype") else a for i, a in enumerate(args))
        n = lengths.pop()
        if self._tx:
            entry = _BatchArgs(name, args, cols, 0)
            for i in range(n):
                self.execute_command(*entry.row(i))
            return self
        if n:
            stack = self._stack
            entry = _BatchArgs(name, args, cols, len(stack))
            stack.extend(repeat((entry, _NO_OPTIONS), n))
            self._has_batch = True
            self._batches.append(entry)
        return self

    def zadd(self, name: Any, mapping: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or self._tx or type(mapping) is not dict or len(mapping) != 1:
            return super().zadd(name, mapping, *args, **kwargs)
        ((member, score),) = mapping.items()
        self._stack.append((("ZADD", name, score, member), _NO_OPTIONS))
        return self

    def delete(self, *names: Any) -> Any:  # type: ignore[override]
        """``DEL``: one key per call outside a transaction, as in redis-py."""
        if self._tx:
            return super().delete(*names)
        if len(names) != 1:
            raise redis.cluster.RedisClusterException("deleting multiple keys is not implemented in pipeline command")
        return self.execute_command("DEL", names[0])

    def unlink(self, *names: Any) -> Any:  # type: ignore[override]
        """``UNLINK``: one key per call outside a transaction, as in redis-py."""
        if self._tx:
            return super().unlink(*names)
        if len(names) != 1:
            raise redis.cluster.RedisClusterException("unlinking multiple keys is not implemented in pipeline command")
        return self.execute_command("UNLINK", names[0])

    def reset(self) -> None:
        """Empty the pipeline (and end a transaction's WATCH)."""
        self._stack = []
        self._has_batch = False
        self._batches = []
        self._batch_slots = None
        scripts = getattr(self, "scripts", None)
        if scripts:
            scripts.clear()
        super().reset()

    # -- scripts -------------------------------------------------------------
    def load_scripts(self) -> None:
        """Load the scripts in ``self.scripts`` where they will run: on the
        transaction's node, or on every primary."""
        scripts = list(self.scripts)
        if not scripts:
            return
        if self._tx:
            slots = self._execution_strategy._pipeline_slots
            nodes = [self.nodes_manager.get_node_from_slot(next(iter(slots)))] if slots else []
        else:
            nodes = self.get_primaries()
        self._load_on(nodes, scripts)

    def preload_scripts(self, scripts: Iterable[Any]) -> None:
        """``SCRIPT LOAD`` each script (objects with ``script``) on every
        primary, one pipelined round trip per node.

        Example::

            >>> import fastredis
            >>> from fastredis.scripts import LuaScript
            >>> from fastredis.server import RedisCluster as TestCluster
            >>> rc = fastredis.RedisCluster("127.0.0.1", TestCluster.shared().ports[0])
            >>> s = LuaScript("return 1")
            >>> rc.pipeline().preload_scripts([s])
            >>> rc.script_exists(s.sha)
            [True]
            >>> rc.close()
        """
        scripts = list(scripts)
        if scripts:
            self._load_on(self.get_primaries(), scripts)

    def _load_on(self, nodes: Sequence[Any], scripts: Sequence[Any]) -> None:
        from .scripts import pipeline_for

        for node in nodes:
            pipe = pipeline_for(self.get_redis_connection(node))
            for s in scripts:
                source = s.script
                pipe.execute_command("SCRIPT LOAD", source)
            pipe.execute()

    # -- execution -----------------------------------------------------------
    def execute(self, raise_on_error: bool = True) -> List[Any]:
        """Execute every staged command; see the class docstring."""
        try:
            if self._tx:
                if self.scripts:
                    self.load_scripts()
                return self._execution_strategy.execute(raise_on_error)  # type: ignore[no-any-return]
            stack = self._stack
            if not stack:
                return []
            if not _redispy.CLUSTER_FAST_PATH:
                return self._execute_redis_path(stack, raise_on_error)
            return self._execute_fast(stack, raise_on_error)
        finally:
            self.reset()

    def _execute_redis_path(self, stack: List[Any], raise_on_error: bool) -> List[Any]:
        """redis-py's own execution of the stack (HIMPORT, or an unknown redis-py)."""
        strategy = self._execution_strategy
        queue = []
        for i, (args, options) in enumerate(stack):
            if isinstance(args, _BatchArgs):
                args = args.row(i - args.start)
            queue.append(redis.cluster.PipelineCommand(args, dict(options) if options else {}, i))
        strategy.command_queue = queue
        return strategy.execute(raise_on_error)  # type: ignore[no-any-return]

    def _rows(self, stack: List[Any]) -> "_LazyRows":
        """The argument tuple of each command, batch rows built on demand
        (routing and encoding read the batch columns directly)."""
        return _LazyRows(stack, self._has_batch)

    def _execute_fast(self, stack: List[Any], raise_on_error: bool) -> List[Any]:
        rows = self._rows(stack)
        n = len(rows)
        results: List[Any] = [_PENDING] * n
        cluster_callbacks: List[int] = []
        pending: List[int] = list(range(n))
        asking: Dict[int, Tuple[str, int]] = {}  # index -> ASK target (host, port)
        unknown: List[int] = []
        manager = self.nodes_manager
        retries = self.retry.get_retries()
        backoff = getattr(self.retry, "_backoff", None)
        failures = 0
        callbacks: Any = None
        has_errors = False
        rounds = 0
        first = True
        while pending:
            rounds += 1
            if rounds > self.RedisClusterRequestTTL:
                _ttl_exhausted(pending, results)
                has_errors = True
                break
            groups = self._route(rows, stack, pending, asking, cluster_callbacks if first else None)
            if groups is None:  # HIMPORT: redis-py's path for the whole pipeline
                return self._execute_redis_path(stack, raise_on_error)
            first = False
            self._send_and_read(groups, rows, stack)
            if callbacks is None and groups:
                callbacks = groups[0].redis_node.response_callbacks
            retry_next, moved, asking, failed, wait, refresh, errors = _sort_replies(groups, results, rows, unknown, self.retry_writes)
            has_errors = has_errors or errors
            if failed:
                failures += 1
                for g in failed:
                    self._forget_node(g)
                if failures > retries:
                    retry_next, gave_up = _give_up_lost(failed, retry_next, results)
                    has_errors = has_errors or gave_up
                else:
                    refresh = True
                    if backoff is not None:
                        wait = max(wait, backoff.compute(failures))
            if refresh and retry_next:
                if wait:
                    time.sleep(wait)
                    wait = 0.0
                try:
                    manager.initialize()
                except (RedisError, redis.cluster.RedisClusterException, OSError):
                    pass  # no node answered: the next round fails to connect and counts
            elif moved:
                self.reinitialize_counter: int = self.reinitialize_counter + 1
                if self._should_reinitialized():
                    first_moved = next(iter(moved.values()))
                    manager.initialize(additional_startup_nodes_info=[(first_moved.host, first_moved.port)])
                    self.reinitialize_counter = 0
                else:
                    for e in moved.values():
                        manager.move_slot(e)
            if wait and retry_next:
                time.sleep(wait)
            retry_next.sort()
            pending = retry_next
        return self._finish(stack, rows, results, has_errors, unknown, cluster_callbacks, callbacks, raise_on_error)

    def _finish(
        self,
        stack: List[Any],
        rows: Any,
        results: List[Any],
        has_errors: bool,
        unknown: List[int],
        cluster_callbacks: List[int],
        callbacks: Any,
        raise_on_error: bool,
    ) -> List[Any]:
        if unknown and raise_on_error:
            first = results[unknown[0]]
            error = outcome_unknown(first.__cause__ or first, [rows[i] for i in unknown])
            raise error from first.__cause__
        if callbacks is not None:
            _pipeline.apply_callbacks(results, stack, callbacks.get, OK_CALLBACKS, has_errors)
        if cluster_callbacks:
            table = self.cluster_response_callbacks
            for i in cluster_callbacks:
                args, options = stack[i]
                opts = {k: v for k, v in options.items() if k != "keys"} if options else {}
                results[i] = table[rows[i][0]](results[i], **opts)
        if raise_on_error and has_errors:
            for i, r in enumerate(results):
                if isinstance(r, Exception):
                    self.annotate_exception(r, i + 1, rows[i])
                    raise r
        return results

    # -- routing ---------------------------------------------------------------
    def _route(
        self,
        rows: Any,
        stack: List[Any],
        pending: List[int],
        asking: Dict[int, Tuple[str, int]],
        cluster_callbacks: Optional[List[int]],
    ) -> Optional[List[_Group]]:
        """Group ``pending`` commands per node (see :func:`_route_groups`).
        None: a command only redis-py's path handles."""
        manager = self.nodes_manager
        encoder = self.encoder

        def ask_node(host: str, port: int) -> Any:
            node = manager.get_node(host=host, port=port)
            return node if node is not None else redis.cluster.ClusterNode(host, port, redis.cluster.PRIMARY)

        return _route_groups(
            stack, rows, pending, asking, manager, ask_node, self._route_slow,
            encoder.encoding, encoder.encoding_errors,
            fast=not (self.read_from_replicas or self.load_balancing_strategy),
            table=self.cluster_response_callbacks,
            cluster_callbacks=cluster_callbacks,
            batch_slots=self._cached_batch_slots if self._batches else None,
        )

    def _cached_batch_slots(self, enc: str, errs: str) -> Dict[Any, Any]:
        if self._batch_slots is None:
            self._batch_slots = _slots_of_batches(self._batches, enc, errs)
        return self._batch_slots

    def _route_slow(self, args: Sequence[Any], options: Any) -> Any:
        """The node redis-py's cluster pipeline would send ``args`` to, with
        its errors (None: a command only redis-py's path handles)."""
        name = args[0]
        if isinstance(name, str) and name.upper().startswith("HIMPORT"):
            return None
        strategy = self._execution_strategy
        pipe = self
        command_policies = pipe._policy_resolver.resolve(name.lower())
        passed_targets = options.pop("target_nodes", None) if options else None
        if passed_targets and not strategy._is_nodes_flag(passed_targets):
            target_nodes = strategy._parse_target_nodes(passed_targets)
        else:
            if not command_policies:
                command = name.upper()
                if len(args) >= 2 and f"{name} {args[1]}".upper() in pipe.command_flags:
                    command = f"{name} {args[1]}".upper()
                command_flag = pipe.command_flags.get(command)
                if not command_flag:
                    keys = pipe._get_command_keys(*args) if pipe.get_default_node() else None
                    if not keys:
                        command_policies = _CommandPolicies()
                    else:
                        command_policies = _CommandPolicies(
                            request_policy=_RequestPolicy.DEFAULT_KEYED,
                            response_policy=_ResponsePolicy.DEFAULT_KEYED,
                        )
                elif command_flag in pipe._command_flags_mapping:
                    command_policies = _CommandPolicies(request_policy=pipe._command_flags_mapping[command_flag])
                else:
                    command_policies = _CommandPolicies()
            target_nodes = strategy._determine_nodes(
                *args, request_policy=command_policies.request_policy, node_flag=passed_targets
            )
            if not target_nodes:
                raise redis.cluster.RedisClusterException(f"No targets were found to execute {args} command on")
        target_nodes = list(target_nodes)
        if len(target_nodes) > 1:
            raise redis.cluster.RedisClusterException(f"Too many targets for command {args}")
        return target_nodes[0]

    # -- I/O -----------------------------------------------------------------
    def _send_and_read(self, groups: List[_Group], rows: Any, stack: List[Any]) -> None:
        """Encode every group, take a connection per node, write all, read all.
        Errors are left on the groups (``error``, ``phase``); connections are
        released (dropped when their state is unknown)."""
        core = self.core
        for g in groups:
            g.redis_node = self.get_redis_connection(g.node)
            kw = g.redis_node.connection_pool.connection_kwargs
            _encode_group(g, core, kw, rows, stack)
            g.slow = bool(kw.get("decode_responses")) and any(stack[i][1] and NEVER_DECODE in stack[i][1] for i in g.idxs)
        try:
            # Every connection first: an exhausted pool raises before anything is sent.
            for g in groups:
                g.phase = "connect"
                try:
                    conn = g.conn = g.redis_node.connection_pool.get_connection()
                    if is_fast_connection(conn):
                        if conn._sock is None:
                            conn.connect()
                        if conn.health_check_interval:
                            conn.check_health()
                    else:
                        g.slow = True
                except MaxConnectionsError:
                    raise  # client-side exhaustion, not a node failure (as redis-py)
                except _CONNECTION_ERRORS as e:
                    g.error = _as_redis_error(e)
            # Then every write, before any read.
            for g in groups:
                if g.error is not None:
                    continue
                g.phase = "write"
                g.dirty = True
                try:
                    g.conn.send_packed_command([g.buf.take()], check_health=False)
                except _CONNECTION_ERRORS as e:
                    g.error = _as_redis_error(e)
                    continue
                g.phase = "read"
            self._read_all([g for g in groups if g.phase == "read"], rows, stack)
        finally:
            for g in groups:
                conn = g.conn
                if conn is None:
                    continue
                if g.dirty and (g.error is not None or len(g.out) < g.wire):
                    conn.disconnect()
                elif g.dirty and g.phase != "done":
                    conn.disconnect()
                g.redis_node.connection_pool.release(conn)
                g.conn = None

    def _read_all(self, groups: List[_Group], rows: Any, stack: List[Any]) -> None:
        """Read every group's replies: pollable connections as their data
        arrives, the others (TLS, connections fastredis does not drive,
        NEVER_DECODE) reply by reply through redis-py afterwards."""
        polled = [g for g in groups if not g.slow and type(g.conn._sock) is socket.socket and hasattr(select, "poll")]
        others = [g for g in groups if g not in polled] if len(polled) != len(groups) else []
        if len(polled) == 1:
            others.insert(0, polled.pop())
        if polled:
            self._read_polled(polled)
        for g in others:
            if g.slow:
                self._read_slow(g, rows, stack)
            else:
                self._read_blocking(g)

    def _read_blocking(self, g: _Group) -> None:
        conn = g.conn
        parser = conn._parser
        reader = parser._reader
        parser.connection_error = None
        g.err0 = parser.error_count
        push = parser.handle_push_response
        out = g.out
        try:
            reader.read_into(out, g.wire - len(out), push)
            while len(out) < g.wire:
                parser.read_from_socket()
                reader.read_into(out, g.wire - len(out), push)
        except _CONNECTION_ERRORS as e:
            g.error = _read_error(conn, e)
            return
        except ProtocolError as e:
            g.error = e
            return
        self._done(g)

    def _read_polled(self, groups: List[_Group]) -> None:
        poller = select.poll()
        by_fd: Dict[int, _Group] = {}
        now = time.monotonic()
        for g in groups:
            conn = g.conn
            parser = conn._parser
            parser.connection_error = None
            g.err0 = parser.error_count
            try:
                parser._reader.read_into(g.out, g.wire - len(g.out), parser.handle_push_response)
            except ProtocolError as e:
                g.error = e
                continue
            if len(g.out) >= g.wire:
                self._done(g)
                continue
            fd = conn._sock.fileno()
            by_fd[fd] = g
            g.last = now
            poller.register(fd, select.POLLIN)
        recv = _redispy.HiredisParser.read_from_socket
        while by_fd:
            timeouts = [g.conn.socket_timeout for g in by_fd.values() if g.conn.socket_timeout]
            wait_ms = None
            if timeouts:
                now = time.monotonic()
                wait_ms = max(0, min(g.last + g.conn.socket_timeout - now for g in by_fd.values() if g.conn.socket_timeout) * 1000)
            events = poller.poll(wait_ms)
            now = time.monotonic()
            for fd, _ in events:
                polled_group = by_fd.get(fd)
                if polled_group is None:
                    continue
                g = polled_group
                conn = g.conn
                parser = conn._parser
                try:
                    recv(parser)
                    parser._reader.read_into(g.out, g.wire - len(g.out), parser.handle_push_response)
                except _CONNECTION_ERRORS as e:
                    g.error = _read_error(conn, e)
                except ProtocolError as e:
                    g.error = e
                g.last = now
                if g.error is not None or len(g.out) >= g.wire:
                    poller.unregister(fd)
                    del by_fd[fd]
                    if g.error is None:
                        self._done(g)
            for fd, g in list(by_fd.items()):
                t = g.conn.socket_timeout
                if t and now - g.last >= t:
                    g.error = TimeoutError(f"Timeout reading from {g.conn._host_error()}")
                    poller.unregister(fd)
                    del by_fd[fd]

    def _read_slow(self, g: _Group, rows: Any, stack: List[Any]) -> None:
        """Reply by reply through ``conn.read_response`` (redis-py's parser or
        ours), honouring NEVER_DECODE."""
        conn = g.conn
        wire: List[int] = []
        for i in g.idxs:
            if g.asking:
                wire.append(-1)
            wire.append(i)
        out = g.out
        while len(out) < g.wire:
            i = wire[len(out)]
            options = stack[i][1] if i >= 0 else None
            try:
                if options and NEVER_DECODE in options:
                    r = conn.read_response(disable_decoding=True)
                else:
                    r = conn.read_response()
            except BusyLoadingError as e:  # a LOADING reply: the command did not run
                r = e
                g.errors += 1
            except ResponseError as e:
                r = e
                g.errors += 1
            except _CONNECTION_ERRORS as e:
                g.error = _as_redis_error(e)
                return
            except ProtocolError as e:
                g.error = e
                return
            out.append(r)
        self._done(g)

    def _done(self, g: _Group) -> None:
        conn = g.conn
        g.phase = "done"
        if conn.health_check_interval:
            conn.next_health_check = time.monotonic() + conn.health_check_interval
        parser = getattr(conn, "_parser", None)
        if isinstance(parser, FastParser) and not g.slow:
            g.errors = parser.error_count - g.err0
        if isinstance(parser, FastParser) and parser.connection_error is not None:
            parser.connection_error = None  # a LOADING reply, in its slot: drop the connection
            g.phase = "read"

    def _forget_node(self, g: _Group) -> None:
        """After a connection error on ``g``'s node: redis-py's clean-up (drop
        the pool's idle connections, try this node last when refreshing)."""
        redis_node = g.node.redis_connection
        if redis_node is not None:
            pool = redis_node.connection_pool
            try:
                with pool._lock:
                    pool.update_active_connections_for_reconnect()
                    pool.disconnect_free_connections()
            except Exception:
                pass
        self.nodes_manager.move_node_to_end_of_cached_nodes(g.node.name)


def _make_hot(method: str, command: str, params: str, sent: str, fallback: str, parent: Any = _PARENT_PIPELINE, owner: str = "fastredis.cluster.ClusterPipeline") -> Any:
    """A staging method from its ``HOT_COMMANDS`` row: append the arguments
    (routed and encoded at execute); a transaction, or a call the row does
    not handle, goes to ``parent``'s method (redis-py's pipeline: the sync
    one, or the asyncio one for :mod:`fastredis.asyncio.cluster`)."""
    guard = "self._tx" + (f" or {fallback}" if fallback else "")
    names = ", ".join(p.split("=")[0].strip() for p in params.split(","))
    source = (
        f"def {method}(self, {params}):\n"
        f"    if {guard}:\n"
        f"        return _PARENT.{method}(self, {names})\n"
        f"    self._stack.append((({command!r}, {sent},), _NO_OPTIONS))\n"
        f"    return self\n"
    )
    namespace: Dict[str, Any] = {"_PARENT": parent, "_NO_OPTIONS": _NO_OPTIONS}
    module, _, cls = owner.rpartition(".")
    exec(compile(source, f"<{module}.{method}>", "exec"), namespace)
    func = namespace[method]
    func.__qualname__ = f"{cls}.{method}"
    func.__doc__ = getattr(getattr(parent, method, None), "__doc__", None)
    return func


RedisCluster.pipeline_class = ClusterPipeline


def cluster_class_for(core: Any) -> type:
    """A :class:`RedisCluster` subclass running on ``core`` (``_resp_c`` or
    ``_resp_py``), node clients and pipelines alike.

    Used by the tests and benchmarks to run both twins in one process.

    Example::

        >>> from fastredis import _resp_py
        >>> cluster_class_for(_resp_py).pipeline_class.core is _resp_py
        True
    """
    from .client import client_class_for

    if core is _resp:
        return RedisCluster
    suffix = core.__name__.rsplit(".", 1)[-1]
    pipe = type(f"ClusterPipeline_{suffix}", (ClusterPipeline,), {"core": core})
    return type(
        f"RedisCluster_{suffix}", (RedisCluster,), {"node_client_class": client_class_for(core), "pipeline_class": pipe}
    )


# redis-py blocks some commands in cluster pipelines (MGET, PUBLISH, EVALSHA,
# ...), and its ``delete`` takes one key only: those keep redis-py's methods.
_BLOCKED = {c.replace(" ", "_").lower() for c in redis.cluster.PIPELINE_BLOCKED_COMMANDS} | {"delete"}
for _method, _row in HOT_COMMANDS.items():
    if _method not in _BLOCKED:
        setattr(ClusterPipeline, _method, _make_hot(_method, *_row))
del _method, _row


class _LazyRows:
    """``rows[i]``: command ``i``'s arguments, a batch row built when asked."""

    __slots__ = ("stack", "has_batch")

    def __init__(self, stack: List[Any], has_batch: bool) -> None:
        self.stack = stack
        self.has_batch = has_batch  # some entries are batch() rows

    def __getitem__(self, i: int) -> Tuple[Any, ...]:
        args = self.stack[i][0]
        return args.row(i - args.start) if type(args) is _BatchArgs else args  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self.stack)


_NO_KEY: Any = object()


def _batch_key_column(entry: _BatchArgs, plain: bool = True) -> Any:
    """The keys of a batch's rows: a list (the first argument is a column),
    one key (a scalar), or ``_NO_KEY``. ``plain``: numpy values as Python
    values (else only arrays are converted, and numpy scalars in a list stay)."""
    if len(entry.args) < 2:
        return _NO_KEY
    if 1 in entry.cols:
        column = entry.args[1]
        if plain:
            return list(_plain_column(column))
        tolist = getattr(column, "tolist", None)
        return list(tolist()) if callable(tolist) else column
    return entry.args[1]


def _batch_len(entry: _BatchArgs) -> int:
    return len(entry.args[entry.cols[0]])


def _encode_with_batches(buf: Any, idxs: List[int], stack: List[Any], rows: Any) -> None:
    """Encode commands ``idxs`` (ascending) into ``buf``; each run of rows of
    one ``batch()`` goes through the core's batch encoder with its columns
    cut to those rows."""
    command = buf.command
    j = 0
    n = len(idxs)
    while j < n:
        i = idxs[j]
        entry = stack[i][0]
        if type(entry) is not _BatchArgs:
            command(entry)
            j += 1
            continue
        start = entry.start
        end = start + _batch_len(entry)
        k = bisect_left(idxs, end, j + 1)
        run = idxs[j:k]
        whole = len(run) == end - start
        positions = run if start == 0 else [x - start for x in run]
        args = []
        for c, a in enumerate(entry.args):
            if c and c in entry.cols and not whole:
                if hasattr(a, "dtype"):
                    a = a[positions]
                elif len(positions) == 1:
                    a = [a[positions[0]]]
                else:
                    a = itemgetter(*positions)(a)
            args.append(a)
        buf.batch(args)
        j = k


def _route_groups(
    stack: List[Any],
    rows: Any,
    pending: List[int],
    asking: Dict[int, Tuple[str, int]],
    manager: Any,
    ask_node: Callable[[str, int], Any],
    slow_node: Callable[[Sequence[Any], Any], Any],
    enc: str,
    errs: str,
    fast: bool,
    table: Any,
    cluster_callbacks: Optional[List[int]],
    batch_slots: Optional[Callable[[str, str], Dict[Any, Any]]],
) -> Optional[List[_Group]]:
    """Group ``pending`` commands per node, in stack order within a node;
    ASK-redirected ones (``asking``: index -> (host, port), the node from
    ``ask_node``) in groups of their own (ASKING before each).

    The core (``_cluster.route``) places the commands it can (a name in
    ``_KEY_SPECS``, no options, str/bytes keys): it asks for one group per
    slot of ``manager.slots_cache``. Every other command (batch rows, options,
    other key types, commands off the table) comes back here, to the rules
    redis-py's pipeline routes by; ``slow_node(args, options)`` places those
    off the table. ``fast``: no replica reads (else every command is slow).
    ``table``: cluster result callbacks; the indexes of commands that need
    one are appended to ``cluster_callbacks`` (None: do not look). None: a
    command only redis-py's path handles. Shared by the sync and asyncio
    pipelines."""
    slots = manager.slots_cache
    groups: List[_Group] = []
    idx_lists: List[List[int]] = []
    by_name: Dict[str, int] = {}
    ask_by_name: Dict[str, int] = {}
    check_callbacks = cluster_callbacks is not None
    spec_callbacks = check_callbacks and any(str(k).upper() in _KEY_SPECS for k in table)
    batch_keys: Dict[int, Any] = {}

    def group_of(node: Any, ask: bool = False) -> int:
        index = ask_by_name if ask else by_name
        gid = index.get(node.name)
        if gid is None:
            g = _Group(node, ask)
            gid = index[node.name] = len(groups)
            groups.append(g)
            idx_lists.append(g.idxs)
        return gid

    by_node: Dict[int, int] = {}

    def slot_group(slot: int) -> int:
        nodes = slots.get(slot)
        if nodes:
            gid = by_node.get(id(nodes[0]))
            if gid is None:
                gid = by_node[id(nodes[0])] = group_of(nodes[0])
            return gid
        # No owner known: redis-py's lookup raises SlotNotCoveredError.
        return group_of(manager.get_node_from_slot(slot))

    def command_group(i: int) -> int:
        if asking and i in asking:
            return group_of(ask_node(*asking[i]), True)
        args, options = stack[i]
        if type(args) is _BatchArgs:
            key_of = batch_keys.get(id(args))
            if key_of is None:
                key_of = batch_keys[id(args)] = _batch_key_column(args)
            name = args.name
            spec = _KEY_SPECS.get(name) if fast and key_of is not _NO_KEY else None
            if spec == _ONE_KEY:
                args = (name, key_of[i - args.start] if type(key_of) is list else key_of)
            else:
                args = rows[i]
        else:
            name = args[0]
            spec = _KEY_SPECS.get(name) if fast and not (options and "target_nodes" in options) else None
        if check_callbacks and (spec is None or spec_callbacks) and name in table:
            cluster_callbacks.append(i)  # type: ignore[union-attr]
        slot = -1
        if spec == _ONE_KEY and len(args) > 1:
            slot = key_slot(args[1], enc, errs)
        elif spec is not None:
            slot = _multi_key_slot(args, spec, enc, errs)
        if slot >= 0:
            return slot_group(slot)
        node = slow_node(args, options)
        return -1 if node is None else group_of(node)

    specs = _KEY_SPECS if fast and not spec_callbacks else {}
    batches = batch_slots(enc, errs) if specs and batch_slots is not None else None
    if asking:
        for i in pending:
            if i in asking:
                idx_lists[command_group(i)].append(i)
        pending = [i for i in pending if i not in asking]
    if not _cluster.route(stack, pending, specs, enc, errs, slot_group, command_group, idx_lists, batches):
        return None
    return groups


def _slots_of_batches(batches: List[_BatchArgs], enc: str, errs: str) -> Dict[Any, Any]:
    """For each one-key ``batch()``: ``entry -> (start, slot of each row)``."""
    out: Dict[Any, Any] = {}
    for entry in batches:
        if _KEY_SPECS.get(entry.name) != _ONE_KEY:
            continue
        keys = _batch_key_column(entry, plain=False)  # rows with other key types: routed in Python
        if keys is _NO_KEY:
            continue
        if type(keys) is list:
            out[entry] = (entry.start, _cluster.slots_of(keys, enc, errs))
        else:
            slot = _cluster.slot_of(keys, enc, errs)
            if slot >= 0:
                out[entry] = (entry.start, [slot] * _batch_len(entry))
    return out


def _multi_key_slot(args: Sequence[Any], spec: int, enc: str, errs: str) -> int:
    """The one slot of a multi-key command, or -1 for redis-py's routing
    (which raises redis-py's error when the keys span slots)."""
    if spec == _ALL_KEYS:
        keys = args[1:]
    else:
        if len(args) < 3:
            return -1
        try:
            numkeys = int(args[2])
        except (TypeError, ValueError):
            return -1
        keys = args[3:3 + numkeys]
    if not keys:
        return -1
    slot = key_slot(keys[0], enc, errs)
    for k in keys[1:]:
        if key_slot(k, enc, errs) != slot:
            return -1
    return slot


_CommandPolicies: Any = redis.cluster.CommandPolicies
_RequestPolicy: Any = redis.cluster.RequestPolicy
_ResponsePolicy: Any = redis.cluster.ResponsePolicy


def _as_redis_error(e: BaseException) -> BaseException:
    if isinstance(e, (ConnectionError, TimeoutError)):
        return e
    if isinstance(e, socket.timeout):
        return TimeoutError(str(e) or "Timeout")
    return ConnectionError(str(e) or type(e).__name__)


def _read_error(conn: Any, e: BaseException) -> BaseException:
    """The error redis-py's reads raise for ``e``, after dropping ``conn``."""
    try:
        conn.disconnect()
    except Exception:
        pass
    if isinstance(e, (ConnectionError, TimeoutError)):
        return e
    if isinstance(e, socket.timeout):
        return TimeoutError(f"Timeout reading from {conn._host_error()}")
    return ConnectionError(f"Error while reading from {conn._host_error()} : {e.args}")


# -- transactions ------------------------------------------------------------
def _resendable_before_multi(args: Sequence[Any]) -> bool:
    """Whether a command sent before MULTI may be re-sent after a lost
    connection: an idempotent one, or WATCH/UNWATCH, whose state died with
    the connection anyway (a WATCH that held keys raises WatchError instead)."""
    return args[0] in ("WATCH", "UNWATCH") or is_idempotent(args)


class _PolicyTransactionStrategy(_TransactionStrategy):  # type: ignore[misc,valid-type]
    """redis-py's cluster transaction, re-sent only when that is safe: after
    a redirect (EXEC aborted, nothing applied) or a failure before MULTI was
    written; otherwise an outcome-unknown error names the commands. A
    connection lost while keys are watched raises ``WatchError``, as
    redis-py's single-node pipeline does (its cluster transaction would
    reconnect and go on unwatched)."""

    def __init__(self, pipe: Any) -> None:
        super().__init__(pipe)
        self._sent = False
        self._watched = False  # a WATCH succeeded on the transaction connection

    def _validate_watch(self) -> None:
        if not self._watching:
            self._watched = False
        super()._validate_watch()

    def _reinitialize_on_error(self, error: Any, failure_count: int) -> None:
        watch_lost = self._watching and self._watched and isinstance(error, (ConnectionError, TimeoutError, OSError))
        super()._reinitialize_on_error(error, failure_count)
        if watch_lost:
            self._watching = self._watched = False
            raise WatchError(f"A {type(error).__name__} occurred while watching one or more keys") from error

    def _execute_transaction(self, stack: List[Any], raise_on_error: bool) -> Any:
        conn = self._transaction_connection
        if self._watching and self._watched and conn is not None and conn._sock is not None:
            peer_closed = getattr(conn._parser, "peer_closed", None)
            if peer_closed is not None and peer_closed():
                self._reinitialize_on_error(ConnectionError("the server closed the watching connection"), 0)
        return super()._execute_transaction(stack, raise_on_error)

    def _get_client_and_connection_for_transaction(self) -> Tuple[Any, Any]:
        out = super()._get_client_and_connection_for_transaction()
        if self._executing:
            self._sent = True  # anything failing from here may have reached the node
        return out  # type: ignore[no-any-return]

    def _execute_transaction_with_retries(self, stack: List[Any], raise_on_error: bool) -> Any:
        held: List[BaseException] = []

        def do() -> Any:
            self._sent = False
            return self._execute_transaction(stack, raise_on_error)

        def retryable(error: BaseException) -> bool:
            if isinstance(error, self.SLOT_REDIRECT_ERRORS) or not self._sent or self._pipe.retry_writes:
                return True
            if isinstance(error, (ConnectionError, TimeoutError, OSError)):
                held.append(error)
                return False
            return True

        try:
            return self._retry.call_with_retry(
                do, lambda e, n: self._reinitialize_on_error(e, n), is_retryable=retryable, with_failure_count=True
            )
        except (ConnectionError, TimeoutError, OSError) as error:
            if not held or error is not held[-1]:
                raise
            try:
                self._reinitialize_on_error(error, 0)
            except Exception:
                pass
            raise outcome_unknown(_as_redis_error(error), [c.args for c in stack]) from error

    def _immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        sent = [False]

        def do() -> Any:
            sent[0] = False
            redis_node, connection = self._get_client_and_connection_for_transaction()
            sent[0] = True
            reply = self._send_command_parse_response(connection, redis_node, args[0], *args, **options)
            if args[0] == "WATCH":
                self._watched = True
            return reply

        def retryable(error: BaseException) -> bool:
            return not sent[0] or self._pipe.retry_writes or _resendable_before_multi(args) or not isinstance(error, (ConnectionError, TimeoutError, OSError))

        try:
            return self._retry.call_with_retry(do, self._reinitialize_on_error, is_retryable=retryable, with_failure_count=True)
        except (ConnectionError, TimeoutError, OSError) as error:
            if not sent[0] or self._pipe.retry_writes or _resendable_before_multi(args):
                raise
            raise outcome_unknown(_as_redis_error(error), [args]) from error
