"""The first SSH login to a server labctl has just installed, against the host key it planted.

labctl mints each server's SSH host key before the install
(``labctl.boot.hostkeys``) and plants it through the server's Ignition, so
the first connection has something to be checked against: right after the
installer reported success for this server's MAC and the server was powered on
from disk, labctl replaces the server's known_hosts lines with the planted
key's (its old OS is gone, and so is its old key) and connects with strict
checking. A node that shows any other key is refused with a sentence naming
both fingerprints, never believed. The login must work and the OS must be the
inventory's distribution and, when ``os.version`` names one, that version
(``VERSION_ID``): an installer that wrote another release is a failed install,
not a success.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.boot import hostkeys
from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.os import survey

if TYPE_CHECKING:
    import paramiko

    from labctl.drivers.ssh import SshTarget
    from labctl.engine.layer import LayerContext

POLL = 2.0


def first_login(ctx: LayerContext, name: str, deadline: float | None = None) -> str:
    """Pin the planted host key, log in to ``name``, check its OS; the key's fingerprint."""
    from labctl.targets import ssh_target

    server = ctx.inventory.server(name)
    target = replace(ssh_target(ctx.inventory, ctx.base_dir, name), connect_timeout=5.0)
    planted = hostkeys.load(ctx.state_dir, name)
    if planted is None:
        raise LabctlError(
            f"{name}: labctl holds no host key for it ({hostkeys.key_dir(ctx.state_dir)}); "
            "the key planted at its install is what its first SSH is checked against"
        )
    wait = ctx.inventory.lab.ssh.boot_wait if deadline is None else deadline
    return pin_and_check(
        target,
        planted,
        server.os.distribution,
        server.os.version,
        ctx.on_node(name, "/etc/os-release"),
        wait,
    )


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(base64.b64decode(key.get_base64())).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def pin_and_check(
    target: SshTarget,
    planted: hostkeys.HostKey,
    distribution: str,
    version: str | None,
    os_release_path: str = "/etc/os-release",
    wait: float = 60.0,
) -> str:
    """known_hosts holds only ``planted`` for the target; log in strictly and check the OS."""
    import paramiko

    from labctl.drivers.ssh import known_name, log_in

    name = target.name
    host = known_name(target)
    _record(target.known_hosts, (host, name), f"{host} {hostkeys.KEY_TYPE} {planted.blob}")
    end = time.monotonic() + wait
    last = "no answer yet"
    while True:
        client = paramiko.SSHClient()
        client.load_host_keys(str(target.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            log_in(client, target)
            _, out, _ = client.exec_command(shlex.join(["cat", os_release_path]), timeout=10)
            release = survey.os_release(out.read().decode(errors="replace"))
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise LabctlError(
                f"{name}: answers SSH with host key {fingerprint(exc.key)}, not the key "
                f"labctl planted through its Ignition ({planted.fingerprint}); refusing it "
                "(another machine on its address, or an install that did not use labctl's "
                "config)"
            ) from None
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
    found_id, found_version = release.get("ID"), release.get("VERSION_ID")
    if found_id != distribution:
        raise LabctlError(
            f"{name}: answers SSH after the install but runs "
            f"{found_id or 'an unknown OS'}, not {distribution}"
        )
    if version is not None and found_version != version:
        raise LabctlError(
            f"{name}: installed, but its /etc/os-release says {found_id} "
            f"VERSION_ID={found_version or '(none)'}, not os.version {version}; "
            "the installer wrote another release than the inventory's"
        )
    return planted.fingerprint


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
