"""The real coreos-installer runs the Fedora CoreOS install labctl renders.

coreos-installer is built from its crate at a pinned version by
``scripts/build-coreos-installer.sh`` (run by ``scripts/setup.sh``), beside the
crate's own ``scripts/coreos-installer-service``: the script ``coreos-installer.service``
runs on Fedora CoreOS's live system, turning the kernel command line and every file
in ``/etc/coreos/installer.d`` into ``coreos-installer install`` options. Here that
script reads labctl's rendered kernel arguments (bound over ``/proc/cmdline`` in a
private mount namespace) and labctl's rendered ``50-labctl.yaml`` (its config
directory is the one line changed: a temporary directory for ``/etc/coreos/installer.d``),
in a network namespace where the boot service's address serves labctl's Ignition
config for the server, and the install disk is a loop device the test makes and
removes by its name.

What cannot run here, and why: this machine's kernel reads no GPT (CONFIG_EFI_PARTITION
is not set) and has no device-mapper, so no partition of a loop device appears, and
coreos-installer's last step, mounting the installed ``boot`` partition to write the
Ignition config into it, cannot run on this host; nor can ``coreos-installer pack
osmet`` make the live image's osmet file. The second test lays the cached stand-in
image (``labctl.sim.osimage``) with ``--image-file`` and no Ignition instead, beside a
real systemd-udevd with no rules (``tests/peers/with-udevd.sh``): coreos-installer
refuses to run without udevd's socket.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import boot, ignition
from labctl.sim import osimage
from tests.conftest import REFERENCE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and loop devices"),
]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build-coreos-installer.sh"
WITH_UDEVD = ROOT / "tests" / "peers" / "with-udevd.sh"
BOOT = "31.31.164.218"  # the reference inventory's lab.boot.address
WIND_MAC = "78:e7:d1:7a:8b:03"
WIND_OS_DISK = "      - {device: /dev/sda, size: 240GB, type: ssd, role: os}\n"
MIB = 1024 * 1024


def installer_dir() -> Path:
    """The cached build; a missing one fails (never skips) with what to run."""
    folder = Path(subprocess.run([BUILD, "--print-dir"], capture_output=True, text=True).stdout)
    folder = Path(str(folder).strip())
    for needed in (
        folder / "bin" / "coreos-installer",
        folder / "libexec" / "coreos-installer-service",
    ):
        assert needed.exists(), f"{needed} is missing: run scripts/build-coreos-installer.sh"
    return folder


@contextmanager
def loop_device(path: Path, size: int) -> Iterator[str]:
    with path.open("wb") as f:
        f.truncate(size)
    device = subprocess.run(
        # --partscan: a disk whose partition table the kernel may reread, as a real disk is.
        ["losetup", "--find", "--show", "--partscan", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)


@contextmanager
def boot_address_namespace() -> Iterator[str]:
    """A network namespace whose loopback holds the boot service's address, nothing else."""
    ns = f"labcip{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{BOOT}/32", "dev", "lo"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@contextmanager
def serve(ns: str, folder: Path, port: int) -> Iterator[Path]:
    """Python's http.server in ``ns`` serving ``folder`` at the boot address; its log."""
    log = folder.parent / "http.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, "python3", "-m", "http.server", "--bind", BOOT,
             "--directory", str(folder), str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for _ in range(50):
            probe = subprocess.run(
                ["ip", "netns", "exec", ns, "python3", "-c",
                 f"import socket; socket.create_connection(('{BOOT}', {port}), 1)"],
                capture_output=True,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        yield log
    finally:
        server.kill()
        server.wait(timeout=10)


def fcos_inventory(tmp_path: Path, disk: str) -> Inventory:
    """The reference lab with wind on Fedora CoreOS and its OS disk the test's loop device."""
    text = REFERENCE.read_text()
    wind = text.index("  - name: wind\n")
    head, tail = text[:wind], text[wind:]
    assert WIND_OS_DISK in tail
    tail = tail.replace(WIND_OS_DISK, WIND_OS_DISK.replace("/dev/sda", disk), 1)
    tail = tail.replace(
        "os: {distribution: flatcar, channel: alpha}",
        "os: {distribution: fedora-coreos, channel: stable}",
        1,
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(head + tail)
    return require_inventory(path)


def test_the_live_system_s_service_runs_coreos_installer_with_labctl_s_options(
    tmp_path: Path,
) -> None:
    """labctl's kernel arguments and config file, through the crate's own service script,
    make the real coreos-installer fetch labctl's Ignition from the boot service and,
    told ``offline``, refuse to download an image when the live system carries none;
    without labctl's config file the same install goes for Fedora's stream instead."""
    folder = installer_dir()
    with (
        loop_device(tmp_path / "disk.img", 64 * MIB) as disk,
        boot_address_namespace() as ns,
    ):
        inventory = fcos_inventory(tmp_path, disk)
        wind = inventory.server("wind")
        port = inventory.lab.boot.http_port if inventory.lab.boot else 0
        served = tmp_path / "served"
        (served / "ignition").mkdir(parents=True)
        (served / "ignition" / WIND_MAC).write_text(ignition.config_text(inventory, wind))
        cmdline = tmp_path / "cmdline"
        cmdline.write_text(" ".join(boot.kernel_args(inventory, wind)) + "\n")
        config_dir = tmp_path / "installer.d"
        config_dir.mkdir()
        live = boot.installer_config(inventory, wind, version="1", token="0" * 64)
        for f in live["storage"]["files"]:
            if f["path"].startswith("/etc/coreos/installer.d/"):
                text = ignition.data_url_text(f["contents"]["source"])
                (config_dir / Path(f["path"]).name).write_text(text)
        assert (config_dir / "50-labctl.yaml").read_text() == "offline: true\n"
        service = (folder / "libexec" / "coreos-installer-service").read_text()
        assert "INSTALLER_CONFIG_DIR=/etc/coreos/installer.d\n" in service
        script = tmp_path / "coreos-installer-service"
        script.write_text(
            service.replace(
                "INSTALLER_CONFIG_DIR=/etc/coreos/installer.d\n",
                f"INSTALLER_CONFIG_DIR={config_dir}\n",
            )
        )
        env = dict(os.environ, PATH=f"{folder / 'bin'}:{os.environ['PATH']}")
        with serve(ns, served, port) as log:
            run = subprocess.run(
                ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
                 "sh", "-c", 'mount --bind "$1" /proc/cmdline && exec bash "$2"', "-",
                 str(cmdline), str(script)],
                capture_output=True, text=True, timeout=120, env=env,
            )  # fmt: skip
            fetched = log.read_text()
        url = f"http://{BOOT}:{port}/ignition/{WIND_MAC}"
        assert (
            f"coreos-installer install --config-file {config_dir}/50-labctl.yaml {disk} "
            f"--ignition-url {url} --insecure-ignition --fetch-retries infinite"
        ) in run.stdout, run.stdout + run.stderr
        assert f'GET /ignition/{WIND_MAC} HTTP/1.1" 200' in fetched, fetched
        assert run.returncode != 0
        assert "cannot perform offline install; metadata missing" in run.stderr, run.stderr
        # Nothing was written to the disk.
        with open(disk, "rb") as written:
            assert written.read(MIB) == bytes(MIB)

        # Without labctl's config file, the same install asks Fedora's stream for an image.
        with serve(ns, served, port):
            online = subprocess.run(
                ["ip", "netns", "exec", ns, str(folder / "bin" / "coreos-installer"), "install",
                 disk, "--ignition-url", url, "--insecure-ignition", "--fetch-retries", "0"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        assert online.returncode != 0
        assert "metadata missing" not in online.stderr
        assert "builds.coreos.fedoraproject.org" in online.stderr, online.stderr


def test_coreos_installer_lays_the_cached_stand_in_image_onto_a_disk(tmp_path: Path) -> None:
    """The stand-in image, laid as Fedora CoreOS's metal image is, installs with the real
    program: its bytes on the disk, its GPT's partitions by Fedora CoreOS's names, and
    the root file system's os-release naming the stand-in. ``--insecure``: the image is
    unsigned (no key here is one coreos-installer trusts)."""
    folder = installer_dir()
    image = osimage.build(tmp_path / "cache")
    with loop_device(tmp_path / "disk.img", 128 * MIB) as disk:
        run = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", str(WITH_UDEVD),
             str(folder / "bin" / "coreos-installer"), "install", "--image-file", str(image),
             "--insecure", disk],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "Install complete." in run.stderr
        assert "Signature not found; skipping verification as requested" in run.stderr
        expected = image.read_bytes()
        with open(disk, "rb") as written:
            on_disk = written.read(len(expected))
        # coreos-installer writes the image's first MiB last and rewrites the backup GPT
        # at the disk's end: the partitions (everything after the first MiB) are the image's.
        assert on_disk[MIB:-MIB] == expected[MIB:-MIB]
        # GRUB's boot code in the MBR (its partition table after byte 440 is the disk's):
        # the installed disk boots as the image does (tests/integration/test_osimage_boot.py).
        assert on_disk[: osimage.MBR_CODE] == expected[: osimage.MBR_CODE]
        table = subprocess.run(["sgdisk", "-p", disk], capture_output=True, text=True)
        names = [
            line.split()[-1] for line in table.stdout.splitlines() if line[:4].strip().isdigit()
        ]
        assert names == ["BIOS-BOOT", "EFI-SYSTEM", "boot", "root"], table.stdout
        root = next(p for p in osimage.PARTITIONS if p.name == "root")
        start = osimage.FIRST_MIB + sum(
            p.size_mib for p in osimage.PARTITIONS if p.number < root.number
        )
        part = tmp_path / "root.ext4"
        part.write_bytes(on_disk[start * MIB : (start + root.size_mib) * MIB])
        release = subprocess.run(
            ["debugfs", "-R", "cat /etc/os-release", str(part)], capture_output=True, text=True
        )
        assert f"VERSION_ID={osimage.RELEASE}" in release.stdout, release.stderr
        label = subprocess.run(["e2label", str(part)], capture_output=True, text=True)
        assert label.stdout.strip() == "root"
