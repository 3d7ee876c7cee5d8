"""The Calico objects the API server must hold, gathered from the inventory, and applied.

In order: the CustomResourceDefinitions (Calico's manifest's, or the platform's
stand-ins when the inventory names no manifest, ``Platform.calico_kinds``), the rest
of the manifest unless calico-node is stood in for (the simulated lab cannot run its
images), the BGP password
Secret and the Role that lets calico-node read it, the IPPool, BGPConfiguration
and BGPPeers, and last each Node's BGP address, AS and reflector settings as
annotations on its Kubernetes Node. Definitions are applied first and waited
for (``Established``) so the objects of their kinds can be stored at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.calico import manifest as calico_manifest
from labctl.drivers.kubernetes import KubeRequestError, object_path
from labctl.errors import LabctlError
from labctl.inventory.model import Inventory, SecretRef
from labctl.kubernetes.api import KubeSession
from labctl.render import calico
from labctl.secrets import references as secrets

ESTABLISHED_TIMEOUT = 60.0


def cache_dir(base_dir: Path) -> Path:
    return base_dir / ".labctl" / "cache" / "calico"


@dataclass(frozen=True)
class Wanted:
    definitions: list[dict[str, Any]]
    objects: list[dict[str, Any]]  # everything after the definitions, in apply order
    source: str  # where the definitions come from, for messages


def wanted(
    inventory: Inventory,
    base_dir: Path,
    stand_in_node: bool,
    stand_in_kinds: list[dict[str, Any]] | None = None,
) -> Wanted:
    """What the API must hold. ``stand_in_node``: calico-node is stood in for (BIRD on
    the simulated lab), so of the manifest only its definitions are applied.
    ``stand_in_kinds``: the platform's definitions of Calico's kinds, applied when the
    inventory names no manifest, and any other object it gives, applied in any case
    (``Platform.calico_kinds``)."""
    pinned = inventory.cluster.calico.manifest
    given = list(stand_in_kinds or [])
    # What else the platform gives beside definitions: the identity of calico-node's
    # programs where it runs them outside calico-node's pods.
    docs = [d for d in given if d["kind"] != "CustomResourceDefinition"]
    if pinned is None:
        definitions = [d for d in given if d["kind"] == "CustomResourceDefinition"]
        source = "labctl's stand-in definitions"
    else:
        data = calico_manifest.fetch(pinned, cache_dir(base_dir))
        manifest = calico_manifest.documents(data, pinned.url)
        definitions, source = calico_manifest.definitions(manifest), pinned.url
        if not stand_in_node:
            docs = [d for d in manifest if d not in definitions]
    values = {
        key: secrets.resolve(ref, used_at=where, base_dir=base_dir)
        for key, where in calico.password_keys(inventory)
        if (ref := _ref(inventory, key)) is not None
    }
    objects = [
        *docs,
        *calico.password_access(inventory, values),
        *calico.calico_kinds(inventory),
        *calico.kubernetes_nodes(inventory),
    ]
    return Wanted(definitions, objects, source)


def _ref(inventory: Inventory, key: str) -> SecretRef | None:
    c = inventory.cluster.calico
    if key == "mesh":
        return c.mesh_password
    return next((p.password for p in c.peers if calico.peer_name(p.switch, p.address) == key), None)


def _established(crd: dict[str, Any] | None) -> bool:
    # A definition just created can come back with ``status`` or its ``conditions``
    # null (the API server has not filled them yet): not established, not a crash.
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def apply(session: KubeSession, want: Wanted) -> list[str]:
    """Apply everything; the paths of what was created or changed."""
    client = session.client()
    changed = session.apply(want.definitions)
    deadline = time.monotonic() + ESTABLISHED_TIMEOUT
    for crd in want.definitions:
        while not _established(client.get(object_path(crd))):
            if time.monotonic() > deadline:
                raise LabctlError(
                    f"the CustomResourceDefinition {crd['metadata']['name']} from {want.source} "
                    f"is not Established after {ESTABLISHED_TIMEOUT:g} s"
                )
            time.sleep(0.2)
    client.forget_kinds()
    registered = {n.name for n in session.nodes()}
    missing = [
        d["metadata"]["name"]
        for d in want.objects
        if d["kind"] == "Node" and d["metadata"]["name"] not in registered
    ]
    if missing:
        # An apply would create a Node with no kubelet behind it.
        raise LabctlError(
            f"not a Kubernetes Node yet: {', '.join(missing)} (run the kubernetes layer first)"
        )
    return changed + session.apply(want.objects)


def differing(session: KubeSession, want: Wanted) -> list[str]:
    return session.differing(want.definitions + want.objects)


BLOCK_AFFINITIES = "/apis/projectcalico.org/v3/blockaffinities"


def pod_blocks(session: KubeSession) -> dict[str, list[str]]:
    """Each node's pod blocks as Calico's IPAM claimed them (confirmed BlockAffinities),
    the blocks calico-node's BIRD announces. Calico picks a node's block itself (a
    pseudo-random start seeded by the node's name), when its first pod gets an
    address: a node with no pod yet has none. An API that serves no BlockAffinity
    (a manifest without Calico's IPAM kinds) holds no claimed block either."""
    out: dict[str, list[str]] = {}
    try:
        items = session.client().list(BLOCK_AFFINITIES)
    except KubeRequestError as exc:
        if exc.status != 404:
            raise
        items = []
    for item in items:
        spec = item.get("spec", {})
        if spec.get("state") != "confirmed" or spec.get("deleted") in (True, "true"):
            continue
        out.setdefault(str(spec["node"]), []).append(str(spec["cidr"]))
    return {node: sorted(blocks) for node, blocks in sorted(out.items())}
