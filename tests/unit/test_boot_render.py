"""What the boot service answers with, for the reference lab, against reviewed goldens."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import boot
from labctl.sim import installer
from tests.conftest import REFERENCE, assert_golden

# A token as the boot service mints it (random there; fixed here for the golden files).
TOKEN = "0" * 63 + "1"
PATHS = boot.DnsmasqPaths("/state/boot/tftp", "/state/boot/leases", "/state/boot/log", "/pid")


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def test_dnsmasq_conf_matches_golden(inventory: Inventory) -> None:
    conf = boot.dnsmasq_conf(inventory, PATHS)
    assert_golden("dnsmasq-full.conf", conf)
    # Every PXE MAC, with its own address, and nothing for anyone else.
    for server in inventory.servers:
        nic = boot.pxe_nic(server)
        assert nic is not None and nic.mac in conf
    assert "dhcp-ignore=tag:!known" in conf


def test_ipxe_script_and_installer_config_match_golden(inventory: Inventory) -> None:
    fohn = inventory.server("fohn")
    assert_golden("ipxe-fohn.ipxe", boot.ipxe_script(inventory, fohn))
    text = boot.installer_config_text(inventory, fohn, version="3975.2.0", token=TOKEN)
    assert_golden("install-fohn.ign", text)
    assert "labctl.disk=/dev/sda" in boot.ipxe_script(inventory, fohn)
    assert json.loads(text)["ignition"]["version"] == "3.3.0"


def test_macs_are_compared_in_one_spelling(inventory: Inventory) -> None:
    assert boot.normal_mac("9C-8E-99-1A-2B-01") == "9c:8e:99:1a:2b:01"
    assert set(boot.servers_by_mac(inventory)) == {
        "9c:8e:99:1a:2b:01",
        "0c:c4:7a:5e:6f:02",
        "78:e7:d1:7a:8b:03",
    }


def test_installer_modules_load_after_their_dependencies() -> None:
    dep = (
        "kernel/a.ko: kernel/b.ko kernel/c.ko\n"
        "kernel/b.ko: kernel/c.ko\n"
        "kernel/c.ko:\n"
        "kernel/d-x.ko:\n"
    )
    assert installer.module_order(dep, ("a", "d_x", "builtin")) == [
        "kernel/c.ko",
        "kernel/b.ko",
        "kernel/a.ko",
        "kernel/d-x.ko",
    ]


def test_a_vm_and_its_bmc_meet_on_one_loopback_port_per_server(inventory: Inventory) -> None:
    from labctl.sim import bmc, vm

    ports = [vm.ipmi_port(inventory, s.name) for s in inventory.servers]
    assert len(set(ports)) == len(ports)
    spec = bmc.BmcSpec("fohn", "10.0.0.1", "admin", "pw", Path("/s"), vm_port=ports[0])
    assert f"  serial 15 127.0.0.1 {ports[0]} codec VM\n" in bmc.render_lan_conf(spec)
    assert "serial" not in bmc.render_lan_conf(bmc.BmcSpec("x", "10.0.0.1", "a", "p", Path("/s")))
    config = {"tap": "t", "mac": "52:54:00:00:00:01", "disk": "/d", "ipmi_port": ports[0]}
    argv = vm.qemu_argv(config, Path("/v"), pxe=True)
    assert f"socket,id=ipmi0,host=127.0.0.1,port={ports[0]},reconnect=10" in argv
    assert "ipmi-bmc-extern,id=bmc0,chardev=ipmi0" in argv and "isa-ipmi-kcs,bmc=bmc0" in argv
    del config["ipmi_port"]
    assert not any("ipmi" in a for a in vm.qemu_argv(config, Path("/v"), pxe=True))


def test_fedora_coreos_script_and_installer_config_match_golden(tmp_path: Path) -> None:
    """wind on Fedora CoreOS: the live PXE system installs itself from the kernel arguments
    FCOS documents, and its live Ignition only reports (and powers off on success)."""
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text().replace(
            "os: {distribution: flatcar, channel: alpha}",
            "os: {distribution: fedora-coreos, channel: stable}",
        )
    )
    inventory = require_inventory(path)
    wind = inventory.server("wind")
    script = boot.ipxe_script(inventory, wind)
    assert_golden("ipxe-wind-fcos.ipxe", script)
    text = boot.installer_config_text(inventory, wind, version="40.1", token=TOKEN)
    assert_golden("install-wind-fcos.ign", text)
    args = script.splitlines()[2].split()
    for arg in ("ignition.firstboot", "ignition.platform.id=metal", "coreos.inst.skip_reboot"):
        assert arg in args
    assert "coreos.inst.install_dev=/dev/sda" in args
    assert not any(a.startswith("flatcar.") for a in args)
    units = json.loads(text)["systemd"]["units"]
    dropin = next(u for u in units if u["name"] == "coreos-installer.service")
    assert "OnFailure=labctl-install-failed.service" in dropin["dropins"][0]["contents"]


def test_stream_metadata_of_another_shape_is_refused_by_name() -> None:
    from labctl.boot import assets

    good = {"location": "k", "sha256": "a" * 64, "signature": "k.sig"}
    pxe = {"kernel": dict(good), "initramfs": dict(good), "rootfs": dict(good)}
    metal = {"release": "41.1", "formats": {"pxe": pxe}}
    stream = {"stream": "stable", "architectures": {"x86_64": {"artifacts": {"metal": metal}}}}
    release, found = assets.stream_artifacts(stream, "http://m/streams/stable.json", "stable")
    assert release == "41.1" and found["rootfs"].url == "http://m/streams/k"
    assert found["initrd"].signature == "http://m/streams/k.sig"
    del pxe["rootfs"]["sha256"]
    with pytest.raises(assets.AssetError, match=r"formats\.pxe\.rootfs\.sha256"):
        assets.stream_artifacts(stream, "u", "stable")
    pxe["rootfs"] = {**good, "sha256": "not-hex"}
    with pytest.raises(assets.AssetError, match="is not a SHA-256"):
        assets.stream_artifacts(stream, "u", "stable")
    with pytest.raises(assets.AssetError, match=r"has no architectures\.x86_64"):
        assets.stream_artifacts({"stream": "stable", "architectures": {}}, "u", "stable")


def test_vm_choices_name_a_server_and_its_firmware(tmp_path: Path) -> None:
    from labctl.errors import LabctlError
    from labctl.sim import vm

    assert vm.parse_choices(("fohn", "wind:uefi", "chequita:bios")) == {
        "fohn": "bios",
        "wind": "uefi",
        "chequita": "bios",
    }
    with pytest.raises(LabctlError, match="'coreboot' is not one of bios, uefi"):
        vm.parse_choices(("fohn:coreboot",))
    with pytest.raises(LabctlError, match="twice with different firmware"):
        vm.parse_choices(("fohn", "fohn:uefi"))
    config = {"tap": "t", "mac": "52:54:00:00:00:01", "disk": "/d", "firmware": "uefi"}
    argv = vm.qemu_argv(config, tmp_path, pxe=True)  # OVMF: the ovmf package (setup.sh)
    assert any("OVMF_CODE" in a for a in argv)
    assert (tmp_path / "OVMF_VARS.fd").exists()  # its own copy of the variable store


def test_the_stand_in_s_fcos_stream_is_what_boot_fetch_reads() -> None:
    from labctl.boot import assets

    files = {"kernel": b"k", "initramfs": b"i", "rootfs": installer.FCOS_ROOTFS}
    stream = installer.stream_metadata("testing", files)
    url = "file:///cache/abc/testing.json"
    release, found = assets.stream_artifacts(stream, url, "testing")
    assert release == installer.FCOS_RELEASE
    assert found["rootfs"].url == f"file:///cache/abc/{installer.FCOS_NAMES['rootfs']}"
    assert found["initrd"].sha256 == hashlib.sha256(b"i").hexdigest()


def _unit(config: dict[str, Any], name: str) -> str:
    units = config["systemd"]["units"]
    found: str = next(u for u in units if u["name"] == name)["contents"]
    return found


def _file_text(config: dict[str, Any], path: str) -> tuple[int, str]:
    from labctl.render.ignition import data_url_text

    files = config["storage"]["files"]
    entry = next(f for f in files if f["path"] == path)
    return entry["mode"], data_url_text(entry["contents"]["source"])


def test_flatcar_install_is_told_the_version_and_labctl_s_verified_image(
    inventory: Inventory,
) -> None:
    """flatcar-install with -C but no -V installs the channel's *current* release (its
    prep_url: CHANNEL_SPECIFIED without VERSION_SPECIFIED means VERSION_ID=current) and
    downloads it from the release server: -V and -b (the boot service's cache) say which
    and from where."""
    fohn = inventory.server("fohn")
    config = boot.installer_config(inventory, fohn, version="3975.2.0", token=TOKEN)
    exec_start = next(
        line
        for line in _unit(config, "labctl-install.service").splitlines()
        if line.startswith("ExecStart=")
    )
    assert exec_start == (
        "ExecStart=/opt/labctl-install beta 3975.2.0 "
        "http://31.31.164.218:8080/flatcar/9c:8e:99:1a:2b:01"
    )
    _, script = _file_text(config, "/opt/labctl-install")
    assert 'flatcar-install -d "$(arg disk)" -C "$1" -V "$2" -b "$3" -i /tmp/labctl.ign' in script


def test_the_install_report_carries_the_install_s_token(inventory: Inventory) -> None:
    config = boot.installer_config(inventory, inventory.server("fohn"), version="1", token=TOKEN)
    mode, text = _file_text(config, boot.TOKEN_PATH)
    assert (mode, text) == (0o600, f"LABCTL_INSTALL_TOKEN={TOKEN}\n")
    assert "EnvironmentFile=/etc/labctl/install-token" in _unit(config, "labctl-install.service")
    _, script = _file_text(config, "/opt/labctl-install")
    assert '-H "X-Labctl-Install-Token: ${LABCTL_INSTALL_TOKEN:?}"' in script


def test_coreos_installer_installs_the_live_image_offline(tmp_path: Path) -> None:
    """Without an image source coreos-installer may download the stream's newest image;
    its config directory's ``offline: true`` makes it install the live system's own
    (the rootfs labctl served from its cache) or fail."""
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text().replace(
            "os: {distribution: flatcar, channel: alpha}",
            "os: {distribution: fedora-coreos, channel: stable}",
        )
    )
    inventory = require_inventory(path)
    config = boot.installer_config(inventory, inventory.server("wind"), version="1", token=TOKEN)
    assert _file_text(config, boot.FCOS_INSTALLER_CONFIG) == (0o644, "offline: true\n")
    assert _file_text(config, boot.TOKEN_PATH)[1] == f"LABCTL_INSTALL_TOKEN={TOKEN}\n"
    for unit in ("labctl-install-report.service", "labctl-install-failed.service"):
        assert "EnvironmentFile=/etc/labctl/install-token" in _unit(config, unit)
