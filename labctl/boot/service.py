"""Start and stop the boot service: dnsmasq (DHCP, TFTP) and the HTTP endpoint, by pid.

Both run as processes of their own, so ``labctl boot serve`` can stay in the
foreground while the os layer starts the same service for the length of its
install and stops it after. Before anything starts the asset cache is
verified (a changed file is refused) and the HTTP endpoint has rendered every
answer; a daemon that dies at start is reported with its own words. Stopping
kills only the pids this service wrote, and only when that pid still runs
this state directory's program (a reused pid is left alone). ``netns`` runs
both inside a network namespace (the simulated lab and the tests). Each
served server's SSH host key is minted here, before the HTTP endpoint renders
the Ignition that carries it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.boot import assets, hostkeys
from labctl.boot.state import BootDirs
from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.inventory.model import Inventory
from labctl.programs import require
from labctl.render import boot as render

IPXE_DIR = Path("/usr/lib/ipxe")


class BootServiceError(LabctlError):
    """The boot service could not start, or is not running."""


@dataclass(frozen=True)
class Running:
    dnsmasq: int
    http: int


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _runs(pid: int, marker: str) -> bool:
    """``pid`` is alive and its command line names ``marker`` (our state directory)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return marker in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


def running(state_dir: Path) -> Running | None:
    dirs = BootDirs.of(state_dir)
    dns, http = _pid(dirs.dnsmasq_pid), _pid(dirs.http_pid)
    marker = str(dirs.root)
    if dns and http and _runs(dns, marker) and _runs(http, str(state_dir.resolve())):
        return Running(dns, http)
    return None


def prepare(inventory: Inventory, dirs: BootDirs) -> None:
    """dnsmasq's configuration and the TFTP root (iPXE binaries and the chain script)."""
    dirs.tftp.mkdir(parents=True, exist_ok=True)
    for loader in (render.BIOS_LOADER, render.UEFI_LOADER):
        source = IPXE_DIR / loader
        if not source.exists():
            raise BootServiceError(f"{source} is missing; it is in the Debian package ipxe")
        shutil.copyfile(source, dirs.tftp / loader)
    write_atomic(dirs.tftp / render.TFTP_SCRIPT, render.chain_script(inventory).encode())
    paths = render.DnsmasqPaths(
        str(dirs.tftp), str(dirs.leases), str(dirs.dnsmasq_log), str(dirs.dnsmasq_pid)
    )
    write_atomic(dirs.dnsmasq_conf, render.dnsmasq_conf(inventory, paths).encode())


def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _fingerprint(inventory: Inventory, inventory_path: Path, state_dir: Path) -> str:
    """Changes when the inventory, a cached asset or a server's host key does."""
    digest = hashlib.sha256(inventory_path.read_bytes())
    for release in assets.releases(inventory, inventory_path.parent):
        digest.update(_read(release.cache / assets.MANIFEST).encode())
    for server in render.servers_by_mac(inventory).values():
        key = hostkeys.load(state_dir, server.name)
        digest.update((key.public if key else "").encode())
    return digest.hexdigest()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _wait_started(process: subprocess.Popen[bytes], log: Path, ready: str, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            # What it said before its log was open went to stdout/stderr (the .out file).
            said = log.read_text(errors="replace") + _read(log.with_suffix(".out"))
            words = said.strip().splitlines()[-5:]
            raise BootServiceError(f"{what} stopped at start: {' / '.join(words) or 'no output'}")
        if ready in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise BootServiceError(f"{what} did not start within 15 s")


def start(
    inventory: Inventory,
    inventory_path: Path,
    state_dir: Path,
    netns: str | None = None,
    lifetime: float | None = None,
) -> Running:
    """Verify the assets, write the configuration, start dnsmasq and HTTP; their pids.

    With ``lifetime`` (seconds) the service stops itself after that long: the os
    layer's run may end early (a failed install) before its step that stops it.
    """
    state_dir, inventory_path = state_dir.resolve(), inventory_path.resolve()
    dirs = BootDirs.of(state_dir)
    # Each server's SSH host key, for its Ignition (minted once, kept in the state).
    for server in render.servers_by_mac(inventory).values():
        hostkeys.ensure(state_dir, server.name)
    # What it serves is rendered at its start: a service started from another
    # inventory (or other assets, or host keys) is restarted, never reused.
    serving = _fingerprint(inventory, inventory_path, state_dir)
    already = running(state_dir)
    if already is not None and _read(dirs.serving) == serving:
        return already
    stop(state_dir)  # half a service (one daemon dead) is started afresh
    for release in assets.releases(inventory, inventory_path.parent):
        assets.verify(release)
    dnsmasq = require("dnsmasq", "the boot service's DHCP and TFTP")
    prepare(inventory, dirs)
    write_atomic(dirs.serving, serving.encode())
    dirs.reports.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))

    with dirs.http_log.open("wb") as http_log:
        http = subprocess.Popen(
            _in_netns(
                netns,
                [
                    sys.executable,
                    "-m",
                    "labctl.boot.http",
                    str(inventory_path),
                    str(state_dir),
                    str(time.time() + lifetime if lifetime else 0),
                ],
            ),
            stdout=http_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    write_atomic(dirs.http_pid, f"{http.pid}\n".encode())
    try:
        _wait_started(http, dirs.http_log, "labctl boot: HTTP on", "the boot HTTP endpoint")
        dirs.dnsmasq_log.write_text("")
        dns_out = dirs.root / "dnsmasq.out"
        with dns_out.open("wb") as out:
            dns = subprocess.Popen(
                _in_netns(
                    netns,
                    [
                        # Its own deadline too: the HTTP side's may not find the pid file
                        # once the state directory is gone (a test's temporary one).
                        *(["timeout", f"{lifetime:.0f}"] if lifetime else []),
                        dnsmasq,
                        "--keep-in-foreground",
                        # As labctl's own user, not nobody: the TFTP root and logs live
                        # in a state directory that only this user may read.
                        f"--user={pwd.getpwuid(os.geteuid()).pw_name}",
                        f"--conf-file={dirs.dnsmasq_conf}",
                    ],
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _wait_started(dns, dirs.dnsmasq_log, "TFTP root is", "dnsmasq")
    except BootServiceError:
        stop(state_dir)
        raise
    # dnsmasq writes its own pid file; ours is written too in case it has not yet.
    write_atomic(dirs.dnsmasq_pid, f"{dns.pid}\n".encode())
    return Running(dns.pid, http.pid)


def _kill(pid: int | None, marker: str) -> bool:
    if pid is None or not _runs(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _runs(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _runs(pid, marker):
        os.kill(pid, signal.SIGKILL)
    # Reap it when it is our child (a service started by this process).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def stop_dnsmasq(state_dir: Path) -> bool:
    dirs = BootDirs.of(state_dir)
    stopped = _kill(_pid(dirs.dnsmasq_pid), str(dirs.root))
    dirs.dnsmasq_pid.unlink(missing_ok=True)
    return stopped


def stop(state_dir: Path) -> bool:
    """Stop what this state directory's service started; True when something ran."""
    dirs = BootDirs.of(state_dir)
    stopped = stop_dnsmasq(state_dir)
    stopped = _kill(_pid(dirs.http_pid), str(state_dir.resolve())) or stopped
    dirs.http_pid.unlink(missing_ok=True)
    return stopped
