"""A simulated Redfish BMC: the sushy-tools emulator serving one server's power, over HTTPS.

A server whose inventory BMC is ``type: redfish`` gets, in the simulated lab, the
Redfish emulator where an IPMI one would get ipmi_sim: on the BMC's address and port
(in the fabric namespace, beside the other BMCs), with the inventory's user and
password (an htpasswd file of its bcrypt hash, so no password is written), and its
systems driver ``redfish_system.ChassisDriver``, which drives the same chassis hooks
ipmi_sim's do. So ``labctl power off`` through Redfish really stops the node.

TLS as the driver expects it: over ``scheme: https`` the emulator serves a
certificate for the BMC's address signed by the simulated lab's BMC CA,
``STATE/bmc-ca.crt`` (made once per lab, its key 0600 beside it). An inventory for
the simulated lab names that file in ``bmc.ca_file``; one naming another CA gets the
driver's "not trusted" answer, as a real lab would. ``scheme: http`` serves plain HTTP.

Started again the way it was started (``argv.json``) when a PDU outlet brings its
server's power back, as ipmi_sim is (``feeds.py``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labctl.drivers.bmc_probe import redfish_service_root
from labctl.errors import LabctlError
from labctl.sim import chassis
from labctl.sim.bmc import BmcHandle

CA_CERT = "bmc-ca.crt"
CA_KEY = "bmc-ca.key"
LOG = "emulator.log"


@dataclass(frozen=True)
class RedfishBmcSpec:
    name: str
    address: str
    port: int
    scheme: str
    username: str
    password: str = field(repr=False)
    state_dir: Path
    power_on: tuple[str, ...] = ()
    power_off: tuple[str, ...] = ()
    status_pidfile: Path | None = None
    initially_on: bool = False


def require() -> None:
    """sushy-tools importable, or a sentence saying how to get it."""
    try:
        import sushy_tools  # noqa: F401  (a dev dependency: only whether it is there)
    except ImportError:
        raise LabctlError(
            "a server's BMC is type redfish: the simulated lab serves it with the sushy-tools "
            "Redfish emulator, which is not installed (pip install 'sushy-tools>=2.0'; "
            "scripts/setup.sh installs it); nothing was made"
        ) from None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    """The key (private to root, as _write_private makes it), then its certificate."""
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def lab_ca(state: Path) -> Path:
    """The simulated lab's BMC CA (made once): the certificate's path."""
    cert_path, key_path = state / CA_CERT, state / CA_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labctl simulated lab BMC CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_pair(cert_path, key_path, cert, key)
    return cert_path


def certificate(state: Path, spec: RedfishBmcSpec) -> tuple[Path, Path]:
    """The BMC's certificate for its address, signed by the lab's BMC CA: (cert, key)."""
    ca_path = lab_ca(state)
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key((state / CA_KEY).read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{spec.name}-bmc")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(spec.address))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = spec.state_dir / "tls.crt", spec.state_dir / "tls.key"
    _write_pair(cert_path, key_path, cert, key)
    return cert_path, key_path


def render_config(spec: RedfishBmcSpec) -> str:
    """The emulator's configuration (a Python file it reads): one system, the server."""
    import uuid

    system = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{spec.name}.labctl-sim")),
        "name": spec.name,
        "power_state": "Off",  # unused: ChassisDriver reads the chassis
        "external_notifier": False,
        "nics": [],
    }
    values = {
        "SUSHY_EMULATOR_AUTH_FILE": str(spec.state_dir / "htpasswd"),
        "SUSHY_EMULATOR_FAKE_SYSTEMS": [system],
        "SUSHY_EMULATOR_STATE_DIR": str(spec.state_dir / "emulator"),
        "LABCTL_SIM_CHASSIS": str(spec.state_dir),
    }
    return "".join(f"{key} = {value!r}\n" for key, value in values.items())


def prepare(state: Path, spec: RedfishBmcSpec) -> list[str]:
    """Write the BMC's config, credentials, certificate and chassis hooks: its argv."""
    import bcrypt

    spec.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(spec.state_dir, 0o700)
    if any(c in spec.username for c in ":\n"):
        raise LabctlError(f"{spec.name} BMC: user name {spec.username!r} cannot go in htpasswd")
    digest = bcrypt.hashpw(spec.password.encode(), bcrypt.gensalt(rounds=6)).decode()
    _write_private(spec.state_dir / "htpasswd", f"{spec.username}:{digest}\n".encode())
    (spec.state_dir / "emulator.conf").write_text(render_config(spec))
    chassis.prepare(
        spec.state_dir, spec.power_on, spec.power_off, spec.status_pidfile, spec.initially_on
    )
    argv = [
        sys.executable, "-m", "labctl.sim.redfish_system",
        "--config", str(spec.state_dir / "emulator.conf"),
        "-i", spec.address, "-p", str(spec.port),
    ]  # fmt: skip
    if spec.scheme == "https":
        cert, key = certificate(state, spec)
        argv += ["--ssl-certificate", str(cert), "--ssl-key", str(key)]
    return argv


def start(state: Path, spec: RedfishBmcSpec, netns: str | None = None) -> BmcHandle:
    """Start the emulator for ``spec`` (inside ``netns`` when given); not yet waited for."""
    require()
    argv = prepare(state, spec)
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    launch = spec.state_dir / "argv.json"
    launch.write_text(json.dumps({"argv": argv, "env": env, "log": LOG}))
    launch.chmod(0o600)
    log = (spec.state_dir / LOG).open("ab")
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
    )
    return BmcHandle(process.pid, process)


def answers(address: str, port: int, scheme: str, timeout: float = 1.0) -> bool:
    """Whether the Redfish service root answers there (no credential sent)."""
    return redfish_service_root(address, port, timeout, scheme)


def wait_answering(handle: BmcHandle, spec: RedfishBmcSpec, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not handle.running():
            log = (spec.state_dir / LOG).read_text(errors="replace")[-500:]
            raise LabctlError(f"the Redfish emulator for {spec.name}'s BMC exited: {log}")
        if answers(spec.address, spec.port, spec.scheme, timeout=0.5):
            return
        time.sleep(0.1)
    handle.stop()
    raise LabctlError(
        f"the Redfish emulator for {spec.name}'s BMC did not answer on "
        f"{spec.scheme}://{spec.address}:{spec.port} within {wait:g} s"
    )
