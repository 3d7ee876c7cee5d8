"""The first SSH login to a server labctl has just installed, and its new host key.

An installed node makes its host key on first boot, and no private key may
travel in the Ignition served over plain HTTP, so labctl cannot know the key
beforehand. Right after the installer reported success for this server's MAC
and the server was powered on from disk, labctl drops the server's old
known_hosts lines (its old OS is gone), takes the key the new OS shows on the
first connection, checks that the login works and the OS is the inventory's
distribution, and only then writes the key into known_hosts (atomically).
From then on every connection is checked strictly against it, as before.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.install import survey

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext

POLL = 2.0


def first_login(ctx: LayerContext, name: str, deadline: float | None = None) -> str:
    """Log in to ``name``, check its OS, record its host key; the key's fingerprint."""
    import paramiko

    from labctl.drivers.ssh import known_name, log_in
    from labctl.engine.targets import ssh_target

    server = ctx.inventory.server(name)
    target = replace(ssh_target(ctx.inventory, ctx.base_dir, name), connect_timeout=5.0)
    wait = ctx.inventory.lab.ssh.boot_wait if deadline is None else deadline
    end = time.monotonic() + wait
    host = known_name(target)
    last = "no answer yet"
    while True:
        client = paramiko.SSHClient()
        # Any key is taken here: it is read from the transport and kept only once
        # the login and the OS check below have passed.
        client.set_missing_host_key_policy(paramiko.MissingHostKeyPolicy())
        try:
            log_in(client, target)
            _, out, _ = client.exec_command(
                shlex.join(["cat", ctx.on_node(name, "/etc/os-release")]), timeout=10
            )
            release = survey.os_release(out.read().decode(errors="replace"))
            transport = client.get_transport()
            key = transport.get_remote_server_key() if transport else None
        except paramiko.AuthenticationException:
            client.close()
            raise LabctlError(
                f"{name}: the installed OS refused key login as {target.user} "
                "(lab.ssh.authorized_keys must hold the key labctl logs in with)"
            ) from None
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            last = str(exc) or type(exc).__name__
            if time.monotonic() + POLL > end:
                raise LabctlError(
                    f"{name}: the installed OS did not answer SSH within {wait:g} s ({last})"
                ) from None
            time.sleep(POLL)
            continue
        client.close()
        break
    if release.get("ID") != server.os.distribution:
        raise LabctlError(
            f"{name}: answers SSH after the install but runs "
            f"{release.get('ID') or 'an unknown OS'}, not {server.os.distribution}; "
            "its host key was not recorded"
        )
    assert key is not None
    _record(target.known_hosts, (host, name), f"{host} {key.get_name()} {key.get_base64()}")
    return key.fingerprint if hasattr(key, "fingerprint") else key.get_base64()[:16]


def _record(path: Path, names: tuple[str, ...], line: str) -> None:
    """known_hosts without any line for ``names``, plus ``line``."""
    kept = []
    if path.exists():
        for existing in path.read_text().splitlines():
            hosts = existing.split(" ", 1)[0].split(",") if existing.strip() else []
            if any(h in names for h in hosts):
                continue
            kept.append(existing)
    write_atomic(path, ("\n".join([*kept, line]) + "\n").encode(), 0o644)
