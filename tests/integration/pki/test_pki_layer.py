"""bootstrap's pki step against a real sshd: mint, push with the right modes, converge.

With the certificates it writes each node's expiry textfile; Debian's node-exporter,
pointed at that node's textfile directory, must serve
``labctl_certificate_not_after_seconds`` for every certificate placed there, at the
notAfter the placed file itself holds.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from labctl.drivers.ssh import SshTarget
from labctl.engine.appliers import Appliers, LocalApplier, SshApplier
from labctl.engine.executor import Options, Outcome
from labctl.engine.layer import LayerContext
from labctl.engine.runner import LayerOutcome, run_layers
from labctl.inventory import load_inventory
from labctl.layers.pki import PkiLayer
from labctl.pki.expiry import METRIC
from labctl.pki.placement import TEXTFILE, TEXTFILE_DIR
from labctl.targets import SshConnector
from tests.conftest import REFERENCE
from tests.peers.sshd import SshdPeer, free_port, running_sshd

pytestmark = pytest.mark.integration
NODE_EXPORTER = "prometheus-node-exporter"


def node_exporter_reads(textfile_dir: Path) -> dict[tuple[str, str], float]:
    """What Debian's node-exporter serves from ``textfile_dir`` (textfile collector
    only), on a loopback port: ``METRIC``'s samples by (certificate, path)."""
    binary = shutil.which(NODE_EXPORTER)
    if binary is None:
        pytest.fail(f"{NODE_EXPORTER} is part of the dev environment (scripts/setup.sh)")
    port = free_port()
    argv = [binary, "--collector.disable-defaults", "--collector.textfile",
            f"--collector.textfile.directory={textfile_dir}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    text = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # A file the collector cannot parse is reported, not served: it must read clean.
    assert "node_textfile_scrape_error 0" in text, text
    found = {}
    for line in text.splitlines():
        if line.startswith(METRIC + "{"):
            labels, value = line[len(METRIC) + 1 :].rsplit("} ", 1)
            pairs = dict(pair.split("=", 1) for pair in labels.split(","))
            key = (pairs["certificate"].strip('"'), pairs["path"].strip('"'))
            found[key] = float(value)
    return found


def placed_not_after(root: Path) -> dict[tuple[str, str], float]:
    """Every certificate file under a node's root, by (name, path on the node): the
    earliest notAfter among the certificates it holds."""
    found = {}
    for pem in root.rglob("*.pem"):
        content = pem.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in content:
            continue  # a key
        certs = x509.load_pem_x509_certificates(content)
        path = "/" + str(pem.relative_to(root))
        found[(pem.name.removesuffix(".pem"), path)] = float(
            min(c.not_valid_after_utc.timestamp() for c in certs)
        )
    return found


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

    # Each node's certificates' expiry, as node-exporter serves it from the textfile.
    for node in (fohn, chequita):
        textfile = node / TEXTFILE.lstrip("/")
        assert oct(textfile.stat().st_mode & 0o777) == "0o644"
        read = node_exporter_reads(node / TEXTFILE_DIR.lstrip("/"))
        assert read == placed_not_after(node) and len(read) >= 4, read

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
