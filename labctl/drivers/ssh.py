"""SSH driver (paramiko): run commands on nodes and write files on them atomically.

Host keys are checked strictly against a known_hosts file: an unknown or changed
key is a refusal, never an automatic accept. Authentication is by key only (an
agent or a key file). One connection per host is reused for every call.

File writes go through one shell snippet fed on stdin: a temp file in the target
directory, fsync, chmod/chown, then rename over the target, so a run killed
half-way never leaves a truncated file on a node. When the login user is not
root, commands run under ``sudo -n`` (no password prompt: a node that wants one
is a configuration error, reported as such).

Within ``shared_sessions()`` (bootstrap opens it for the whole run) every SSH user
in the process gets one connection per node from one pool (``session``,
``targets.py``'s connectors): the run's survey, the Ceph and BGP reads, the
binaries' checks. Outside it each user opens and closes its own, as before.
"""

from __future__ import annotations

import errno
import hashlib
import select
import shlex
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import paramiko

from labctl.data import shell
from labctl.drivers.neterrors import Peer, network_error
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, HostKeyError

_READ_CHUNK = 65536
_SEND_CHUNK = 1 << 20


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in. ``name`` is the node's name, used in messages."""

    name: str
    host: str
    known_hosts: Path
    user: str = "root"
    port: int = 22
    identity_file: Path | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 120.0

    @property
    def peer(self) -> Peer:
        return Peer(
            f"{self.name} ({self.host}:{self.port})",
            self.host,
            self.port,
            device="node",
            service="SSH server",
            network="the node's network",
        )


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes = field(repr=False)
    stderr: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


class RemoteCommandError(DriverError):
    """A remote command exited non-zero."""

    def __init__(self, target: SshTarget, result: RunResult, label: str | None = None) -> None:
        tail = result.stderr.decode("utf-8", errors="replace").strip()[-500:]
        what = label or f"`{shlex.join(result.argv)}`"
        hint = ""
        if "sudo: a password is required" in tail:
            hint = (
                f" ({target.user} needs passwordless sudo on {target.name}, as CoreOS's core has,"
                " or log in as root)"
            )
        super().__init__(
            f"{target.name}: {what} exited {result.exit_code}"
            + (f": {tail}" if tail else "")
            + hint
        )
        self.result = result


def log_in(client: paramiko.SSHClient, t: SshTarget) -> None:
    """Connect and authenticate as ``t`` says: its key file (or the agent without one),
    never other keys lying around, every phase bounded by its connect timeout."""
    client.connect(
        t.host,
        port=t.port,
        username=t.user,
        key_filename=str(t.identity_file) if t.identity_file else None,
        allow_agent=t.identity_file is None,
        look_for_keys=False,
        timeout=t.connect_timeout,
        banner_timeout=t.connect_timeout,
        auth_timeout=t.connect_timeout,
    )


def known_name(target: SshTarget) -> str:
    """How known_hosts names a host: bare on port 22, ``[host]:port`` elsewhere."""
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# File writes and stats on the host: labctl/data/scripts/ssh-*.sh (headers say what each does).
_PUT_SCRIPT = shell.body("ssh-put")
_STAT_SCRIPT = shell.body("ssh-stat")
_SURVEY_SCRIPT = shell.body("ssh-survey")


@dataclass(frozen=True)
class RemoteFile:
    sha256: str
    mode: int
    owner: str  # user:group


@dataclass(frozen=True)
class WantedFile:
    """What a survey compares a node's file with: its content's hash, mode and owner
    (``user`` or ``user:group`` as chown takes it; None: any)."""

    path: str
    sha256: str
    mode: int
    owner: str | None = None


class SshSession:
    """One authenticated connection to one node; use as a context manager."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self._client: paramiko.SSHClient | None = None
        # Threads sharing this session (a pooled one: several layers at once) connect it once.
        self._connecting = threading.Lock()

    # -- connection ------------------------------------------------------------

    def __enter__(self) -> SshSession:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        with self._connecting:
            self._connect()

    def _connect(self) -> None:
        if self._client is not None:
            return
        t = self.target
        if not t.known_hosts.is_file():
            raise HostKeyError(
                f"{t.name}: known_hosts file {t.known_hosts} does not exist; "
                "host keys must be known before labctl connects"
            )
        client = paramiko.SSHClient()
        client.load_host_keys(str(t.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            log_in(client, t)
        except paramiko.BadHostKeyException:
            client.close()
            raise HostKeyError(
                f"{t.name} ({t.host}:{t.port}): host key does not match {t.known_hosts}; "
                "refusing to connect (the node was reinstalled, or this is not the node). "
                "If it was reinstalled, compare its new key's fingerprint out of band "
                f"(on its console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then "
                f"`ssh-keygen -R {known_name(t)} -f {t.known_hosts}` and add the new key"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise AuthenticationError(
                f"{t.name} ({t.host}:{t.port}): key authentication as {t.user} was refused"
            ) from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise HostKeyError(
                    f"{t.name} ({t.host}:{t.port}): host key is not in {t.known_hosts}; "
                    "refusing to connect to an unknown host"
                ) from None
            raise DriverError(f"{t.name} ({t.host}:{t.port}): SSH failed: {exc}") from None
        except OSError as exc:  # timeouts included
            client.close()
            cause = exc
            if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
                # paramiko's summary has no errno; the socket's own error is inside it.
                inner = next(iter(exc.errors.values()), None)
                cause = inner if isinstance(inner, OSError) else exc
            raise network_error(
                cause, t.peer, f"connecting as {t.user}", f"{t.connect_timeout:g} s"
            ) from None
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- commands --------------------------------------------------------------

    def _wrap(self, argv: Sequence[str]) -> str:
        command = shlex.join(argv)
        if self.target.user != "root":
            command = "sudo -n -- " + command
        return command

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        label: str | None = None,
    ) -> RunResult:
        """Run ``argv`` (quoted, never interpreted by a shell on our side).

        An empty ``argv`` opens the login's shell with no terminal and feeds it ``stdin``
        (a switch's CLI reading configuration lines, as ``ssh switch < file`` does).

        ``label`` names the command in errors instead of its argv (for scripts).
        """
        self.connect()
        limit = self.target.command_timeout if timeout is None else timeout
        client = self._client
        transport = client.get_transport() if client is not None else None
        if transport is None or not transport.is_active():
            self.close()
            self.connect()
            client = self._client
            transport = client.get_transport() if client is not None else None
            if transport is None:
                raise network_error(
                    ConnectionResetError(errno.ECONNRESET, "the connection closed"),
                    self.target.peer,
                    label or f"`{shlex.join(argv)}`",
                    f"{limit:g} s",
                )
        what = label or f"`{shlex.join(argv)}`"
        try:
            return self._exchange(transport, argv, stdin, limit, what, check, label)
        except DriverTimeout:
            # The connection may be what hangs (a node that lost power sends no reset):
            # the next command, maybe another thread's on a shared session, starts anew.
            self.close()
            raise
        except OSError as exc:  # the connection broke under the command
            self.close()
            raise network_error(exc, self.target.peer, what, f"{limit:g} s") from None
        except (EOFError, paramiko.SSHException) as exc:
            # paramiko's own words for the same thing, when it notices while sending
            # (EOFError from a write that failed) or at the session layer.
            self.close()
            broke = ConnectionResetError(errno.ECONNRESET, f"{type(exc).__name__}: {exc}".strip())
            raise network_error(broke, self.target.peer, what, f"{limit:g} s") from None

    def _exchange(
        self,
        transport: paramiko.Transport,
        argv: Sequence[str],
        stdin: bytes | None,
        limit: float,
        what: str,
        check: bool,
        label: str | None,
    ) -> RunResult:
        channel = transport.open_session(timeout=self.target.connect_timeout)
        try:
            if argv:
                channel.exec_command(self._wrap(argv))
            else:  # the login's own shell (a switch's CLI), fed stdin as `ssh host < file`
                channel.invoke_shell()
            # In slices: paramiko's sendall re-slices what is left after every packet,
            # which copies it each time (quadratic: 81 MiB took 65 s on loopback, now 0.6 s).
            for start in range(0, len(stdin or b""), _SEND_CHUNK):
                channel.sendall((stdin or b"")[start : start + _SEND_CHUNK])
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + limit
            while True:
                # The channel's fd becomes readable on stdout data and on close;
                # the short timeout also catches stderr-only output.
                select.select([channel], [], [], 0.05)
                while channel.recv_ready():
                    out += channel.recv(_READ_CHUNK)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(_READ_CHUNK)
                if channel.exit_status_ready() and channel.eof_received:
                    break
                if time.monotonic() > deadline:
                    raise DriverTimeout(
                        f"{self.target.name}: {what} did not finish within {limit:g} s"
                    )
            code = channel.recv_exit_status()
        finally:
            channel.close()
        result = RunResult(tuple(argv), code, bytes(out), bytes(err))
        if check and code != 0:
            raise RemoteCommandError(self.target, result, label)
        return result

    # -- files -----------------------------------------------------------------

    def stat_file(self, path: str) -> RemoteFile | None:
        result = self.run(["sh", "-c", _STAT_SCRIPT, "stat", path], label=f"stat {path}")
        line = result.text().strip()
        if line == "absent":
            return None
        digest, mode, owner = line.split()
        return RemoteFile(digest, int(mode, 8), owner)

    def survey(
        self,
        files: Sequence[WantedFile],
        commands: Sequence[Sequence[str]],
        timeout: float | None = None,
    ) -> tuple[dict[str, RemoteFile | None], list[bool] | None]:
        """Every file's hash, mode and owner, and whether each command exits 0 now, in
        one round trip. The commands are run only when every file is as wanted (None
        otherwise): one that has an effect (a wait that starts a unit) never runs on
        files about to change."""
        args = [str(len(files))]
        for f in files:
            args += [f.path, f.sha256, f"{f.mode:o}", f.owner or "-"]
        args += [shlex.join(argv) for argv in commands]
        result = self.run(
            ["sh", "-c", _SURVEY_SCRIPT, "survey", *args], timeout=timeout, label="survey"
        )
        lines = result.text().splitlines()
        if len(lines) != len(files) + len(commands):
            raise DriverError(
                f"{self.target.name}: a survey of {len(files)} files and {len(commands)} "
                f"checks gave {len(lines)} lines"
            )
        stats: dict[str, RemoteFile | None] = {}
        for f, line in zip(files, lines, strict=False):
            if line.strip() == "absent":
                stats[f.path] = None
            else:
                digest, mode, owner = line.split()
                stats[f.path] = RemoteFile(digest, int(mode, 8), owner)
        said = [line.strip() for line in lines[len(files) :]]
        if not commands or "-" in said:
            return stats, None
        if set(said) - {"0", "1"}:
            raise DriverError(f"{self.target.name}: a survey's checks gave {said!r}")
        return stats, [word == "0" for word in said]

    def put_file(
        self, path: str, content: bytes, *, mode: int = 0o644, owner: str | None = None
    ) -> bool:
        """Write ``content`` to ``path`` atomically; return False when it was already so."""
        result = self.run(
            ["sh", "-c", _PUT_SCRIPT, "put", path, f"{mode:o}", owner or ""],
            stdin=content,
            label=f"writing {path}",
        )
        return result.text().strip() == "changed"

    def read_file(self, path: str) -> bytes:
        return self.run(["cat", "--", path]).stdout


class SessionPool:
    """One connected SshSession per node for everyone in the process, closed together.

    Keyed by the target without its connect timeout (a survey's shorter one reaches
    the same login); a session's own reconnect, after its connection broke or a
    command timed out, happens inside it, so every holder sees the new one.
    """

    def __init__(self) -> None:
        self._sessions: dict[SshTarget, SshSession] = {}
        self._lock = threading.Lock()

    def session(self, target: SshTarget) -> SshSession:
        key = replace(target, connect_timeout=0.0)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = SshSession(target)
                self._sessions[key] = session
        session.connect()
        return session

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()


_pool: SessionPool | None = None
_pool_lock = threading.Lock()


def current_pool() -> SessionPool | None:
    """The pool of ``shared_sessions()`` when one is open, else None."""
    return _pool


@contextmanager
def shared_sessions() -> Iterator[SessionPool]:
    """One SSH connection per node for the whole block, whoever in the process asks
    (threads included); all closed at its end. Nested, the outer block's pool serves."""
    global _pool
    with _pool_lock:
        outer = _pool
        pool = outer or SessionPool()
        _pool = pool
    try:
        yield pool
    finally:
        if outer is None:
            with _pool_lock:
                _pool = None
            pool.close()


@contextmanager
def session(target: SshTarget) -> Iterator[SshSession]:
    """A connected session to ``target``: the shared pool's when one is open (left
    open for the next user), else one of its own, closed at the end of the block."""
    pool = _pool
    if pool is not None:
        yield pool.session(target)
        return
    with SshSession(target) as own:
        yield own
