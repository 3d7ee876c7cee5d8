"""The host runtime's etcd of the inventory's version onto every member, before any restart.

On the host runtime a member's unit runs a binary on the node, not an image, so a
new ``cluster.etcd.version`` changed the unit's restart trigger but nothing put that
version's etcd on the nodes: the rolling upgrade (``etcd/upgrade.py``) restarted the
member onto the old binary and then refused to go on because it did not report the
new version. Now, at any version but the default (the OS package's ``/usr/bin/etcd``),
the unit runs ``/opt/labctl/etcd/vX.Y.Z/etcd`` (``render/etcd.py``'s ``host_folder``)
and the layer's ``etcd.binaries`` step, a plan before the members plan, puts there
the etcd and etcdctl of ``labctl etcd build --version X.Y.Z`` from this machine's
build cache (``etcd/build.py``, ``gobuild.py``), on every member at once. Each node
is asked once what each binary says it is (``data/scripts/etcd-versions.sh``); only a
missing one or one of another version is sent (the SSH driver's atomic write), and
the node is asked again afterwards. A converged run costs one round trip per member.
A version in its own folder disturbs no running member: only its restart runs it.

``stale`` is pure; the work talks to the nodes through the SSH driver.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.data import shell
from labctl.engine.actions import LocalStep
from labctl.errors import LabctlError
from labctl.inventory.model import Inventory
from labctl.render import etcd as render

if TYPE_CHECKING:
    from labctl.drivers.ssh import SshSession
    from labctl.engine.layer import LayerContext

BINARIES = "etcd.binaries"
NAMES = ("etcd", "etcdctl")
VERSIONS = shell.body("etcd-versions")


def stale(answer: str, want: str) -> dict[str, str]:
    """The binaries whose line in ``etcd-versions.sh``'s ``answer`` is not ``want``, with
    what the node has instead ("missing", "unreadable" or the version it says). Pure."""
    said = dict(line.strip().partition(" ")[::2] for line in answer.splitlines() if line.strip())
    found = {}
    for name in NAMES:
        have = said.get(name, "-").strip()
        if have != want:
            found[name] = {"-": "missing", "": "missing", "?": "unreadable"}.get(have, have)
    return found


def describe(found: dict[str, str], want: str) -> str:
    return ", ".join(
        f"{name} is {have}"
        if have in ("missing", "unreadable")
        else f"{name} is {have}, not {want}"
        for name, have in found.items()
    )


def step(ctx: LayerContext) -> LocalStep | None:
    """The step that puts the inventory's etcd version on every member (host runtime at a
    version other than the default only; None otherwise)."""
    inventory = ctx.inventory
    folder = render.host_folder(inventory)
    if folder is None or render.platform_runtime(inventory, ctx.platform) != "host":
        return None
    names = [s.name for s in render.members(inventory)]
    want = inventory.cluster.etcd.version or ""
    return LocalStep(
        BINARIES,
        f"etcd {want} (etcd, etcdctl) in {folder} on {', '.join(names)}, from this machine's build",
        hashlib.sha256(f"{want}\0{folder}\0{' '.join(names)}".encode()).hexdigest(),
    )


def source(want: str) -> Path:
    """This machine's build of ``want``, or a sentence naming the command that makes it."""
    from labctl.etcd import build

    folder = build.bin_dir(build.tag(want))
    missing = [n for n in NAMES if not (folder / n).is_file()]
    if missing:
        raise LabctlError(
            f"{folder} lacks {', '.join(missing)}: on the host runtime the members run etcd "
            f"{want} from this machine's build, sent before they restart; run "
            f"`{build.build_command(build.tag(want))}`"
        )
    return folder


def node_stale(ssh: SshSession, folder: str, want: str) -> dict[str, str]:
    answer = ssh.run(
        ["sh", "-c", VERSIONS, "labctl-etcd-versions", folder],
        label=f"asking etcd and etcdctl in {folder} their version",
    ).text()
    return stale(answer, want)


def deliver(ssh: SshSession, folder: str, want: str, built: Path) -> list[str]:
    """Send what the node lacks of ``want`` from ``built`` into ``folder`` (0755, root),
    then check the node says ``want`` for both; the names sent."""
    found = node_stale(ssh, folder, want)
    for name in found:
        ssh.put_file(f"{folder}/{name}", (built / name).read_bytes(), mode=0o755, owner="root:root")
    still = node_stale(ssh, folder, want)
    if still:
        raise LabctlError(f"{ssh.target.name}: after sending etcd {want}, {describe(still, want)}")
    return list(found)


class BinariesWork:
    """``etcd.binaries``: every member gets the inventory's etcd in its version's folder."""

    def _run(self, ctx: LayerContext, send: bool) -> dict[str, dict[str, str] | LabctlError]:
        from labctl.drivers.ssh import session
        from labctl.targets import ssh_target

        inventory: Inventory = ctx.inventory
        want = inventory.cluster.etcd.version or ""
        folder = render.host_folder(inventory) or ""
        built = source(want) if send else None

        def one(name: str) -> dict[str, str]:
            with session(ssh_target(inventory, ctx.base_dir, name)) as ssh:
                path = ctx.on_node(name, folder)
                found = node_stale(ssh, path, want)
                if found and built is not None:
                    deliver(ssh, path, want, built)
                return found

        names = [s.name for s in render.members(inventory)]
        out: dict[str, dict[str, str] | LabctlError] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
            futures = {name: pool.submit(one, name) for name in names}
            for name, future in futures.items():
                try:
                    out[name] = future.result()
                except LabctlError as exc:
                    out[name] = exc
        return out

    def apply(self, ctx: LayerContext) -> bool:
        done = self._run(ctx, send=True)
        failed = [f"{name}: {r}" for name, r in done.items() if isinstance(r, LabctlError)]
        if failed:
            raise LabctlError("; ".join(failed))
        return any(bool(r) for r in done.values())

    def observe(self, ctx: LayerContext) -> str | None:
        want = ctx.inventory.cluster.etcd.version or ""
        said = []
        for name, found in self._run(ctx, send=False).items():
            if isinstance(found, LabctlError):
                said.append(f"{name} cannot be asked yet ({found}); etcd {want} would be sent")
            elif found:
                said.append(f"{name}: {describe(found, want)}")
        return "; ".join(said) or None
