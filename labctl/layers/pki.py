"""The PKI layer's inputs: the inventory seen as a PkiInput, and how to mint it here."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory, PkiSettings
from labctl.pki.backend import Backend
from labctl.pki.specs import PkiInput, PkiNode

if TYPE_CHECKING:
    from labctl.engine.actions import Action
    from labctl.engine.executor import Connector, Handler, Observer
    from labctl.engine.plan import Plan
    from labctl.layers import LayerContext
    from labctl.pki.store import PkiStore


def settings(inventory: Inventory) -> PkiSettings:
    if inventory.cluster.pki is None:
        raise LabctlError(
            "the inventory has no cluster.pki section; add at least "
            "`pki: {passphrase: {env: LABCTL_CA_PASSPHRASE}}` under cluster"
        )
    return inventory.cluster.pki


def pki_input(inventory: Inventory) -> PkiInput:
    """What to mint, from the inventory (pure)."""
    pki = settings(inventory)
    k = inventory.cluster.kubernetes
    return PkiInput(
        cluster_name=inventory.cluster.name,
        cluster_domain=k.cluster_domain,
        service_cidr=k.service_cidr,
        api_endpoint_name=k.api_endpoint.name,
        api_endpoint_address=k.api_endpoint.address,
        nodes=tuple(
            PkiNode(s.name, tuple(a.address for a in s.addresses()), s.roles)
            for s in inventory.servers
        ),
        operator=pki.operator,
        validity_days=pki.validity_days,
    )


def store_dir(inventory: Inventory, base_dir: Path) -> Path:
    directory = Path(settings(inventory).directory)
    return directory if directory.is_absolute() else base_dir / directory


def backend(name: str) -> Backend:
    """cfssl, builtin, or auto (cfssl when it is installed)."""
    if name == "auto":
        name = "cfssl" if shutil.which("cfssl") else "builtin"
    if name == "cfssl":
        from labctl.pki.cfssl_backend import CfsslBackend

        return CfsslBackend()
    from labctl.pki.builtin_backend import BuiltinBackend

    return BuiltinBackend()


# -- the bootstrap step: mint here, then push each node its files -------------------

ETCD_DIR = "/etc/ssl/etcd"
KUBE_DIR = "/etc/kubernetes/ssl"


@dataclass(frozen=True)
class NodeFile:
    path: str
    content: bytes = field(repr=False)
    mode: int
    secret: bool


def node_files(inp: PkiInput, store: PkiStore, node: str, root: str = "") -> list[NodeFile]:
    """What ``node`` gets from the store, and where (``root`` prefixes every path)."""
    from labctl.pki.specs import SERVICE_ACCOUNT, plan_certificates

    def place(directory: str, name: str) -> str:
        return f"{root}{directory}/{name}"

    files: list[NodeFile] = []
    ca = store.read_cert("ca")
    if ca is None:
        raise LabctlError("no CA in the PKI store yet; run `labctl pki mint`")
    files += [NodeFile(place(d, "ca.pem"), ca, 0o644, False) for d in (ETCD_DIR, KUBE_DIR)]
    control_plane = any(
        node in s.owner_nodes for s in plan_certificates(inp) if s.name == "apiserver"
    )
    for spec in plan_certificates(inp):
        if spec.is_ca or node not in spec.owner_nodes:
            continue
        cert, key = store.read_cert(spec.name), store.read_key(spec.name)
        if cert is None or key is None:
            raise LabctlError(f"{spec.name} is missing from the PKI store; run `labctl pki mint`")
        directory = ETCD_DIR if spec.name.startswith("etcd-") else KUBE_DIR
        files.append(NodeFile(place(directory, f"{spec.name}.pem"), cert, 0o644, False))
        files.append(NodeFile(place(directory, f"{spec.name}-key.pem"), key, 0o600, True))
    if control_plane:
        front_proxy = store.read_cert("front-proxy-ca")
        if front_proxy is not None:
            files.append(NodeFile(place(KUBE_DIR, "front-proxy-ca.pem"), front_proxy, 0o644, False))
        for suffix, mode, secret in (
            (".key", 0o600, True),
            (".pub", 0o644, False),
            (".trust.pem", 0o644, False),
        ):
            path = store.path(f"{SERVICE_ACCOUNT}{suffix}")
            if path.exists():
                files.append(NodeFile(place(KUBE_DIR, path.name), path.read_bytes(), mode, secret))
    return files


class PkiLayer:
    """``bootstrap``'s pki step: mint what the inventory needs, then push it over SSH.

    ``ctx.options["node_root"]`` prefixes remote paths (tests point every node at
    one loopback sshd, so each gets its own directory there).
    """

    name = "pki"

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        from labctl.engine.actions import LocalStep, PutFile, ssh_answers
        from labctl.engine.plan import Plan
        from labctl.pki.store import PkiStore

        inp = pki_input(ctx.inventory)
        digest = hashlib.sha256(repr(inp).encode()).hexdigest()
        yield Plan.of("pki: mint", [LocalStep("mint", "mint what the inventory needs", digest)])
        store = PkiStore(store_dir(ctx.inventory, ctx.base_dir))
        if ctx.dry_run and store.read_cert("ca") is None:
            return  # nothing minted yet: there is nothing to push to compare against
        actions: list[Action] = []
        for server in ctx.inventory.servers:
            # A server the power step just switched on may still be booting.
            actions.append(ssh_answers(server.name, ctx.inventory.lab.ssh.boot_wait))
            root = ctx.options.get("node_root", "").replace("{node}", server.name)
            actions += [
                PutFile(server.name, f.path, f.content, f.mode, "root:root", secret=f.secret)
                for f in node_files(inp, store, server.name, root)
            ]
        yield Plan.of("pki: push", actions)

    def handlers(self, ctx: LayerContext) -> dict[str, Handler]:
        def mint(action: Action, connector: Connector) -> bool:
            from labctl.pki.check import mint_all
            from labctl.pki.store import PkiStore
            from labctl.secrets import resolve

            pki = settings(ctx.inventory)
            passphrase = resolve(
                pki.passphrase, used_at="cluster.pki.passphrase", base_dir=ctx.base_dir
            )
            store = PkiStore(store_dir(ctx.inventory, ctx.base_dir))
            report = mint_all(
                pki_input(ctx.inventory),
                store,
                backend(pki.backend),
                passphrase.encode(),
                dt.datetime.now(dt.UTC),
                dt.timedelta(days=pki.renew_within_days),
            )
            return bool(report.minted)

        return {"local": mint}

    def observers(self, ctx: LayerContext) -> dict[str, Observer]:
        # Files are observed by the executor itself, over SSH; what minting would do
        # is read from the store here (expiry, SANs, subject, signer), no key needed.
        def would_mint(action: Action) -> str | None:
            from labctl.pki.check import check
            from labctl.pki.store import PkiStore

            pki = settings(ctx.inventory)
            findings = check(
                pki_input(ctx.inventory),
                PkiStore(store_dir(ctx.inventory, ctx.base_dir)),
                dt.datetime.now(dt.UTC),
                dt.timedelta(days=pki.renew_within_days),
            )
            if not findings:
                return None
            shown = "; ".join(f"{f.name}: {f.reason}" for f in findings[:4])
            more = f"; and {len(findings) - 4} more" if len(findings) > 4 else ""
            return f"would mint {len(findings)}: {shown}{more}"

        return {"local": would_mint}

    def close(self) -> None:
        pass  # SSH sessions belong to the connector
