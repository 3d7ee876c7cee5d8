"""Fedora CoreOS install assets: stream metadata, SHA-256 and GnuPG signatures, for real.

No Fedora mirror can be reached from here, so the test publishes a release
itself, in Fedora CoreOS's layout: ``stable.json`` stream metadata whose
``architectures.x86_64.artifacts.metal.formats.pxe`` names a kernel, initramfs
and rootfs with their ``location`` (relative, as a mirror rewrites them),
``sha256`` and ``signature``, each file detached-signed by a throw-away key made
with the real ``gpg``. ``labctl boot fetch --keyring`` checks them with the real
``gpgv``. wind installs Fedora CoreOS stable while fohn and chequita stay on
Flatcar, so one mirror template (``{distribution}``) serves both layouts. A
file that does not match its published SHA-256, one signed by another key, and
a mirror that serves another stream are each refused, and nothing of them is
cached; the boot service then answers wind's MAC with the rootfs as well.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from labctl.boot import assets
from labctl.boot import http as boot_http
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE
from tests.integration.test_boot_service import make_mirror
from tests.labctl_process import run_labctl
from tests.peers.gpg import gpg, no_agents_left, signer  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.integration

WIND_MAC = "78:e7:d1:7a:8b:03"
VERSION = "41.20250105.3.0"
FILES = {
    "kernel": (f"fedora-coreos-{VERSION}-live-kernel-x86_64", b"FCOS-KERNEL" * 500),
    "initramfs": (f"fedora-coreos-{VERSION}-live-initramfs.x86_64.img", b"FCOS-INITRD" * 900),
    "rootfs": (f"fedora-coreos-{VERSION}-live-rootfs.x86_64.img", b"FCOS-ROOTFS" * 4000),
}


def publish(root: Path, key: Path, stream: str = "stable") -> Path:
    """A Fedora CoreOS stream in its own layout, every artifact signed with ``key``."""
    builds = root / "prod" / "streams" / stream / "builds" / VERSION / "x86_64"
    builds.mkdir(parents=True, exist_ok=True)
    pxe = {}
    for kind, (name, data) in FILES.items():
        (builds / name).write_bytes(data)
        gpg(key, "--detach-sign", "--output", str(builds / f"{name}.sig"), str(builds / name))
        location = f"prod/streams/{stream}/builds/{VERSION}/x86_64/{name}"
        pxe[kind] = {
            "location": location,
            "signature": f"{location}.sig",
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    metadata = {
        "stream": stream,
        "metadata": {"last-modified": "2025-01-20T17:00:00Z", "generator": "labctl test"},
        "architectures": {
            "x86_64": {
                "artifacts": {
                    "metal": {
                        "release": VERSION,
                        "formats": {"pxe": pxe, "raw.xz": {"disk": pxe["rootfs"]}},
                    }
                }
            }
        },
    }
    (root / "stable.json").write_text(json.dumps(metadata, indent=2))
    return builds


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(inventory, the publisher's keyring, the publisher's GnuPG home)."""
    home, keyring = signer(tmp_path, "fedora")
    flatcar = make_mirror(tmp_path / "mirror" / "flatcar", b"KERNEL" * 1000, b"INITRD" * 5000)
    for digests in flatcar.glob("*.DIGESTS"):  # one keyring holds every publisher's key here
        gpg(home, "--detach-sign", "--output", f"{digests}.sig", str(digests))
    image = flatcar / "flatcar_production_image.bin.bz2"
    gpg(home, "--detach-sign", "--yes", "--output", f"{image}.sig", str(image))
    publish(tmp_path / "mirror" / "fedora-coreos", home)
    text = REFERENCE.read_text().replace(
        "    dhcp: full\n",
        f"    dhcp: full\n    mirror: file://{tmp_path / 'mirror'}/{{distribution}}\n"
        "    assets: cache\n",
    )
    text = text.replace(
        "os: {distribution: flatcar, channel: alpha}",
        "os: {distribution: fedora-coreos, channel: stable}",
    )
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(text)
    return inventory, keyring, home


def fetch(inventory: Path, keyring: Path | None) -> subprocess.CompletedProcess[str]:
    extra = ["--keyring", str(keyring)] if keyring else []
    return run_labctl(
        "boot", "fetch", "-i", str(inventory), "-o", "json", *extra, cwd=inventory.parent
    )


def test_fetch_verifies_the_stream_s_checksums_and_signatures(lab: tuple[Path, Path, Path]) -> None:
    inventory_path, keyring, _ = lab
    first = fetch(inventory_path, keyring)
    assert first.returncode == 0, first.stderr
    fetched = {(f["release"], f["role"]): f for f in json.loads(first.stdout)}
    assert {r for (label, r) in fetched if label == "fedora-coreos stable"} == {
        "kernel",
        "initrd",
        "rootfs",
    }
    assert all(f["changed"] for f in fetched.values())
    inventory = require_inventory(inventory_path)
    release = assets.release_of(inventory, inventory_path.parent, inventory.server("wind"))
    assert release.path("rootfs").read_bytes() == FILES["rootfs"][1]
    manifest = assets.load_manifest(release)
    assert manifest["rootfs"]["release"] == VERSION
    assert manifest["initrd"]["sha256"] == hashlib.sha256(FILES["initramfs"][1]).hexdigest()
    again = fetch(inventory_path, keyring)
    assert again.returncode == 0, again.stderr
    assert {f["changed"] for f in json.loads(again.stdout)} == {False}

    # The boot service answers wind's MAC with all three, and its script says where.
    answers = boot_http.answers(inventory, inventory_path.parent, inventory_path.parent / "state")
    assert answers.files[f"/rootfs/{WIND_MAC}"] == release.path("rootfs")
    script = answers.texts[f"/ipxe/{WIND_MAC}"].decode()
    assert f"coreos.live.rootfs_url=http://31.31.164.218:8080/rootfs/{WIND_MAC}" in script
    assert "coreos.inst.install_dev=/dev/sda" in script
    assert f"/rootfs/{'9c:8e:99:1a:2b:01'}" not in answers.files  # fohn is Flatcar


def test_a_file_that_is_not_what_the_stream_says_is_refused(lab: tuple[Path, Path, Path]) -> None:
    inventory_path, _, _ = lab
    builds = inventory_path.parent / "mirror" / "fedora-coreos" / "prod" / "streams" / "stable"
    rootfs = builds / "builds" / VERSION / "x86_64" / FILES["rootfs"][0]
    rootfs.write_bytes(b"TAMPERED")
    refused = fetch(inventory_path, None)
    assert refused.returncode != 0
    assert "SHA-256" in refused.stderr and "does not match the published" in refused.stderr
    assert "Traceback" not in refused.stderr
    inventory = require_inventory(inventory_path)
    release = assets.release_of(inventory, inventory_path.parent, inventory.server("wind"))
    assert not release.path("rootfs").exists()
    assert not list(release.cache.glob(".rootfs*"))


def test_a_file_signed_by_another_key_is_refused(
    lab: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    inventory_path, keyring, _ = lab
    stranger, _ = signer(tmp_path, "stranger")
    publish(inventory_path.parent / "mirror" / "fedora-coreos", stranger)
    refused = fetch(inventory_path, keyring)
    assert refused.returncode != 0
    assert "signature of fedora-coreos-" in refused.stderr and "does not verify" in refused.stderr
    assert "Traceback" not in refused.stderr
    inventory = require_inventory(inventory_path)
    release = assets.release_of(inventory, inventory_path.parent, inventory.server("wind"))
    assert not release.path("kernel").exists()
    # Without the keyring the same files pass on their checksums alone.
    assert fetch(inventory_path, None).returncode == 0


def test_a_mirror_serving_another_stream_is_refused(lab: tuple[Path, Path, Path]) -> None:
    inventory_path, _, home = lab
    publish(inventory_path.parent / "mirror" / "fedora-coreos", home, stream="testing")
    refused = fetch(inventory_path, None)
    assert refused.returncode != 0
    assert "this is the stream 'testing', not 'stable'" in refused.stderr


def test_a_stream_of_another_release_than_os_version_is_refused(
    lab: tuple[Path, Path, Path],
) -> None:
    """The stream's newest release is not the inventory's: nothing of it is cached."""
    inventory_path, keyring, _ = lab
    inventory_path.write_text(
        inventory_path.read_text().replace(
            "os: {distribution: fedora-coreos, channel: stable}",
            "os: {distribution: fedora-coreos, channel: stable, version: 40.20240906.3.0}",
        )
    )
    refused = fetch(inventory_path, keyring)
    assert refused.returncode != 0
    assert f"this is fedora-coreos {VERSION}, not os.version 40.20240906.3.0" in refused.stderr, (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    inventory = require_inventory(inventory_path)
    release = assets.release_of(inventory, inventory_path.parent, inventory.server("wind"))
    assert not release.path("kernel").exists()
