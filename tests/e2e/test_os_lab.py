"""A real network install on the simulated lab: one VM node, from power-off to its disk.

fohn is a VM node (qemu under tcg, ``labctl sim up --vm fohn``); chequita and wind
stay namespace nodes, which say they run the inventory's OS. ``labctl bootstrap
--only power --only os`` must: find fohn not installed, set its boot device to
pxe over RMCP+, power it through its BMC, answer its DHCP, TFTP, iPXE and HTTP
requests from the boot service, take the stand-in installer's report (the real
coreos-installer laying the stand-in OS image, then the real Ignition applying the
config coreos-installer wrote into ``boot``), set the boot device to disk and see
the installed system answer SSH: under SeaBIOS, qemu booting fohn's own disk
(GRUB, the image's init), not its namespace node. The disk is then read with
debugfs for everything the Ignition config said. An Ignition that fails is
reported with the installer's own words, and a run on the installed lab changes
nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.boot import hostkeys
from labctl.engine.journal import Journal
from labctl.inventory import require_inventory
from labctl.render import ignition
from labctl.sim import installer, osimage, vm
from labctl.sim import node as sim_node
from tests.conftest import REFERENCE
from tests.e2e.conftest import HOST_LOCK, SECRETS, Lab, host_state, release_shared_lab, run
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

FOHN_MAC = "9c:8e:99:1a:2b:01"


class VmLab(Lab):
    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_labctl(*args, cwd=self.workdir, env=self.env(), timeout=900)


@pytest.fixture
def vm_lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[VmLab]:
    """The simulated lab with fohn a VM node. The test's param, if any: the ``--vm``
    value and fohn's ``os`` (Flatcar beta otherwise)."""
    choice, fohn_os = getattr(request, "param", ("fohn", None))
    assert os.geteuid() == 0, "the simulated lab needs root (CI runs as root)"
    release_shared_lab()  # the VM lab is the reference lab too: one at a time
    mirror = installer.build()
    text = REFERENCE.read_text().replace(
        "    dhcp: full\n",
        f"    dhcp: full\n    mirror: file://{mirror}\n    install_timeout: 300\n",
    )
    if fohn_os:  # fohn's is the first os line
        text = text.replace("os: {distribution: flatcar, channel: beta}", fohn_os, 1)
    (tmp_path / "inventory.yaml").write_text(text)
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lab = VmLab(tmp_path)
        before = lab_state(tmp_path)
        try:
            up = run_labctl("sim", "up", "--vm", choice, cwd=tmp_path, env=SECRETS)
            assert up.returncode == 0, up.stdout + up.stderr
            # The installed disk lets in the keys the inventory lists (Ignition writes
            # them), so the operator lists the simulated lab's own login key there.
            operator = (lab.state / "id_ed25519.pub").read_text().strip()
            listed = "    authorized_keys:"
            inventory = tmp_path / "inventory.yaml"
            edited = inventory.read_text()
            at = edited.index("\n", edited.index(listed)) + 1
            inventory.write_text(f"{edited[:at]}      - {operator}\n{edited[at:]}")
            yield lab
        finally:
            down = run_labctl("sim", "down", cwd=tmp_path, env=SECRETS)
            assert down.returncode == 0, down.stdout + down.stderr
            time.sleep(0.5)
            assert lab_state(tmp_path) == before, "the simulated lab left something behind"
            leftovers = [
                line
                for line in run("ps", "-eo", "stat,args").stdout.splitlines()
                if str(tmp_path) in line and not line.startswith("Z")
            ]
            assert leftovers == []


def lab_state(tmp_path: Path) -> tuple[set[str], set[str], set[str], set[str]]:
    """``host_state`` cut down to what a simulated lab makes: other helpers' own
    namespaces and routes on this shared machine come and go meanwhile."""
    netns, routes, mounts, cgroups = host_state()
    prefixes = ("31.31.164.", "10.31.", "169.254.77.")
    return (
        {n for n in netns if n.startswith("lab-")},
        {r for r in routes if r.startswith(prefixes) or r.startswith("blackhole")},
        {m for m in mounts if str(tmp_path) in m or "/run/netns/lab-" in m},
        cgroups,
    )


def steps(report: dict[str, Any], layer: str = "os") -> list[dict[str, Any]]:
    (outcome,) = [o for o in report["layers"] if o["layer"] == layer]
    return [r for plan in outcome["plans"] for r in plan["steps"]]


def debugfs(disk: Path, request: str, partition: str = "root") -> str:
    """``request`` on the installed disk's ``partition`` (the image's GPT layout), as the
    next boot would find it. The disk may be in use by the running VM, whose kernel keeps
    changes in its ext4 journal (atime included) and writes them home later: debugfs reads
    no journal, and a read in the middle of that write-back can meet a directory entry
    whose inode is not home yet. So the partition is copied and the copy's journal
    replayed (what a kernel does at mount after a crash) before debugfs reads it."""
    (part,) = [p for p in osimage.PARTITIONS if p.label == partition]
    with open(disk, "rb") as source, tempfile.NamedTemporaryFile(suffix=".ext4") as copy:
        source.seek(osimage.partition_offset(partition))
        for _ in range(part.size_mib):
            copy.write(source.read(osimage.MIB))
        copy.flush()
        replay = run("e2fsck", "-y", "-E", "journal_only", copy.name)
        assert replay.returncode in (0, 1), replay.stdout + replay.stderr  # 1: replayed
        done = run("debugfs", "-R", request, copy.name)
    # debugfs says a missing path on stderr and exits 0; its banner is the only line wanted.
    said = [line for line in done.stderr.splitlines() if not line.startswith("debugfs ")]
    assert done.returncode == 0 and not said, f"debugfs -R {request!r}: {done.stderr}"
    return done.stdout


def booted_own_disk(lab: VmLab, distribution: str) -> str:
    """fohn's qemu booted its installed disk (the image's init mounted root, brought
    eth0's address up from Ignition's network file, started sshd with the planted key),
    its namespace node does not run, and SSH pinned to that key reads the stand-in's
    os-release for ``distribution``. Returns the disk boot's console."""
    booted = (lab.state / "vms" / "fohn" / "console.log").read_text(errors="replace")
    assert "LABCTL-OS: root LABEL=root is /dev/sda4" in booted, booted[-3000:]
    assert "LABCTL-OS: eth0 31.31.164.220/" in booted, booted[-3000:]
    assert "LABCTL-OS: sshd up with the host key on the disk" in booted
    assert vm.processes(lab.state), "fohn's qemu is not running"
    assert sim_node.pid(lab.state, "fohn") is None, "fohn's namespace node runs"
    release = run(
        "ssh", "-i", str(lab.state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={lab.state / 'known_hosts'}", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5", "core@31.31.164.220", "cat /etc/os-release", timeout=30,
    )  # fmt: skip
    assert release.returncode == 0, release.stderr
    assert release.stdout == osimage.distribution_os_release(distribution), release.stdout
    assert "VARIANT_ID=labctl-stand-in" in release.stdout
    return booted


# fohn's BMC over RMCP+, from the host as labctl reaches it (the reference inventory's).
FOHN_BMC = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "10.31.0.11", "-U", "labctl",
            "-P", SECRETS["LABCTL_BMC_PASSWORD_FOHN"]]  # fmt: skip


def ipmitool(*args: str) -> subprocess.CompletedProcess[str]:
    return run(*FOHN_BMC, *args, timeout=30)


def connected_to_bmc(lab: VmLab) -> list[str]:
    """The processes on each end of fohn's BMC's system-interface port (the loopback of
    the fabric namespace, where ipmi_sim and qemu both run), as ss names them: a socket
    no process holds yet (one in the BMC's accept queue) is an address with no name."""
    fabric = json.loads((lab.state / "sim.json").read_text())["plan"]["fabric"]
    port = vm.ipmi_port(require_inventory(lab.workdir / "inventory.yaml"), "fohn")
    done = run(
        "ip", "netns", "exec", fabric, "ss", "-Htnp", "state", "established",
        f"( sport = :{port} or dport = :{port} )",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line.split("users:")[-1] for line in done.stdout.splitlines()]


OWNERS = ("ipmi_sim", "qemu-system-x86")


class BmcWatch(threading.Thread):
    """While labctl installs fohn: the first moment qemu is connected to its BMC, what
    the BMC answers over RMCP+ then (tests/integration/test_vm_bmc.py proved this on a
    VM of its own, outside the lab, until it was folded in here for the suite's time)."""

    def __init__(self, lab: VmLab) -> None:
        super().__init__(daemon=True)
        self.lab, self.stop = lab, threading.Event()
        self.ends: list[str] = []
        self.power = self.info = self.bootdev = ""

    def run(self) -> None:
        while not self.stop.is_set():
            ends = connected_to_bmc(self.lab)
            # Both ends held: ipmi_sim's accepted socket and qemu's. Two lines with qemu
            # on one were once qemu's end and the BMC's still unaccepted one (CI, stop 36).
            if all(any(f'"{who}"' in end for end in ends) for who in OWNERS):
                self.ends = ends
                self.power = ipmitool("chassis", "power", "status").stdout
                self.info = ipmitool("mc", "info").stdout
                break
            self.stop.wait(0.2)
        # vm.start puts disk back just after qemu started: read it while qemu still runs.
        while not self.stop.is_set() and self.ends:
            self.bootdev = ipmitool("chassis", "bootparam", "get", "5").stdout
            if "Hard-Drive" in self.bootdev or len(connected_to_bmc(self.lab)) < 2:
                return
            self.stop.wait(0.5)


def test_a_vm_node_is_installed_through_its_bmc_and_the_boot_service(vm_lab: VmLab) -> None:
    lab = vm_lab
    fetched = lab.run("boot", "fetch")
    assert fetched.returncode == 0, fetched.stderr
    state = lab.workdir / ".labctl"
    disk = lab.state / "vms" / "fohn" / "disk.img"

    # 1. An Ignition that fails: the login user does not exist in the image and the
    # installer has no useradd. Ignition's own words come back as the failure.
    inventory = lab.workdir / "inventory.yaml"
    good = inventory.read_text()
    inventory.write_text(good.replace("    user: core\n", "    user: ops\n"))
    started = time.monotonic()
    failed = lab.run("bootstrap", "--only", "power", "--only", "os", "-o", "json")
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    errors = [s["error"] for s in steps(json.loads(failed.stdout)) if s["error"]]
    assert any(
        "fohn: the installer reported failure:" in e and "CRITICAL" in e and "ops" in e
        for e in errors
    ), errors
    print(f"failed install reported after {time.monotonic() - started:.1f} s")

    # 2. The real install, from the BMC's power-off; a dry run first says who and why.
    inventory.write_text(good)
    dry = lab.run("bootstrap", "--only", "os", "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    planned = {r["step_id"]: r for r in steps(json.loads(dry.stdout))}
    assert planned["arm:fohn"]["outcome"] == "would-change"
    assert "install (does not answer SSH" in planned["arm:fohn"]["description"]
    assert not any(k.endswith(("chequita", "wind")) for k in planned)
    # What the journal remembers of fohn from before (a unit enabled there) is forgotten
    # when fohn is installed afresh; wind's is kept.
    before = Journal(state)
    before.record("run:fohn:systemctl enable kubelet.service", "f", "kubernetes: nodes")
    before.record("run:wind:systemctl enable kubelet.service", "f", "kubernetes: nodes")
    # From the BMC's power-off: the BMC reads off and nobody is on its VM port.
    assert ipmitool("chassis", "power", "status").stdout.strip().endswith("off")
    assert connected_to_bmc(lab) == []
    watch = BmcWatch(lab)
    watch.start()
    started = time.monotonic()
    try:
        done = lab.run("bootstrap", "--only", "power", "--only", "os", "-o", "json")
    finally:
        watch.stop.set()
        watch.join(timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    # While the installer ran: the BMC held qemu's connection (its own socket) and still
    # answered RMCP+ (power on, its device id), and the one-shot pxe had already fallen
    # back to disk (the BMC's doing, before labctl's disk step once the installer was off).
    assert any('"ipmi_sim"' in end for end in watch.ends), watch.ends
    assert any('"qemu-system-x86"' in end for end in watch.ends), watch.ends
    assert watch.power.strip().endswith("on"), watch.power
    assert "Manufacturer ID           : 4753" in watch.info, watch.info
    assert "Force Boot from default Hard-Drive" in watch.bootdev, watch.bootdev
    chassis = (lab.state / "bmcs" / "fohn" / "chassis.log").read_text()
    assert "set boot pxe" in chassis and "set power 1" in chassis, chassis[-2000:]
    after = Journal(state)
    assert not after.done("run:fohn:systemctl enable kubelet.service", "f", "kubernetes: x")
    assert after.done("run:wind:systemctl enable kubelet.service", "f", "kubernetes: x")
    print(f"`labctl bootstrap --only power --only os`, one VM node installed: {elapsed:.1f} s")
    results = {r["step_id"]: r for r in steps(json.loads(done.stdout))}
    for step in ("pxe:fohn", "power:fohn", "report:fohn", "disk:fohn", "on:fohn", "ssh:fohn"):
        assert results[step]["outcome"] == "changed", results[step]
    assert not any(k.endswith(("chequita", "wind")) for k in results)  # installed already

    # Every hop of the chain left its trace.
    boot = state / "boot"
    dhcp = (boot / "dnsmasq.log").read_text().lower()
    assert "dhcpack" in dhcp and FOHN_MAC in dhcp and "31.31.164.220" in dhcp
    assert "sent" in dhcp and "labctl.ipxe" in dhcp  # TFTP: iPXE's chain script
    paths = [
        json.loads(line)["path"] for line in (boot / "requests.jsonl").read_text().splitlines()
    ]
    for what in ("ipxe", "kernel", "initrd", "ignition", "report"):
        assert f"/{what}/{FOHN_MAC}" in paths, paths
    report = json.loads((boot / "reports" / "fohn.json").read_text())
    assert report["result"] == "ok", report
    assert (lab.state / "bmcs" / "fohn" / "bootdev").read_text().strip() == "disk"
    assert lab.run("boot", "status").stdout.startswith("not running")
    # The installer's console is the boot before the disk's (vm.start keeps it).
    console = (lab.state / "vms" / "fohn" / "console.log.1").read_text(errors="replace")
    assert "LABCTL-INSTALLER: ignition=ok" in console
    # The real coreos-installer laid the stand-in image with labctl's disk and config,
    # and wrote that config into the image's boot partition, which Ignition applied.
    boot_service = require_inventory(inventory).lab.boot
    assert boot_service is not None
    port = boot_service.http_port
    assert (
        f"LABCTL-INSTALLER: coreos-installer install /dev/sda --ignition-url "
        f"http://31.31.164.218:{port}/ignition/{FOHN_MAC} --insecure-ignition "
        f"--fetch-retries 5 --image-file {installer.IMAGE_DISK} --insecure"
    ) in console, console[-3000:]
    assert "LABCTL-INSTALLER: coreos-installer: Install complete." in console
    assert "ignition/config.ign: " in console
    # The guest found its BMC on the KCS interface: ipmi_sim's emulated device id.
    assert "ipmi /dev/ipmi0: Found new BMC (man_id: 0x001291, prod_id: 0x0f02" in console
    assert "LABCTL-INSTALLER: ipmi in-band: Chassis Power is on" in console

    # 3. The disk holds every file, unit, user and key the config named, the host key
    # labctl minted among them; the first SSH pinned that key, and the node showed it.
    inv = require_inventory(inventory)
    planted = hostkeys.load(state, "fohn")
    assert planted is not None
    config = ignition.config(inv, inv.server("fohn"), (planted.private, planted.public))
    assert "/etc/ssh/ssh_host_ed25519_key" in [f["path"] for f in config["storage"]["files"]]
    known = (lab.state / "known_hosts").read_text().splitlines()
    assert f"31.31.164.220 ssh-ed25519 {planted.blob}" in known, known
    for entry in config["storage"]["files"]:
        want = ignition.data_url_text(entry["contents"]["source"])
        assert debugfs(disk, f"cat {entry['path']}") == want, entry["path"]
    keys = debugfs(disk, "ls -l /home/core/.ssh") + debugfs(
        disk, "cat /home/core/.ssh/authorized_keys.d/ignition"
    )
    assert inv.lab.ssh.authorized_keys[0] in keys
    assert "/dev/null" in debugfs(disk, "stat /etc/systemd/system/locksmithd.service")
    preset = debugfs(disk, "cat /etc/systemd/system-preset/20-ignition.preset")
    assert "enable systemd-networkd.service" in preset
    assert "enable systemd-timesyncd.service" in preset

    # The disk is the stand-in image's GPT, its boot partition holds the config
    # coreos-installer wrote (labctl's, as served), and that disk is what booted: qemu
    # runs from it, fohn's namespace node does not, and SSH on fohn's address (the
    # address Ignition's network file gave the VM's NIC) reads the stand-in's os-release.
    table = run("sgdisk", "-p", str(disk)).stdout
    names = [line.split()[-1] for line in table.splitlines() if line[:4].strip().isdigit()]
    assert names == ["BIOS-BOOT", "EFI-SYSTEM", "boot", "root"], table
    written = json.loads(debugfs(disk, "cat /ignition/config.ign", "boot"))
    assert written == config
    booted_own_disk(lab, "flatcar")

    # 4. A run on the installed lab changes nothing.
    again = lab.run("bootstrap", "--only", "power", "--only", "os", "-o", "json")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    outcome = json.loads(again.stdout)
    os_steps = steps(outcome)
    assert [s["outcome"] for s in os_steps] == ["unchanged"], os_steps
    assert {s["outcome"] for s in steps(outcome, "power")} == {"unchanged"}


@pytest.mark.parametrize(
    "vm_lab", [("fohn:uefi", "os: {distribution: fedora-coreos, channel: stable}")], indirect=True
)
def test_a_uefi_fedora_coreos_vm_node_is_installed_from_power_off(vm_lab: VmLab) -> None:
    """The same install with the VM node's firmware UEFI (OVMF) and fohn on Fedora CoreOS:
    the firmware's DHCP says it is EFI, iPXE inside it loads the EFI kernel with FCOS's
    arguments, the live system fetches its rootfs from ``coreos.live.rootfs_url``, and
    its BMC is on its KCS as before. The assets come from the stand-in's FCOS stream.
    Then OVMF boots the installed disk (GRUB's EFI image on its EFI system partition)
    and the first SSH meets that system, not fohn's namespace node."""
    lab = vm_lab
    fetched = lab.run("boot", "fetch", "-o", "json")
    assert fetched.returncode == 0, fetched.stderr
    roles = {(f["release"], f["role"]) for f in json.loads(fetched.stdout)}
    assert ("fedora-coreos stable", "rootfs") in roles
    vm_dir = lab.state / "vms" / "fohn"
    assert json.loads((vm_dir / "vm.json").read_text())["firmware"] == "uefi"
    started = time.monotonic()
    done = lab.run("bootstrap", "--only", "power", "--only", "os", "-o", "json")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    print(f"`bootstrap --only power --only os`, one UEFI FCOS VM node installed: {elapsed:.1f} s")
    results = {r["step_id"]: r for r in steps(json.loads(done.stdout))}
    for step in ("pxe:fohn", "power:fohn", "report:fohn", "disk:fohn", "on:fohn", "ssh:fohn"):
        assert results[step]["outcome"] == "changed", results[step]
    # OVMF booted the installed disk: GRUB's EFI image from its EFI system partition, the
    # kernel through EFI, the image's init bringing eno1's address up from the
    # NetworkManager file Ignition wrote; qemu runs from the disk, fohn's namespace node
    # does not, and the first SSH (pinned to the planted key) reads the FCOS stand-in.
    booted = booted_own_disk(lab, "fedora-coreos")
    assert "efi: EFI v" in booted, booted[-3000:]
    boot = lab.workdir / ".labctl" / "boot"
    assert "tags: known, ipxe, efi" in (boot / "dnsmasq.log").read_text()  # UEFI, then iPXE
    paths = [
        json.loads(line)["path"] for line in (boot / "requests.jsonl").read_text().splitlines()
    ]
    assert f"/rootfs/{FOHN_MAC}" in paths, paths
    assert (vm_dir / "OVMF_VARS.fd").exists()  # this VM's own variable store
    # The installer's console is the boot before the disk's (vm.start keeps it).
    console = (vm_dir / "console.log.1").read_text(errors="replace")
    assert f"LABCTL-INSTALLER: rootfs {len(installer.FCOS_ROOTFS)} bytes from" in console
    assert "coreos.inst.install_dev=/dev/sda" in console  # the kernel logs its command line
    # Its coreos.inst.* arguments, as coreos-installer-service turns them into options.
    assert "LABCTL-INSTALLER: coreos-installer install /dev/sda --ignition-url" in console
    assert "LABCTL-INSTALLER: coreos-installer: Install complete." in console
    assert "LABCTL-INSTALLER: ignition=ok" in console
    assert "ipmi /dev/ipmi0: Found new BMC (man_id: 0x001291, prod_id: 0x0f02" in console
    assert "LABCTL-INSTALLER: ipmi in-band: Chassis Power is on" in console
    disk = vm_dir / "disk.img"
    assert debugfs(disk, "cat /etc/hostname") == "fohn\n"
    # Fedora CoreOS's network configuration: NetworkManager, not networkd.
    assert "[ipv4]" in debugfs(disk, "cat /etc/NetworkManager/system-connections/eno1.nmconnection")
