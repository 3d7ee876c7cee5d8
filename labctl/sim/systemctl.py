"""A `systemctl` for simulated nodes, which have no systemd.

Installed as /usr/local/bin/systemctl inside every node (run by the node's own
python3, standard library only). It really starts, stops and reports units from
/etc/systemd/system/*.service (ExecStartPre, ExecStart, ExecStop, Environment,
EnvironmentFile, User and Group: a step prefixed "+" runs as root), keeps pids under
/run/labctl/units, enables units the way systemd does (a link in
multi-user.target.wants), and logs every action to
/var/log/labctl-systemctl.log. The node's boot runs `systemctl start-enabled`.
Restart= and dependencies between units are not supported.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

UNITS = Path("/etc/systemd/system")
WANTS = UNITS / "multi-user.target.wants"
RUN = Path("/run/labctl/units")
LOG = Path("/var/log/labctl-systemctl.log")
UNIT_LOGS = Path("/var/log/labctl-units")


def log(message: str) -> None:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as handle:
        handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")


def unit_name(name: str) -> str:
    return name if "." in name else f"{name}.service"


def parse(name: str) -> dict[str, list[str]]:
    path = UNITS / name
    if not path.exists():
        raise SystemExit(f"Unit {name} not found.")
    keys: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def environment(keys: dict[str, list[str]]) -> dict[str, str]:
    env = dict(os.environ)
    for value in keys.get("EnvironmentFile", []):
        optional = value.startswith("-")
        path = Path(value.lstrip("-"))
        if not path.exists():
            if optional:
                continue
            raise SystemExit(f"EnvironmentFile {path} does not exist")
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip().strip('"')
    for value in keys.get("Environment", []):
        for item in shlex.split(value):
            k, _, v = item.partition("=")
            env[k] = v
    return env


def pid_of(name: str) -> int | None:
    path = RUN / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        # Gone, or exiting while we read (the kernel answers ESRCH mid-read then).
        return None
    return None if state == "Z" else pid


def identity(keys: dict[str, list[str]], command: str = "") -> dict[str, Any]:
    """Popen's user and group for a unit's ``User=``/``Group=`` (none: root), as systemd
    runs them; a line prefixed "+" runs as root whatever they say."""
    if command.lstrip("-@:!").startswith("+"):
        return {}
    found: dict[str, Any] = {}
    if keys.get("User"):
        found["user"], found["extra_groups"] = keys["User"][-1], []
    if keys.get("Group"):
        found["group"] = keys["Group"][-1]
    return found


def start(name: str) -> int:
    if pid_of(name):
        return 0
    keys = parse(name)
    commands = keys.get("ExecStart", [])
    if not commands:
        raise SystemExit(f"{name} has no ExecStart=")
    argv = shlex.split(commands[0].lstrip("-@+!:"))
    RUN.mkdir(parents=True, exist_ok=True)
    out = UNIT_LOGS / f"{name}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    for command in keys.get("ExecStartPre", []):
        if run_step(name, "ExecStartPre", command, environment(keys), out, keys) != 0:
            return 1
    with out.open("ab") as handle:
        process = subprocess.Popen(
            argv, env=environment(keys), stdin=subprocess.DEVNULL, stdout=handle,
            stderr=handle, start_new_session=True, **identity(keys),
        )  # fmt: skip
    (RUN / f"{name}.pid").write_text(str(process.pid))
    log(f"start {name}: pid {process.pid}: {shlex.join(argv)}")
    return 0


def run_step(
    name: str,
    key: str,
    command: str,
    env: dict[str, str],
    out: Path,
    keys: dict[str, list[str]] | None = None,
) -> int:
    """One ExecStartPre= or ExecStop= line, to its end (its output in the unit's log); a
    failure counts unless the line starts with "-", as systemd has it."""
    argv = shlex.split(command.lstrip("-@+!:"))
    with out.open("ab") as handle:
        code = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, check=False,
            **identity(keys or {}, command),
        ).returncode  # fmt: skip
    log(f"{key} {name}: exit {code}: {shlex.join(argv)}")
    return 0 if command.startswith("-") else code


def group_alive(pgid: int) -> bool:
    """Whether any live process is still in process group ``pgid``.

    The unit's leader exits at SIGTERM long before daemons it started have
    let go of their ports; starting again before they have would leave the new
    ones unable to bind (snmpd then exits, and the unit runs on without it).
    """
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # exited while we looked
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            return True
    return False


def stop(name: str) -> int:
    pid = pid_of(name)
    if pid is None:
        log(f"stop {name}: not running")
        return 0
    # ExecStop= first (a container engine stops its container), then the group's signal.
    keys = parse(name) if (UNITS / name).exists() else {}
    for command in keys.get("ExecStop", []):
        run_step(name, "ExecStop", command, environment(keys), UNIT_LOGS / f"{name}.log", keys)
    with contextlib.suppress(ProcessLookupError):  # exited since pid_of looked
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_alive(pid):
        with contextlib.suppress(ProcessLookupError):  # it may exit at last meanwhile
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    (RUN / f"{name}.pid").unlink(missing_ok=True)
    log(f"stop {name}: pid {pid}")
    return 0


def enabled(name: str) -> bool:
    return (WANTS / name).exists()


def main(argv: list[str]) -> int:
    if not argv:
        verbs = "start|stop|restart|status|is-active|is-enabled|enable|disable|daemon-reload"
        print(f"usage: systemctl {verbs} UNIT")
        return 2
    command, units = argv[0], [unit_name(u) for u in argv[1:] if not u.startswith("-")]
    if command == "daemon-reload":
        log("daemon-reload")
        return 0
    if command == "start-enabled":
        # Only units installed in /etc/systemd/system (what layers install): the
        # node's /etc overlays the host's, whose own enabled units are not ours.
        names = sorted(p.name for p in WANTS.glob("*.service") if (UNITS / p.name).is_file())
        failed = 0
        for name in names:
            try:
                start(name)
            except (SystemExit, OSError) as exc:
                log(f"start {name} at boot failed: {exc}")
                failed = 1
        return failed
    code = 0
    for name in units:
        if command == "start":
            code |= start(name)
        elif command == "stop":
            code |= stop(name)
        elif command == "restart":
            stop(name)
            code |= start(name)
        elif command == "enable":
            WANTS.mkdir(parents=True, exist_ok=True)
            if not enabled(name):
                (WANTS / name).symlink_to(UNITS / name)
            log(f"enable {name}")
            if "--now" in argv:
                code |= start(name)
        elif command == "disable":
            (WANTS / name).unlink(missing_ok=True)
            log(f"disable {name}")
        elif command == "is-active":
            active = pid_of(name) is not None
            print("active" if active else "inactive")
            code |= 0 if active else 3
        elif command == "is-enabled":
            print("enabled" if enabled(name) else "disabled")
            code |= 0 if enabled(name) else 1
        elif command == "status":
            pid = pid_of(name)
            print(
                f"● {name}\n   Loaded: {UNITS / name}; {'enabled' if enabled(name) else 'disabled'}"
            )
            print(
                f"   Active: {'active (running)' if pid else 'inactive (dead)'}"
                + (f"\n Main PID: {pid}" if pid else "")
            )
            code |= 0 if pid else 3
        else:
            print(f"Unknown command verb {command}.")
            return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
