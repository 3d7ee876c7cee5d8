"""The PKI layer's inputs: the inventory seen as a PkiInput, and how to mint it here."""

from __future__ import annotations

import shutil
from pathlib import Path

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory, PkiSettings
from labctl.pki.backend import Backend
from labctl.pki.specs import PkiInput, PkiNode


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
