"""Every redis-py internal that fastredis touches, in one place, checked at import.

fastredis subclasses redis-py's client, pipeline and parser and calls some of
their private methods. Those names can move between redis-py releases. This
module imports each of them once, and checks that the methods fastredis
overrides or calls still exist with the shape it expects. If one has moved,
fastredis warns once (:class:`RedisPyCompatWarning`) and ``FAST_PATH`` is
False: every client then takes redis-py's own paths (slower, never wrong).

Supported: ``redis>=8.0.1,<8.2`` (8.0.1 and 8.1.0 are tested; on 8.2 the
cluster hooks are missing, see the README).

Example::

    >>> from fastredis import _redispy
    >>> _redispy.FAST_PATH in (True, False)
    True
    >>> _redispy.REDIS_VERSION >= (8, 0)
    True
"""

from __future__ import annotations

import inspect
import warnings
from os import getpid as _getpid
from typing import Any, Callable, List, Tuple

import redis
import redis.client
import redis.connection
from redis.utils import SENTINEL

__all__ = [
    "FAST_PATH",
    "PROBLEMS",
    "REDIS_VERSION",
    "RedisPyCompatWarning",
    "SENTINEL",
    "HiredisParser",
    "NOT_ENOUGH_DATA",
    "EMPTY_RESPONSE",
    "NEVER_DECODE",
    "OK_CALLBACKS",
    "PLAIN_CONNECTIONS",
    "SENTINEL_CONNECTIONS",
    "record_operation_duration",
    "record_error_count",
    "observability_enabled",
    "record_success",
    "record_failure",
    "single_connection_event",
    "AsyncHiredisParser",
    "ASYNC_PLAIN_CONNECTIONS",
    "ASYNC_SENTINEL_CONNECTIONS",
    "ASYNC_FAST_PATH",
    "ASYNC_PROBLEMS",
    "async_observability_enabled",
    "LEAN_POOL",
    "checkout",
    "checkin",
]


class RedisPyCompatWarning(RuntimeWarning):
    """The installed redis-py moved an internal fastredis hooks into; fastredis
    falls back to redis-py's own code paths (correct, slower)."""


def _version(text: str) -> Tuple[int, ...]:
    out: List[int] = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


REDIS_VERSION = _version(getattr(redis, "__version__", "0"))
PROBLEMS: List[str] = []


def _get(module: Any, name: str, default: Any = None) -> Any:
    if not hasattr(module, name):
        PROBLEMS.append(f"{getattr(module, '__name__', module)}.{name} is missing")
        return default
    return getattr(module, name)


def _need(cls: type, *names: str) -> None:
    for name in names:
        if not callable(getattr(cls, name, None)):
            PROBLEMS.append(f"{cls.__module__}.{cls.__qualname__}.{name} is missing")


def _params(owner: type, name: str, *expected: str) -> None:
    func = getattr(owner, name, None)
    if func is None:
        return  # reported by _need
    try:
        names = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        PROBLEMS.append(f"cannot read the signature of {func!r}")
        return
    if names[: len(expected)] != list(expected):
        PROBLEMS.append(f"{getattr(func, '__qualname__', func)} takes {names}, expected {list(expected)} first")


if not ((8, 0, 1) <= REDIS_VERSION < (9,)):
    PROBLEMS.append(f"redis-py {getattr(redis, '__version__', '?')} is outside the supported range >=8.0.1,<9")

try:
    from redis._parsers import hiredis as _hiredis_mod
    from redis._parsers import helpers as _helpers
except ImportError as e:  # pragma: no cover - depends on the installed redis-py
    PROBLEMS.append(f"redis._parsers: {e}")
    _hiredis_mod = _helpers = None  # type: ignore[assignment]


class _Missing:  # a base class that keeps the subclasses importable
    pass


HiredisParser: Any = _get(_hiredis_mod, "_HiredisParser", _Missing) if _hiredis_mod else _Missing
NOT_ENOUGH_DATA: Any = _get(_hiredis_mod, "NOT_ENOUGH_DATA", object()) if _hiredis_mod else object()
EMPTY_RESPONSE: Any = _get(redis.client, "EMPTY_RESPONSE", "EMPTY_RESPONSE")
NEVER_DECODE: Any = _get(redis.client, "NEVER_DECODE", "NEVER_DECODE")
#: redis-py's "OK -> True" callbacks, which the pipeline core applies inline.
OK_CALLBACKS: Tuple[Any, ...] = tuple(
    f for f in (getattr(_helpers, "parse_set_result", None), getattr(_helpers, "bool_ok", None)) if f is not None
)

_need(HiredisParser, "on_connect", "read_from_socket", "parse_error", "handle_push_response", "read_response")
_need(
    redis.Redis,
    "_execute_command",
    "_send_command_parse_response",
    "_close_connection",
    "parse_response",
    "execute_command",
)
_params(redis.Redis, "_send_command_parse_response", "self", "conn", "command_name")
_params(redis.Redis, "_close_connection", "self", "conn", "error", "failure_count", "start_time", "command_name")
_need(
    redis.client.Pipeline,
    "_execute_pipeline",
    "_execute_transaction",
    "pipeline_execute_command",
    "immediate_execute_command",
    "annotate_exception",
    "raise_first_error",
    "_disconnect_raise_on_watching",
    "load_scripts",
    "reset",
    "execute",
)
_params(redis.client.Pipeline, "__init__", "self", "connection_pool", "response_callbacks", "transaction", "shard_hint")
_params(redis.client.Pipeline, "_execute_pipeline", "self", "connection", "commands", "raise_on_error")
_params(redis.client.Pipeline, "_execute_transaction", "self", "connection", "commands", "raise_on_error")
_need(
    redis.connection.Connection,
    "send_packed_command",
    "read_response",
    "check_health",
    "connect",
    "disconnect",
    "_host_error",
    "should_reconnect",
)

#: Connection classes whose sockets the fast path may drive directly.
PLAIN_CONNECTIONS: Tuple[type, ...] = (
    redis.connection.Connection,
    redis.connection.SSLConnection,
    redis.connection.UnixDomainSocketConnection,
)
try:
    from redis.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection

    #: Sentinel-managed connections: fast path, plus their READONLY rule.
    SENTINEL_CONNECTIONS: Tuple[type, ...] = (SentinelManagedConnection, SentinelManagedSSLConnection)
except ImportError:  # pragma: no cover
    SENTINEL_CONNECTIONS = ()

try:
    from redis.observability import recorder as _recorder

    record_operation_duration: Callable[..., Any] = _recorder.record_operation_duration
    record_error_count: Callable[..., Any] = _recorder.record_error_count
except (ImportError, AttributeError):  # pragma: no cover - older redis-py

    def record_operation_duration(*args: Any, **kwargs: Any) -> None:
        return None

    def record_error_count(*args: Any, **kwargs: Any) -> None:
        return None

    _recorder = None  # type: ignore[assignment]


_observability_checked_at = -1e9
_observability_on = True


def observability_enabled() -> bool:
    """Whether redis-py's metrics are on; re-checked at most once a second,
    because redis-py's own check costs microseconds per command. When it
    cannot be told, it is assumed on (redis-py's path records as usual)."""
    global _observability_checked_at, _observability_on
    import time

    if _recorder is None:
        return False

    now = time.monotonic()
    if now - _observability_checked_at > 1.0:
        try:
            _observability_on = (
                _recorder._metrics_collector is not None or _recorder._get_or_create_collector() is not None
            )
        except Exception:
            _observability_on = True
        _observability_checked_at = now
    return _observability_on


def record_success(conn: Any, command_name: str, start_time: float) -> None:
    """redis-py's operation-duration metric for a command or pipeline that
    succeeded (call it when :func:`observability_enabled`)."""
    import time

    record_operation_duration(
        command_name=command_name,
        duration_seconds=time.monotonic() - start_time,
        server_address=getattr(conn, "host", None),
        server_port=getattr(conn, "port", None),
        db_namespace=str(getattr(conn, "db", "")),
    )


def record_failure(conn: Any, error: BaseException, retry_attempts: int) -> None:
    """redis-py's error-count metric for a command or pipeline that failed
    (call it when :func:`observability_enabled`)."""
    record_error_count(
        server_address=getattr(conn, "host", None),
        server_port=getattr(conn, "port", None),
        network_peer_address=getattr(conn, "host", None),
        network_peer_port=getattr(conn, "port", None),
        error_type=error,
        retry_attempts=retry_attempts,
        is_internal=False,
    )


def single_connection_event(client: Any) -> None:
    """Dispatch redis-py's event for a client that built its single connection."""
    try:
        from redis.event import AfterSingleConnectionInstantiationEvent, ClientType
    except ImportError:  # pragma: no cover
        return
    client._event_dispatcher.dispatch(
        AfterSingleConnectionInstantiationEvent(client.connection, ClientType.SYNC, client.single_connection_lock)
    )


# -- redis.asyncio ------------------------------------------------------------
# fastredis.asyncio subclasses redis.asyncio's client and pipeline, installs a
# parser derived from _AsyncHiredisParser, takes over the transport of a
# connection redis-py connected and handshook (``_writer.transport``,
# ``_reader._buffer``), and calls the pool's get_connection/release.
ASYNC_PROBLEMS: List[str] = []
_sync_problems = len(PROBLEMS)
try:
    import redis.asyncio.client as _aclient
    import redis.asyncio.connection as _aconnection

    AsyncHiredisParser: Any = _get(_hiredis_mod, "_AsyncHiredisParser", _Missing) if _hiredis_mod else _Missing
    _need(AsyncHiredisParser, "on_connect", "read_from_socket", "parse_error", "handle_push_response", "read_response")
    _need(
        _aclient.Redis,
        "execute_command",
        "_send_command_parse_response",
        "parse_response",
        "initialize",
        "aclose",
        "pipeline",
    )
    _params(_aclient.Redis._send_command_parse_response, "self", "conn", "command_name")
    _need(
        _aclient.Pipeline,
        "_execute_pipeline",
        "_execute_transaction",
        "pipeline_execute_command",
        "immediate_execute_command",
        "annotate_exception",
        "raise_first_error",
        "load_scripts",
        "reset",
        "execute",
    )
    _params(_aclient.Pipeline.__init__, "self", "connection_pool", "response_callbacks", "transaction", "shard_hint")
    _need(
        _aconnection.AbstractConnection,
        "send_packed_command",
        "read_response",
        "connect",
        "disconnect",
        "_host_error",
        "check_health",
    )
    _need(_aconnection.ConnectionPool, "get_connection", "release", "make_connection", "disconnect")
    #: redis-py's async connection classes fastredis may drive.
    ASYNC_PLAIN_CONNECTIONS: Tuple[type, ...] = (
        _aconnection.Connection,
        _aconnection.SSLConnection,
        _aconnection.UnixDomainSocketConnection,
    )
    try:
        from redis.asyncio.sentinel import SentinelManagedConnection as _ASentinelConn

        ASYNC_SENTINEL_CONNECTIONS: Tuple[type, ...] = (_ASentinelConn,)
    except ImportError:  # pragma: no cover
        ASYNC_SENTINEL_CONNECTIONS = ()
    try:
        from redis.asyncio.observability import recorder as _async_recorder
    except ImportError:  # pragma: no cover
        _async_recorder = None  # type: ignore[assignment]
except ImportError as e:  # pragma: no cover - depends on the installed redis-py
    PROBLEMS.append(f"redis.asyncio: {e}")
    AsyncHiredisParser = _Missing
    ASYNC_PLAIN_CONNECTIONS = ASYNC_SENTINEL_CONNECTIONS = ()
    _async_recorder = None  # type: ignore[assignment]
ASYNC_PROBLEMS.extend(PROBLEMS[_sync_problems:])
del PROBLEMS[_sync_problems:]

_async_observability_checked_at = -1e9
_async_observability_on = True


def async_observability_enabled() -> bool:
    """Whether redis-py's asyncio metrics are on (re-checked at most once a
    second); when it cannot be told, it is assumed on."""
    global _async_observability_checked_at, _async_observability_on
    import time

    if _async_recorder is None:
        return False
    now = time.monotonic()
    if now - _async_observability_checked_at > 1.0:
        try:
            _async_observability_on = _async_recorder._get_or_create_collector() is not None
        except Exception:
            _async_observability_on = True
        _async_observability_checked_at = now
    return _async_observability_on


#: The asyncio client's fast paths are usable (independent of the sync ones).
ASYNC_FAST_PATH = not ASYNC_PROBLEMS and not PROBLEMS
if ASYNC_PROBLEMS:
    warnings.warn(
        "fastredis.asyncio: the installed redis-py differs from what fastredis hooks into ("
        + "; ".join(ASYNC_PROBLEMS)
        + "); fastredis.asyncio falls back to redis-py's own code paths, which are correct but slower.",
        RedisPyCompatWarning,
        stacklevel=2,
    )

FAST_PATH = not PROBLEMS


# -- the connection pool: checkout and release without per-call bookkeeping ----
try:
    from redis.event import AfterConnectionReleasedEvent, ReAuthConnectionListener
except ImportError:  # pragma: no cover
    AfterConnectionReleasedEvent = ReAuthConnectionListener = None  # type: ignore[assignment,misc]


def _pool_shape_ok() -> bool:
    """Whether a default pool and connection have the attributes that
    :func:`checkout` and :func:`checkin` use (built, never connected)."""
    if AfterConnectionReleasedEvent is None:
        return False
    try:
        pool = redis.ConnectionPool()
        conn = redis.connection.Connection()
        mapping = pool._event_dispatcher._event_listeners_mapping
        return (
            isinstance(mapping, dict)
            and all(hasattr(pool, n) for n in ("_lock", "_available_connections", "_in_use_connections", "pid", "cache"))
            and callable(getattr(pool, "maint_notifications_enabled", None))
            and all(hasattr(conn, n) for n in ("_sock", "_parser", "_re_auth_token", "pid"))
        )
    except Exception:
        return False


#: Whether :func:`checkout`/:func:`checkin` may bypass redis-py's pool methods.
LEAN_POOL = FAST_PATH and _pool_shape_ok()
_PLAIN_POOL = redis.ConnectionPool


from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import TimeoutError as _RedisTimeoutError


def checkout(pool: Any) -> Any:
    """``pool.get_connection()``, minus redis-py's per-call metric
    bookkeeping, for an exact ``redis.ConnectionPool`` while redis-py's
    observability is off (about 10 µs of a 90 µs loopback GET on the
    development VM). The same connection, in the same state: connected, with
    nothing left to read (else reconnected, as redis-py does). Any other pool,
    a forked process, client-side caching or a new connection take
    redis-py's own method."""
    if (
        type(pool) is not _PLAIN_POOL
        or not LEAN_POOL
        or pool.cache is not None
        or pool.pid != _getpid()
        or observability_enabled()
    ):
        return pool.get_connection()
    with pool._lock:
        available = pool._available_connections
        if not available:
            conn = None
        else:
            conn = available.pop()
            pool._in_use_connections.add(conn)
    if conn is None:
        return pool.get_connection()
    try:
        parser = conn._parser
        poller = getattr(parser, "_poller", None)
        reader = getattr(parser, "_reader", None)
        # fastredis's parser: one poll tells "connected, nothing pending"
        # without redis-py's can_read (which formats an error text first).
        if conn._sock is None or poller is None or reader is None or reader.has_data() or poller.poll(0):
            conn.connect()
            try:
                if conn.can_read() and not pool.maint_notifications_enabled():
                    raise _RedisConnectionError("Connection has data")
            except (_RedisConnectionError, _RedisTimeoutError, OSError):
                conn.disconnect()
                conn.connect()
                if conn.can_read() and not pool.maint_notifications_enabled():
                    raise _RedisConnectionError("Connection not ready")
    except BaseException:
        checkin(pool, conn)
        raise
    return conn


def checkin(pool: Any, conn: Any) -> None:
    """``pool.release(conn)`` for a connection from :func:`checkout`:
    redis-py's steps (ownership, reconnect flag, back on the stack) without
    its metric bookkeeping, and without its released-connection event only
    when that event's sole listener is redis-py's re-authentication and the
    connection has no token to re-authenticate with."""
    if (
        type(pool) is not _PLAIN_POOL
        or not LEAN_POOL
        or pool.pid != _getpid()
        or conn.pid != pool.pid
        or conn._re_auth_token is not None
        or observability_enabled()
    ):
        pool.release(conn)
        return
    listeners = pool._event_dispatcher._event_listeners_mapping.get(AfterConnectionReleasedEvent)
    if not listeners or len(listeners) != 1 or type(listeners[0]) is not ReAuthConnectionListener:
        pool.release(conn)
        return
    with pool._lock:
        try:
            pool._in_use_connections.remove(conn)
        except KeyError:
            return  # not this pool's (redis-py ignores it too)
        if conn.should_reconnect():
            conn.disconnect()
        pool._available_connections.append(conn)


if PROBLEMS:
    warnings.warn(
        "fastredis: the installed redis-py differs from what fastredis hooks into ("
        + "; ".join(PROBLEMS)
        + "); fastredis falls back to redis-py's own code paths, which are correct but slower.",
        RedisPyCompatWarning,
        stacklevel=2,
    )


# -- redis.cluster (fastredis.cluster) ---------------------------------------
#: redis.cluster problems: the cluster client then runs redis-py's own code
#: (node clients, pipelines); the single-node fast path is unaffected.
CLUSTER_PROBLEMS: List[str] = []
try:
    import redis.cluster as _cluster

    for _name in ("ClusterPipeline", "TransactionStrategy", "PipelineStrategy", "PipelineCommand", "NodesManager",
                  "ClusterNode", "PIPELINE_BLOCKED_COMMANDS", "PRIMARY", "CommandPolicies", "RequestPolicy",
                  "ResponsePolicy", "RedisClusterException"):
        if not hasattr(_cluster, _name):
            CLUSTER_PROBLEMS.append(f"redis.cluster.{_name} is missing")
    if not CLUSTER_PROBLEMS:
        for _cls, _names in (
            (_cluster.RedisCluster, ("_execute_command", "_should_reinitialized", "_get_command_keys", "get_redis_connection")),
            (_cluster.NodesManager, ("create_redis_node", "create_redis_connections", "initialize", "move_slot",
                                     "get_node", "get_node_from_slot", "move_node_to_end_of_cached_nodes")),
            (_cluster.PipelineStrategy, ("_determine_nodes", "_is_nodes_flag", "_parse_target_nodes", "execute")),
            (_cluster.TransactionStrategy, ("_execute_transaction", "_execute_transaction_with_retries",
                                            "_get_client_and_connection_for_transaction", "_reinitialize_on_error",
                                            "_immediate_execute_command", "_send_command_parse_response")),
        ):
            for _name in _names:
                if not callable(getattr(_cls, _name, None)):
                    CLUSTER_PROBLEMS.append(f"redis.cluster.{_cls.__name__}.{_name} is missing")
        for _func, _expected in (
            (_cluster.NodesManager.create_redis_node, ["self", "host", "port"]),
            (_cluster.RedisCluster._execute_command, ["self", "target_node"]),
            (_cluster.ClusterPipeline.__init__, ["self", "nodes_manager", "commands_parser"]),
        ):
            _got = list(inspect.signature(_func).parameters)
            if _got[: len(_expected)] != _expected:
                CLUSTER_PROBLEMS.append(f"{_func.__qualname__} takes {_got}, expected {_expected} first")
        if not hasattr(_cluster.TransactionStrategy, "SLOT_REDIRECT_ERRORS"):
            CLUSTER_PROBLEMS.append("redis.cluster.TransactionStrategy.SLOT_REDIRECT_ERRORS is missing")
except ImportError as _e:  # pragma: no cover
    CLUSTER_PROBLEMS.append(f"redis.cluster: {_e}")

#: Whether fastredis.RedisCluster may use its fast node clients and pipelines.
CLUSTER_FAST_PATH = FAST_PATH and not CLUSTER_PROBLEMS
if CLUSTER_PROBLEMS:
    warnings.warn(
        "fastredis: the installed redis-py's cluster module differs from what fastredis.RedisCluster hooks into ("
        + "; ".join(CLUSTER_PROBLEMS)
        + "); fastredis.RedisCluster falls back to redis-py's own cluster code, which is correct but slower.",
        RedisPyCompatWarning,
        stacklevel=2,
    )
