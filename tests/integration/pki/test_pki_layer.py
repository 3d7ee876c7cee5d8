"""bootstrap's pki step against a real sshd: mint, push with the right modes, converge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.ssh import SshTarget
from labctl.engine.appliers import Appliers, LocalApplier, SshApplier
from labctl.engine.executor import Options, Outcome
from labctl.engine.layer import LayerContext
from labctl.engine.runner import LayerOutcome, run_layers
from labctl.inventory import load_inventory
from labctl.layers.pki import PkiLayer
from labctl.targets import SshConnector
from tests.conftest import REFERENCE
from tests.peers.sshd import SshdPeer, running_sshd

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


def test_pki_step_pushes_each_node_its_files_and_converges(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", "layer-test-passphrase")
    inventory_path = tmp_path / "inventory.yaml"
    inventory_path.write_text(REFERENCE.read_text())
    inventory = load_inventory(inventory_path).inventory
    assert inventory is not None
    nodes = tmp_path / "nodes"
    ctx = LayerContext(inventory, inventory_path, tmp_path / "state", node_root=f"{nodes}/{{node}}")
    target = SshTarget(
        "node", sshd.host, sshd.known_hosts, port=sshd.port, identity_file=sshd.client_key
    )

    def run(context: LayerContext, options: Options) -> LayerOutcome:
        # Every node is the one loopback sshd; the run closes its appliers, so each
        # run gets its own.
        appliers = Appliers(
            [
                SshApplier(SshConnector(lambda host: target)),
                LocalApplier(context, PkiLayer().local_work()),
            ]
        )
        (outcome,) = run_layers([PkiLayer()], context, options, appliers=appliers)
        return outcome

    first = run(ctx, Options())
    assert first.status == "applied", [r.as_dict() for r in first.reports]
    fohn, chequita = nodes / "fohn", nodes / "chequita"
    assert (fohn / "etc/kubernetes/ssl/apiserver.pem").exists()
    assert not (chequita / "etc/kubernetes/ssl/apiserver.pem").exists()  # not control plane
    key = chequita / "etc/ssl/etcd/etcd-peer-chequita-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert (chequita / "etc/ssl/etcd/ca.pem").read_bytes() == (tmp_path / "ssl/ca.pem").read_bytes()
    assert (fohn / "etc/kubernetes/ssl/service-account.key").exists()

    start = time.monotonic()
    again = run(ctx, Options())
    converged = time.monotonic() - start
    assert all(report.nothing_to_do for report in again.reports), [
        r.summary() for r in again.reports
    ]
    print(f"converged re-run of the pki step: {converged:.2f} s")

    key.write_bytes(b"tampered")
    dry = run(ctx, Options(dry_run=True))
    changes = [r for rep in dry.reports for r in rep.results if r.outcome is Outcome.WOULD_CHANGE]
    assert [r.reason for r in changes if "etcd-peer-chequita-key" in r.description] == [
        "content differs"
    ]
    assert key.read_bytes() == b"tampered"  # a dry run touches nothing
    mint = next(r for r in dry.reports[0].results if r.step_id == "local:pki.mint")
    assert (mint.outcome, mint.reason) == (Outcome.UNCHANGED, None)  # the store is current

    # A new API name: the dry run reads the store and says what would be re-minted.
    inventory_path.write_text(
        REFERENCE.read_text().replace("api.sthlm.lab.example.net", "k8s.sthlm.lab.example.net")
    )
    renamed = load_inventory(inventory_path).inventory
    assert renamed is not None
    ctx2 = LayerContext(
        renamed, inventory_path, ctx.state_dir, dry_run=True, node_root=ctx.node_root
    )
    planned = run(ctx2, Options(dry_run=True))
    mint = next(r for r in planned.reports[0].results if r.step_id == "local:pki.mint")
    assert mint.outcome is Outcome.WOULD_CHANGE
    assert mint.reason is not None and mint.reason.startswith("would mint 1: apiserver: SANs")
    assert "k8s.sthlm.lab.example.net" in mint.reason
