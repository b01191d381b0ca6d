"""``python -m fastredis server``, run as a user would: in a subprocess."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator, List

import pytest
import redis

from fastredis.server import find_redis_server, find_redis_servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "-m", "fastredis", "server", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )


def _read_lines(proc: "subprocess.Popen[str]", n: int, timeout: float = 60) -> List[str]:
    """The next ``n`` lines of the command's stdout (a thread reads, so a
    silent command fails the test after ``timeout`` instead of hanging it)."""
    assert proc.stdout is not None
    lines: "queue.Queue[str]" = getattr(proc, "_lines", None) or queue.Queue()
    if not hasattr(proc, "_lines"):
        proc._lines = lines  # type: ignore[attr-defined]

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(EOF)

        threading.Thread(target=pump, daemon=True).start()
    got: List[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"no output after {timeout}s; got {got}") from None
        if line is EOF:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"server command exited ({proc.wait()}): {got} {err}")
        got.append(line)
    return got


EOF = "\0eof"


@pytest.fixture
def running() -> Iterator[List["subprocess.Popen[str]"]]:
    procs: List["subprocess.Popen[str]"] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=30)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_port_url_and_stop(sig: int, running: List["subprocess.Popen[str]"]) -> None:
    port = _free_port()
    proc = _cli("--port", str(port))
    running.append(proc)
    url, detail, hint = _read_lines(proc, 3)
    assert url == f"redis://127.0.0.1:{port}/0"
    assert "redis-server" in detail
    assert hint == "Ctrl-C to stop"
    assert redis.Redis.from_url(url).ping()
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 0
    assert _refused(port), "the redis-server outlived the command"


def test_extra_args_reach_the_server(running: List["subprocess.Popen[str]"]) -> None:
    proc = _cli("--", "--maxmemory", "10mb")
    running.append(proc)
    url = _read_lines(proc, 1)[0]
    assert redis.Redis.from_url(url, decode_responses=True).config_get("maxmemory") == {"maxmemory": "10485760"}


@pytest.mark.parametrize(
    "args,hint",
    [
        (["--", "--port", "6390"], "server --port N"),
        (["--", "--PORT=6390"], "server --port N"),
        (["--", "--bind", "0.0.0.0"], "--host"),
        (["--", "--daemonize", "yes"], "foreground"),
        (["--", "--requirepass", "secret"], "CONFIG SET requirepass"),
        (["--port", "70000"], "1-65535"),
        (["--cluster", "3", "--port", "7000"], "drop --port"),
        (["--cluster", "0"], "at least 1"),
        (["--binary", "/nonexistent/redis-server"], "not an executable"),
    ],
)
def test_conflicting_arguments_are_refused_at_once(args: List[str], hint: str) -> None:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fastredis", "server", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    assert hint in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert time.monotonic() - t0 < 50  # it used to wait out the 50 s start-up timeout


def test_a_port_in_use_is_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "fastredis", "server", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "in use" in done.stderr


def test_version_names_the_binary_and_every_server_found() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastredis", "server", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert find_redis_server() in done.stdout
    for version, path in find_redis_servers().items():
        assert version in done.stdout and path in done.stdout


def test_binary_option_runs_that_binary(running: List["subprocess.Popen[str]"]) -> None:
    versions = find_redis_servers()
    version, path = sorted(versions.items())[0]
    proc = _cli("--binary", path)
    running.append(proc)
    url, detail = _read_lines(proc, 2)
    assert path in detail
    assert redis.Redis.from_url(url).info("server")["redis_version"] == version


def test_the_command_exits_when_its_server_dies(running: List["subprocess.Popen[str]"]) -> None:
    proc = _cli()
    running.append(proc)
    url = _read_lines(proc, 3)[0]
    try:
        redis.Redis.from_url(url).shutdown(nosave=True)
    except redis.ConnectionError:
        pass
    assert proc.wait(timeout=30) == 1
    assert proc.stderr is not None and "exited" in proc.stderr.read()


def test_cluster(running: List["subprocess.Popen[str]"]) -> None:
    from redis.cluster import RedisCluster

    proc = _cli("--cluster", "3")
    running.append(proc)
    url, detail, hint = _read_lines(proc, 3, timeout=120)
    assert "Redis Cluster of 3 master(s)" in detail and hint == "Ctrl-C to stop"
    ports = [int(p) for p in detail.split("ports ", 1)[1].split(";")[0].split(", ")]
    rc = RedisCluster.from_url(url)
    assert len(rc.get_primaries()) == 3
    rc.set("{a}k", 1)
    rc.set("{b}k", 2)
    assert rc.get("{b}k") == b"2"
    rc.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert all(_refused(p) for p in ports)


def test_server_help_lists_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastredis", "server", "--help"], capture_output=True, text=True, timeout=60
    )
    for opt in ("--port", "--cluster", "--version", "--binary", "after --"):
        assert opt in done.stdout


def test_top_level_version() -> None:
    import fastredis

    done = subprocess.run([sys.executable, "-m", "fastredis", "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"fastredis {fastredis.__version__}"


if os.name != "posix":  # pragma: no cover
    pytestmark = pytest.mark.skip("signals and select on pipes need POSIX")
