"""Each reference server's Ignition config against a reviewed golden file, and its rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import ignition
from tests.conftest import REFERENCE, assert_golden


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def files_of(config: dict[str, Any]) -> dict[str, str]:
    return {
        f["path"]: unquote(f["contents"]["source"].removeprefix("data:,"))
        for f in config["storage"]["files"]
    }


@pytest.mark.parametrize("name", ["fohn", "chequita", "wind"])
def test_ignition_matches_golden(inventory: Inventory, name: str) -> None:
    assert_golden(f"ignition-{name}.ign", ignition.config_text(inventory, inventory.server(name)))


def test_static_network_from_the_ip_plan(inventory: Inventory) -> None:
    files = files_of(ignition.config(inventory, inventory.server("fohn")))
    public = files["/etc/systemd/network/10-labctl-eno1.network"]
    assert "Address=31.31.164.220/28" in public
    assert "Gateway=31.31.164.209" in public
    assert "DNS=9.9.9.9" in public and "DHCP=no" in public
    storage = files["/etc/systemd/network/10-labctl-ens1f0.network"]
    assert "Address=10.31.10.20/24" in storage
    assert "Gateway" not in storage  # one default route, on the network labctl reaches
    link = files["/etc/systemd/network/10-labctl-ens1f0.link"]
    assert "MACAddress=a0:36:9f:3c:4d:01" in link and "Name=ens1f0" in link


def test_hostname_user_keys_time_and_updates(inventory: Inventory) -> None:
    wind = inventory.server("wind")
    config = ignition.config(inventory, wind)
    files = files_of(config)
    assert files["/etc/hostname"] == "wind\n"
    (user,) = config["passwd"]["users"]
    assert user["name"] == "core"
    assert user["sshAuthorizedKeys"] == list(inventory.lab.ssh.authorized_keys)
    assert (
        "NTP=0.se.pool.ntp.org 1.se.pool.ntp.org"
        in files["/etc/systemd/timesyncd.conf.d/10-labctl.conf"]
    )
    assert files["/etc/flatcar/update.conf"] == "GROUP=alpha\nREBOOT_STRATEGY=off\n"
    assert {"name": "locksmithd.service", "mask": True} in config["systemd"]["units"]
    record = json.loads(files[ignition.IDENTITY_PATH])
    assert record["server"] == "wind"
    assert record["config"] == ignition.install_digest(inventory, wind)


def test_no_secret_is_served(inventory: Inventory) -> None:
    """The config goes over plain HTTP: no password, key or passphrase may be in it."""
    for server in inventory.servers:
        text = ignition.config_text(inventory, server)
        assert "PRIVATE KEY" not in text and "password" not in text.lower()
        assert server.bmc.username not in json.dumps(ignition.config(inventory, server)["passwd"])


def edited(tmp_path: Path, old: str, new: str) -> Inventory:
    path = tmp_path / "inventory.yaml"
    text = REFERENCE.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return require_inventory(path)


def test_fedora_coreos_gets_networkmanager_and_zincati(tmp_path: Path) -> None:
    inv = edited(
        tmp_path,
        "os: {distribution: flatcar, channel: alpha}",
        "os: {distribution: fedora-coreos, channel: stable, reboot_strategy: reboot}",
    )
    config = ignition.config(inv, inv.server("wind"))
    files = files_of(config)
    keyfile = files["/etc/NetworkManager/system-connections/eno1.nmconnection"]
    assert "address1=31.31.164.222/28,31.31.164.209" in keyfile
    assert 'strategy = "immediate"' in files["/etc/zincati/config.d/55-labctl-updates.toml"]
    assert not any(p.startswith("/etc/systemd/network/") for p in files)


def test_mtu_goes_on_the_link(tmp_path: Path) -> None:
    inv = edited(tmp_path, "    purpose: storage\n", "    purpose: storage\n    mtu: 9000\n")
    files = files_of(ignition.config(inv, inv.server("fohn")))
    assert "MTUBytes=9000" in files["/etc/systemd/network/10-labctl-ens1f0.network"]
    assert "MTUBytes" not in files["/etc/systemd/network/10-labctl-eno1.network"]


def test_the_install_digest_follows_the_inventory(tmp_path: Path, inventory: Inventory) -> None:
    inv = edited(tmp_path, "0.se.pool.ntp.org", "2.se.pool.ntp.org")
    fohn = inventory.server("fohn")
    assert ignition.install_digest(inv, inv.server("fohn")) != ignition.install_digest(
        inventory, fohn
    )
    assert ignition.install_digest(inventory, fohn) == ignition.install_digest(inventory, fohn)


def test_the_minted_host_key_is_planted_0600_and_stays_out_of_the_digest(
    inventory: Inventory, tmp_path: Path
) -> None:
    from labctl.boot import hostkeys

    key = hostkeys.ensure(tmp_path, "fohn")
    private = tmp_path / "os" / "hostkeys" / "fohn"
    assert private.stat().st_mode & 0o777 == 0o600
    assert hostkeys.load(tmp_path, "fohn") == key  # minted once, then kept
    assert "PRIVATE" not in repr(key) and key.fingerprint in repr(key)
    fohn = inventory.server("fohn")
    plain = ignition.config(inventory, fohn)
    planted = ignition.config(inventory, fohn, (key.private, key.public))
    files = {f["path"]: f for f in planted["storage"]["files"]}
    secret = files["/etc/ssh/ssh_host_ed25519_key"]
    assert secret["mode"] == 0o600
    assert unquote(secret["contents"]["source"].removeprefix("data:,")) == key.private
    public = unquote(files["/etc/ssh/ssh_host_ed25519_key.pub"]["contents"]["source"][6:])
    assert public.split()[:2] == key.public.split()[:2]
    # The identity file (and so the install digest) names only what the inventory says.
    assert files[ignition.IDENTITY_PATH] == plain["storage"]["files"][-1]
