"""The certificates' expiry textfile: what it holds, that Prometheus's own parser takes
it, and that node-exporter's unit reads the directory the pki layer writes it in."""

from __future__ import annotations

import datetime
import shlex
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.pki import expiry
from labctl.pki.placement import TEXTFILE, TEXTFILE_DIR, NodeFile
from labctl.render.monitoring import units
from tests.conftest import REFERENCE

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def certificate(name: str, days: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def unix(days: int) -> int:
    return int((START + datetime.timedelta(days=days)).timestamp())


def test_one_sample_per_certificate_file_a_bundle_at_its_earliest() -> None:
    files = [
        NodeFile("/etc/kubernetes/ssl/ca.pem", certificate("ca", 3650), 0o644, False),
        NodeFile("/etc/kubernetes/ssl/apiserver.pem", certificate("apiserver", 365), 0o644, False),
        NodeFile("/etc/kubernetes/ssl/apiserver-key.pem", b"a key", 0o600, True),
        NodeFile(
            "/etc/kubernetes/ssl/service-account.pub", b"-----BEGIN PUBLIC KEY--", 0o644, False
        ),
        NodeFile(
            "/etc/kubernetes/ssl/client-ca.pem",
            certificate("ca", 3650) + certificate("old signer", 20),
            0o644,
            False,
        ),
    ]
    assert expiry.samples(files) == [
        expiry.Sample("ca", "/etc/kubernetes/ssl/ca.pem", unix(3650)),
        expiry.Sample("apiserver", "/etc/kubernetes/ssl/apiserver.pem", unix(365)),
        expiry.Sample("client-ca", "/etc/kubernetes/ssl/client-ca.pem", unix(20)),
    ]
    placed = expiry.textfile(files)
    assert (placed.path, placed.mode, placed.secret) == (TEXTFILE, 0o644, False)
    assert placed.content.decode().splitlines()[2:] == [
        f'{expiry.METRIC}{{certificate="ca",path="/etc/kubernetes/ssl/ca.pem"}} {unix(3650)}',
        f'{expiry.METRIC}{{certificate="apiserver",path="/etc/kubernetes/ssl/apiserver.pem"}} '
        f"{unix(365)}",
        f'{expiry.METRIC}{{certificate="client-ca",path="/etc/kubernetes/ssl/client-ca.pem"}} '
        f"{unix(20)}",
    ]


def test_promtool_takes_the_textfile_labels_escaped() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is part of the dev environment (scripts/setup.sh installs it)")
    text = expiry.exposition(
        [expiry.Sample('odd"name\\', "/etc/ssl/etcd/odd\nname.pem", 1), expiry.Sample("b", "/b", 2)]
    )
    assert 'certificate="odd\\"name\\\\",path="/etc/ssl/etcd/odd\\nname.pem"' in text
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_file_that_claims_a_certificate_and_is_none_is_named() -> None:
    bad = NodeFile("/etc/ssl/etcd/x.pem", b"-----BEGIN CERTIFICATE-----\nnope\n", 0o644, False)
    with pytest.raises(LabctlError, match=r"/etc/ssl/etcd/x\.pem: not a PEM certificate"):
        expiry.samples([bad])


@pytest.mark.parametrize("runtime", ["container", "host"])
def test_node_exporter_reads_the_directory_the_pki_layer_writes_in(runtime: str) -> None:
    inv = require_inventory(REFERENCE)
    unit = units.node_exporter(inv, inv.servers[0], runtime)
    argv = shlex.split(next(x for x in unit.text.splitlines() if x.startswith("ExecStart="))[10:])
    flag = next(a for a in argv if a.startswith("--collector.textfile.directory="))
    root = units.HOST_ROOT if runtime == "container" else ""
    assert flag.split("=", 1)[1] == f"{root}{TEXTFILE_DIR}"
    assert TEXTFILE.startswith(TEXTFILE_DIR + "/") and TEXTFILE.endswith(".prom")
