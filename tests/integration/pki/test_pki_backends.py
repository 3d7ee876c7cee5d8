"""Both backends against the real openssl, and mint/check/rotate on a real store."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from labctl.errors import DriverError, SecretError
from labctl.pki.backend import Backend
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.cfssl_backend import CfsslBackend
from labctl.pki.check import check
from labctl.pki.mint import mint_all, rotate
from labctl.pki.placement import node_files
from labctl.pki.specs import CLUSTER_SIGNER, plan_certificates
from labctl.pki.store import PkiStore
from tests.pki_sample import sample_input

pytestmark = pytest.mark.integration
PASS = b"test-passphrase-not-secret"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def openssl(*args: str) -> str:
    p = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def minted(backend: Backend, tmp_path: Path) -> PkiStore:
    store = PkiStore(tmp_path / "ssl")
    report = mint_all(sample_input(), store, backend, PASS, now())
    assert report.minted  # a fresh store needs everything
    return store


def test_openssl_verifies_every_cert(minted: PkiStore) -> None:
    for spec in plan_certificates(sample_input()):
        cert = minted.path(f"{spec.name}.pem")
        out = openssl("verify", "-CAfile", str(minted.path(f"{spec.ca}.pem")), str(cert))
        assert out.strip() == f"{cert}: OK"


def test_openssl_shows_usages_sans_subject_and_key(minted: PkiStore) -> None:
    for spec in plan_certificates(sample_input()):
        text = openssl("x509", "-noout", "-text", "-in", str(minted.path(f"{spec.name}.pem")))
        assert "prime256v1" in text, spec.name
        if spec.is_ca:
            assert "CA:TRUE" in text and "Certificate Sign, CRL Sign" in text
            assert "pathlen" not in text and "X509v3 Extended Key Usage" not in text
            continue
        if spec.is_intermediate:
            assert "CA:TRUE, pathlen:0" in text and "Certificate Sign, CRL Sign" in text
            assert "X509v3 Extended Key Usage" not in text
            continue
        assert "CA:FALSE" in text
        assert "Digital Signature, Key Encipherment" in text
        assert ("TLS Web Server Authentication" in text) == ("server auth" in spec.usages)
        assert ("TLS Web Client Authentication" in text) == ("client auth" in spec.usages)
        for h in spec.dns_names:
            assert f"DNS:{h}" in text, (spec.name, h)
        for ip in spec.ip_addresses:
            assert f"IP Address:{ip}" in text, (spec.name, ip)
        subj = openssl(
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            str(minted.path(f"{spec.name}.pem")),
        )
        assert f"CN={spec.common_name}" in subj
        for o in spec.organizations:
            assert f"O={o}" in subj
        cert = x509.load_pem_x509_certificate(minted.path(f"{spec.name}.pem").read_bytes())
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        assert days == spec.validity_days


def test_layout_and_modes(minted: PkiStore) -> None:
    root = minted.root
    assert (root / "ca-config.json").exists()
    assert (root / "ca-key.pem.encrypted").exists()
    assert not (root / "ca-key.pem").exists()  # never a plaintext CA key on disk
    assert b"ENCRYPTED PRIVATE KEY" in (root / "ca-key.pem.encrypted").read_bytes()
    for p in root.iterdir():
        assert p.name == ".gitignore" or not p.name.startswith("."), f"left-over {p.name}"
        if p.name.endswith(("-key.pem", ".encrypted", ".key")):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
    for spec in plan_certificates(sample_input()):
        assert (root / f"{spec.name}.json").exists()
    for f in ("service-account.key", "service-account.pub", "service-account.trust.pem"):
        assert (root / f).exists()
    with pytest.raises(SecretError) as e:
        minted.read_ca_key("ca", b"wrong")
    assert "wrong" not in str(e.value).replace("wrong passphrase", "")


def kdf_rounds(key_file: Path) -> int:
    """The PBKDF2 iteration count of an encrypted PKCS#8 key, as openssl parses it."""
    lines = openssl("asn1parse", "-in", str(key_file)).splitlines()
    kdf = next(i for i, line in enumerate(lines) if line.endswith(":PBKDF2"))
    assert ":hmacWithSHA256" in "\n".join(lines[kdf : kdf + 6])
    assert any(line.endswith(":aes-256-cbc") for line in lines)
    salt, rounds = lines[kdf + 2], lines[kdf + 3]  # SEQUENCE { salt, iterationCount, prf }
    assert "OCTET STRING" in salt and "INTEGER" in rounds, lines
    return int(rounds.rsplit(":", 1)[1], 16)


def test_ca_keys_are_sealed_at_600000_rounds_and_openssl_opens_them(
    minted: PkiStore, tmp_path: Path
) -> None:
    """Both backends' CA keys go through the store: PBKDF2-HMAC-SHA256, 600,000 rounds."""
    passin = tmp_path / "passin"
    passin.write_bytes(PASS)
    for ca in ("ca", "front-proxy-ca"):
        key_file = minted.path(f"{ca}-key.pem.encrypted")
        assert kdf_rounds(key_file) == 600_000
        out = openssl("pkey", "-in", str(key_file), "-passin", f"file:{passin}", "-pubout")
        cert = x509.load_pem_x509_certificate(minted.path(f"{ca}.pem").read_bytes())
        ours = cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        assert out.encode() == ours  # openssl opened the very key the certificate names
        passin.write_bytes(b"not-the-passphrase")
        wrong = subprocess.run(
            ["openssl", "pkey", "-in", str(key_file), "-passin", f"file:{passin}"],
            capture_output=True, check=False,
        )  # fmt: skip
        assert wrong.returncode != 0
        passin.write_bytes(PASS)


def test_a_key_sealed_the_old_way_opens_and_is_resealed_on_the_next_mint(
    minted: PkiStore, backend: Backend
) -> None:
    """A CA key written as labctl did before (BestAvailableEncryption: 2,048 rounds)."""
    key_file = minted.path("ca-key.pem.encrypted")
    plain = load_pem_private_key(key_file.read_bytes(), PASS)
    key_file.write_bytes(
        plain.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(PASS))
    )
    assert kdf_rounds(key_file) == 2048
    certs = {p.name: p.read_bytes() for p in minted.root.glob("*.pem")}
    report = mint_all(sample_input(), minted, backend, PASS, now())
    assert report.minted == []  # the same CA: nothing re-minted
    assert [f.name for f in report.resealed] == ["ca-key.pem.encrypted"]
    assert "2,048 rounds" in report.resealed[0].reason
    assert kdf_rounds(key_file) == 600_000
    assert kdf_rounds(minted.path("front-proxy-ca-key.pem.encrypted")) == 600_000
    again = load_pem_private_key(key_file.read_bytes(), PASS)
    assert again.public_key() == plain.public_key()
    assert {p.name: p.read_bytes() for p in minted.root.glob("*.pem")} == certs
    assert mint_all(sample_input(), minted, backend, PASS, now()).resealed == []


def test_a_wrong_passphrase_fails_a_mint_with_nothing_to_mint_and_writes_nothing(
    minted: PkiStore, backend: Backend
) -> None:
    before = {p.name: p.read_bytes() for p in minted.root.iterdir()}
    with pytest.raises(SecretError, match=r"the passphrase does not open .*ca-key\.pem\.encrypted"):
        mint_all(sample_input(), minted, backend, b"a-different-long-passphrase", now())
    assert {p.name: p.read_bytes() for p in minted.root.iterdir()} == before


def test_a_short_passphrase_never_seals_a_ca_key(tmp_path: Path, backend: Backend) -> None:
    store = PkiStore(tmp_path / "ssl")
    with pytest.raises(SecretError, match="shorter than 12 characters"):
        mint_all(sample_input(), store, backend, b"eleven-char", now())
    assert not store.root.exists()


def test_second_run_mints_nothing(minted: PkiStore, backend: Backend) -> None:
    before = {p.name: p.read_bytes() for p in minted.root.iterdir()}
    report = mint_all(sample_input(), minted, backend, PASS, now())
    assert report.minted == []
    assert {p.name: p.read_bytes() for p in minted.root.iterdir()} == before


def test_check_finds_expiring_changed_and_foreign(
    minted: PkiStore, backend: Backend, tmp_path: Path
) -> None:
    inp = sample_input()
    assert check(inp, minted, now()) == []
    # expiring: look from 340 days ahead, everything leaf-level is within 30 days
    later = {f.name: f.reason for f in check(inp, minted, now() + dt.timedelta(days=340))}
    assert "expires" in later["apiserver"] and "ca" not in later
    # SANs: add an address to wind
    from dataclasses import replace

    nodes = tuple(
        replace(n, addresses=(*n.addresses, "31.31.164.212")) if n.name == "wind" else n
        for n in inp.nodes
    )
    changed = {f.name: f.reason for f in check(replace(inp, nodes=nodes), minted, now())}
    assert set(changed) == {"etcd-server-wind", "etcd-peer-wind", "kubelet-wind"}
    assert "SANs differ" in changed["kubelet-wind"]
    # signed by another CA
    other = PkiStore(tmp_path / "other")
    mint_all(inp, other, backend, PASS, now())
    minted.write_cert("admin", other.read_cert("admin") or b"")
    assert {f.name: f.reason for f in check(inp, minted, now())} == {
        "admin": "signed by a different CA"
    }
    # missing key
    minted.path("kube-proxy-key.pem").unlink()
    report = mint_all(inp, minted, backend, PASS, now())
    assert {f.name for f in report.minted} == {"admin", "kube-proxy"}
    assert check(inp, minted, now()) == []


def test_rotate_keeps_old_sa_key_trusted(minted: PkiStore, backend: Backend) -> None:
    inp = sample_input()
    old_pub = minted.read_sa_public()
    old_api = minted.read_cert("apiserver")
    old_ca = minted.read_cert("ca")
    rotate(inp, minted, backend, PASS, now())
    assert minted.read_sa_public() != old_pub
    trust = minted.read_trust()
    assert old_pub and old_pub in trust and (minted.read_sa_public() or b"") in trust
    assert minted.read_cert("apiserver") != old_api
    assert minted.read_cert("ca") == old_ca  # CA kept unless asked
    assert check(inp, minted, now()) == []
    # rotating one name touches only that one
    before = {p.name: p.read_bytes() for p in minted.root.glob("*.pem")}
    rotate(inp, minted, backend, PASS, now(), only="kube-proxy")
    after = {p.name: p.read_bytes() for p in minted.root.glob("*.pem")}
    assert {n for n in after if after[n] != before[n]} == {"kube-proxy.pem", "kube-proxy-key.pem"}
    # a second full rotation keeps both older keys
    rotate(inp, minted, backend, PASS, now())
    assert minted.read_trust().count(b"BEGIN PUBLIC KEY") == 3


def test_rotating_the_ca_reissues_its_leaves(minted: PkiStore, backend: Backend) -> None:
    inp = sample_input()
    rotate(inp, minted, backend, PASS, now(), only="front-proxy-ca")
    assert check(inp, minted, now()) == []
    openssl(
        "verify",
        "-CAfile",
        str(minted.path("front-proxy-ca.pem")),
        str(minted.path("front-proxy-client.pem")),
    )


def test_cfssl_error_carries_stderr(tmp_path: Path) -> None:
    spec = next(s for s in plan_certificates(sample_input()) if s.name == "admin")
    from dataclasses import replace

    from labctl.pki.backend import CaMaterial

    with pytest.raises(DriverError) as e:
        CfsslBackend().mint_cert(
            replace(spec, key_algo="dsa"),
            CaMaterial(*BuiltinBackend().mint_ca(plan_certificates(sample_input())[0])),
        )
    assert "cfssl gencert -ca failed" in str(e.value)
    assert "invalid algorithm" in str(e.value)  # cfssl's own stderr reaches the user
    with pytest.raises(DriverError, match="not found"):
        CfsslBackend(binary=str(tmp_path / "no-cfssl")).mint_ca(
            plan_certificates(sample_input())[0]
        )


def test_cfssl_never_sees_the_ca_key_on_disk(tmp_path: Path) -> None:
    """The real cfssl signs, but through a wrapper that records its arguments and files."""
    real = shutil.which("cfssl")
    assert real, "cfssl not found on PATH; install the Debian package golang-cfssl"
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "cfssl"
    wrapper.write_text(f'#!/bin/sh\necho "$* | $(ls -A)" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    store = PkiStore(tmp_path / "ssl")
    assert mint_all(sample_input(), store, CfsslBackend(str(wrapper)), PASS, now()).minted
    signing = [line for line in log.read_text().splitlines() if "-ca-key" in line]
    assert signing, "no cfssl call signed with the CA"
    for line in signing:
        args, files = line.split(" | ")
        key_arg = args.split("-ca-key ")[1].split()[0]
        assert key_arg.startswith("/dev/fd/"), line
        assert "key" not in files, f"a key file sat in cfssl's directory: {files}"
    ca = x509.load_pem_x509_certificate(store.read_cert("ca") or b"")
    leaf = x509.load_pem_x509_certificate(store.read_cert("apiserver") or b"")
    assert leaf.issuer == ca.subject  # and the signing really happened with that key


def _signed_by(signer: PkiStore | tuple[bytes, bytes], backend: Backend, profile: str) -> bytes:
    """A certificate of ``profile`` that the cluster signer (or the given CA) issued, as
    kube-controller-manager would for a certificates.k8s.io request."""
    from dataclasses import replace

    from labctl.pki.backend import CaMaterial

    if isinstance(signer, PkiStore):
        cert, key = signer.read_cert(CLUSTER_SIGNER), signer.read_key(CLUSTER_SIGNER)
        assert cert and key
        signer = (cert, key)
    admin = next(s for s in plan_certificates(sample_input()) if s.name == "admin")
    spec = replace(admin, name="csr-user", common_name="csr-user", profile=profile)
    return backend.mint_cert(spec, CaMaterial(*signer))[0]


def _verify(bundle: Path, cert: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(cert)
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(bundle), "-purpose", "sslclient", str(leaf)],
        capture_output=True,
        text=True,
        check=False,
    )


def _client_ca(store: PkiStore, tmp_path: Path) -> Path:
    """The client-CA bundle the control-plane node gets (what --client-ca-file names)."""
    files = {f.path: f.content for f in node_files(sample_input(), store, "fohn")}
    assert "/etc/kubernetes/ssl/client-ca.pem" not in {
        f.path for f in node_files(sample_input(), store, "wind")
    }
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(files["/etc/kubernetes/ssl/client-ca.pem"])
    return bundle


def test_the_cluster_signer_signs_leaves_only_and_stays_trusted_across_rotations(
    minted: PkiStore, backend: Backend, tmp_path: Path
) -> None:
    inp = sample_input()
    # What the cluster signer issues, the client-CA bundle verifies (openssl, like the
    # API server, takes the bundle's certificates as its anchors)...
    issued = _signed_by(minted, backend, "client")
    assert _verify(_client_ca(minted, tmp_path), issued, tmp_path).returncode == 0
    # ...but it may not make CAs of its own: path length 0 is enforced.
    from dataclasses import replace

    from labctl.pki.backend import CaMaterial

    admin = next(s for s in plan_certificates(inp) if s.name == "admin")
    signer = CaMaterial(
        minted.read_cert(CLUSTER_SIGNER) or b"", minted.read_key(CLUSTER_SIGNER) or b""
    )
    sub, sub_key_pem = backend.mint_cert(
        replace(admin, common_name="sub-signer", organizations=(), profile="intermediate-ca"),
        signer,
    )
    below = backend.mint_cert(admin, CaMaterial(sub, sub_key_pem))[0]
    chain, leaf = tmp_path / "chain.pem", tmp_path / "deeper.pem"
    chain.write_bytes(sub + (minted.read_cert(CLUSTER_SIGNER) or b""))
    leaf.write_bytes(below)
    deeper = subprocess.run(
        ["openssl", "verify", "-CAfile", str(minted.path("ca.pem")), "-untrusted", str(chain),
         str(leaf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert deeper.returncode != 0 and "path length" in deeper.stdout + deeper.stderr

    # A rotation mints a new signer and keeps the old one trusted: what the cluster
    # issued before still authenticates.
    old_signer = minted.read_cert(CLUSTER_SIGNER)
    rotate(inp, minted, backend, PASS, now())
    assert minted.read_cert(CLUSTER_SIGNER) != old_signer
    trust = minted.read_trust(CLUSTER_SIGNER)
    assert trust.startswith(minted.read_cert(CLUSTER_SIGNER) or b"-") and trust.count(b"BEGIN") == 2
    bundle = _client_ca(minted, tmp_path)
    assert _verify(bundle, issued, tmp_path).returncode == 0
    assert _verify(bundle, _signed_by(minted, backend, "client"), tmp_path).returncode == 0
    assert check(inp, minted, now()) == []

    # A new root CA withdraws every signer the old one made.
    rotate(inp, minted, backend, PASS, now(), include_cas=True)
    assert minted.read_trust(CLUSTER_SIGNER).count(b"BEGIN") == 1
    refused = _verify(_client_ca(minted, tmp_path), issued, tmp_path)
    assert refused.returncode != 0, refused.stdout
    assert check(inp, minted, now()) == []
