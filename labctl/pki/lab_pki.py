"""The lab's PKI as the inventory asks for it, and the store that holds it (``PkiSession``).

``labctl pki mint|check|list|rotate`` and the pki layer's mint step all need
the same things from the inventory: what to mint (``PkiInput``), where the
store is, which backend mints, the renewal threshold and the CA passphrase.
They get them here, once, so minting is written in one place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError, UsageError
from labctl.inventory import naming
from labctl.inventory.model import Inventory, PkiSettings
from labctl.pki.backend import Backend
from labctl.pki.check import Finding, check, key_findings
from labctl.pki.mint import MintReport, mint_all, rotate
from labctl.pki.specs import PkiInput, PkiNode
from labctl.pki.store import PkiStore
from labctl.secrets.references import resolve_passphrase

BACKENDS = ("auto", "cfssl", "builtin")


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
            PkiNode(
                s.name,
                tuple(a.address for a in s.addresses()),
                s.roles,
                naming.server_names(inventory, s.name),
            )
            for s in inventory.servers
        ),
        operator=pki.operator,
        validity_days=pki.validity_days,
        monitoring=monitoring_servers(inventory),
    )


def monitoring_servers(inventory: Inventory) -> tuple[str, ...]:
    """Where Prometheus runs, as render/monitoring/targets.py's ``monitoring_servers``
    says (the pki package sits below render): cluster.monitoring.servers, else the
    control plane; none when it runs on the operator's machine."""
    mon = inventory.cluster.monitoring
    if mon.operator:
        return ()
    if mon.servers:
        return mon.servers
    return tuple(s.name for s in inventory.with_role("control-plane"))


def input_digest(inp: PkiInput) -> str:
    """Changes exactly when what is to be minted changes (roles sorted: sets have no order)."""
    data = dataclasses.asdict(inp)
    text = json.dumps(data, sort_keys=True, default=lambda value: sorted(value))
    return hashlib.sha256(text.encode()).hexdigest()


def store_dir(inventory: Inventory, base_dir: Path) -> Path:
    directory = Path(settings(inventory).directory)
    return directory if directory.is_absolute() else base_dir / directory


def make_backend(name: str) -> Backend:
    """cfssl, builtin, or auto (cfssl when it is installed)."""
    if name not in BACKENDS:
        raise UsageError(f"unknown PKI backend {name!r}; backends are: {', '.join(BACKENDS)}")
    if name == "auto":
        name = "cfssl" if shutil.which("cfssl") else "builtin"
    if name == "cfssl":
        from labctl.pki.cfssl_backend import CfsslBackend

        return CfsslBackend()
    from labctl.pki.builtin_backend import BuiltinBackend

    return BuiltinBackend()


@dataclass(frozen=True)
class PkiSession:
    """The inventory's PKI and its store; ``backend`` overrides ``cluster.pki.backend``."""

    inventory: Inventory
    base_dir: Path
    backend: str | None = None

    @property
    def settings(self) -> PkiSettings:
        return settings(self.inventory)

    @property
    def input(self) -> PkiInput:
        return pki_input(self.inventory)

    @property
    def store(self) -> PkiStore:
        return PkiStore(store_dir(self.inventory, self.base_dir))

    @property
    def threshold(self) -> dt.timedelta:
        return dt.timedelta(days=self.settings.renew_within_days)

    def _passphrase(self) -> bytes:
        ref = self.settings.passphrase
        return resolve_passphrase(ref, used_at="cluster.pki.passphrase", base_dir=self.base_dir)

    def check_secrets(self) -> None:
        """Fail now, naming the field, if the CA passphrase cannot be resolved."""
        self._passphrase()

    def _backend(self) -> Backend:
        return make_backend(self.backend or self.settings.backend)

    def findings(self, now: dt.datetime | None = None) -> list[Finding]:
        """What needs (re)minting and why; reads certificates only, decrypts nothing."""
        return check(self.input, self.store, now or _now(), self.threshold)

    def key_findings(self) -> list[Finding]:
        """Each CA key the passphrase does not open, or sealed too weakly; decrypts each."""
        return key_findings(self.input, self.store, self._passphrase())

    def mint(self, now: dt.datetime | None = None) -> MintReport:
        """Mint what is missing, expiring or no longer matching; a second call mints nothing."""
        passphrase = self._passphrase()  # before any work: a missing one fails cleanly
        backend = self._backend()
        return mint_all(self.input, self.store, backend, passphrase, now or _now(), self.threshold)

    def rotate(
        self, only: str | None = None, include_cas: bool = False, now: dt.datetime | None = None
    ) -> MintReport:
        """Re-mint every leaf (or ``only``), the CAs too with ``include_cas``."""
        passphrase = self._passphrase()
        backend = self._backend()
        return rotate(self.input, self.store, backend, passphrase, now or _now(), only, include_cas)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
