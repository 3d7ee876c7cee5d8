"""Every file labctl would put on one node or switch, from the layers' own plans, with no lab.

``labctl render NODE`` shows what a bootstrap would push, so it is built from
the same source as the bootstrap: each layer's plans, made dry (``engine/facts.py``'s
dry-run rule, from an empty state directory: what a first bootstrap would do),
and every ``PutFile`` they hold for that target; plus what the boot service
answers the server with (its iPXE script, its Ignition and the installer's),
and the files that Ignition writes, at their paths on the node. Nothing here
applies a plan, asks a device, or reads anything the layers' fact gatherers do
not (the PKI store, the sealed Ceph keys).

What a dry run cannot know is said, never invented: a layer that needs a fact
only a real run makes (certificates before ``pki: mint`` ran) stops there with
a note. The one stand-in is the Ceph keys: the files they go into are masked
anyway, so a missing key store is planned as masked keys and the rest (ceph.conf,
units) is shown as it would be pushed. Secrets are masked as plans mask them:
a ``secret`` file's content is never carried out of here, and a file whose
secrets are filled in as it is written (``Fill``) is its masked text.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from labctl.ceph.keys import CephKeys
from labctl.engine.actions import PutFile
from labctl.engine.facts import FactPending
from labctl.engine.layer import Layer, LayerContext, NotBuilt
from labctl.errors import LabctlError
from labctl.inventory.model import Inventory, Server
from labctl.render import boot, ignition

BOOT = "boot"
# What the boot service answers with is not a file on the server: it is listed
# under this folder, beside the node's own tree.
BOOT_DIR = "boot-service"
MASKED_KEY = "<masked>"


@dataclass(frozen=True)
class Artefact:
    """One file: ``path`` on the target (absolute), or under ``boot-service/``."""

    path: str
    layer: str
    content: bytes  # what is shown: a secret's is a masked line, never its value
    mode: int
    size: int  # of what would be written (a secret's real size)
    sha256: str  # of what the plan holds (as `labctl plan -o json` gives it)
    masked: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "layer": self.layer,
            "mode": f"{self.mode:04o}",
            "size": self.size,
            "sha256": self.sha256,
            "masked": self.masked,
        }


class _MaskedKeys(dict[str, str]):
    """Every Ceph entity's key, masked: what a dry run with no key store plans from."""

    def __missing__(self, key: str) -> str:
        return MASKED_KEY


@dataclass(frozen=True)
class _StandInCephKeys(CephKeys):
    def as_dict(self) -> dict[str, str]:
        return _MaskedKeys()

    def describe(self) -> str:
        return "masked Ceph keys"


def _text(path: str, layer: str, text: str, mode: int = 0o644, masked: bool = False) -> Artefact:
    data = text.encode()
    return Artefact(path, layer, data, mode, len(data), hashlib.sha256(data).hexdigest(), masked)


def _pushed(action: PutFile, layer: str, node_root: str) -> Artefact:
    path = action.path.removeprefix(node_root) if node_root else action.path
    digest = action.content_sha256
    if action.secret:
        shown = f"<masked: {len(action.content)} bytes of secret, written by `labctl bootstrap`>\n"
        return Artefact(path, layer, shown.encode(), action.mode, len(action.content), digest, True)
    masked = action.fill is not None
    return Artefact(path, layer, action.content, action.mode, len(action.content), digest, masked)


def boot_artefacts(inventory: Inventory, server: Server) -> list[Artefact]:
    """What the boot service answers ``server`` with, and the files its Ignition writes.

    The SSH host key the os layer plants at install time is minted then: not shown."""
    if boot.pxe_nic(server) is None or inventory.lab.boot is None:
        return []
    config = ignition.config(inventory, server)
    found = [
        _text(f"{BOOT_DIR}/ipxe", BOOT, boot.ipxe_script(inventory, server)),
        _text(f"{BOOT_DIR}/ignition.json", BOOT, ignition.config_text(inventory, server)),
        _text(
            f"{BOOT_DIR}/installer.json",
            BOOT,
            boot.installer_config_text(
                inventory, server, version=server.os.version or "current", token=MASKED_KEY
            ),
            masked=True,
        ),
    ]
    for entry in config["storage"]["files"]:
        text = ignition.data_url_text(entry["contents"]["source"])
        found.append(_text(entry["path"], "ignition", text, entry.get("mode", 0o644)))
    for unit in config["systemd"]["units"]:
        if "contents" in unit:
            found.append(_text(f"/etc/systemd/system/{unit['name']}", "ignition", unit["contents"]))
    return found


def collect(
    ctx: LayerContext, layers: Sequence[Layer], target: str
) -> tuple[list[Artefact], list[str]]:
    """Every file for ``target`` in ``layers``' dry plans (``ctx.dry_run`` must be set),
    and what could not be shown without a lab, one line each."""
    assert ctx.dry_run, "render plans dry"
    found: list[Artefact] = []
    notes: list[str] = []
    node_root = ctx.node_root.replace("{node}", target)
    server = next((s for s in ctx.inventory.servers if s.name == target), None)
    if server is not None:
        found += boot_artefacts(ctx.inventory, server)
    for layer in layers:
        if isinstance(layer, NotBuilt):
            continue
        try:
            _layer_files(ctx, layer, target, node_root, found, notes)
        except LabctlError as exc:
            notes.append(f"{layer.name}: not shown: {exc}")
    return found, list(dict.fromkeys(notes))


def _layer_files(
    ctx: LayerContext,
    layer: Layer,
    target: str,
    node_root: str,
    found: list[Artefact],
    notes: list[str],
) -> None:
    ctx.facts.gather(getattr(layer, "facts", ()), ctx)
    _stand_in_ceph_keys(ctx, notes)
    plans = layer.plans(ctx)
    while True:
        try:
            plan = next(plans)
        except StopIteration:
            break
        except FactPending as exc:
            notes.append(f"{layer.name}: the rest is shown once {exc.plan} has run ({exc.why})")
            break
        finally:
            notes += [f"{layer.name}: {line}" for line in ctx.facts.take_assumed()]
        for step in plan.steps:
            action = step.action
            if isinstance(action, PutFile) and action.host == target:
                found.append(_pushed(action, layer.name, node_root))
        ctx.facts.gather(plan.makes, ctx)
        _stand_in_ceph_keys(ctx, notes)


def _stand_in_ceph_keys(ctx: LayerContext, notes: list[str]) -> None:
    pending = ctx.facts.stand_in(CephKeys, _StandInCephKeys())
    if pending is not None:
        notes.append(f"ceph: keyrings shown with masked keys: {pending}")


def matching(artefacts: Sequence[Artefact], what: str | None) -> list[Artefact]:
    """``artefacts`` whose layer is ``what`` or whose path matches the glob ``what``."""
    if not what:
        return list(artefacts)
    return [
        a
        for a in artefacts
        if a.layer == what
        or fnmatch.fnmatchcase(a.path, what)
        or fnmatch.fnmatchcase(a.path.lstrip("/"), what.lstrip("/"))
    ]
