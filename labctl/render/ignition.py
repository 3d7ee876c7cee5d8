"""Each server's Ignition config (spec 3.3.0), from the inventory, as plain data.

A network-booted installer applies it to the OS disk on first boot, so it holds
everything the node needs to be reached by labctl over SSH afterwards and
nothing more: the hostname, the login user with the operator's public keys,
static addresses from the IP plan (one systemd-networkd ``.link`` naming each
NIC by its MAC and one ``.network`` per NIC, or NetworkManager keyfiles on
Fedora CoreOS, which does not run networkd), time sync, the update strategy and
a small identity file labctl reads back to know the node is the one it
installed. It is served over plain HTTP while the node boots, so keys and
certificates follow over SSH (pki layer), with one exception: the node's SSH
host key, minted by labctl per server (``labctl.boot.hostkeys``), goes in
so that the first SSH after the install can pin it instead of believing
whatever key answers first. It is added after the digest is taken, so the
identity file and the golden files name only what the inventory says.

Update strategy: locksmithd's ``etcd-lock`` (what the reference lab ran) is
deprecated in today's Flatcar. Coordinated reboots here go through labctl's
quorum guard instead: with ``etcd-lock`` the node downloads updates
(update_engine, or nothing on Fedora CoreOS, whose Zincati has no download-only
mode) but never reboots on its own (locksmithd masked, Flatcar
``REBOOT_STRATEGY=off``); labctl reboots servers one at a time after the guard
has read every etcd and Ceph monitor member. ``reboot`` lets each node reboot
when an update is ready, ``off`` takes no updates' reboots at all.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote

from labctl.errors import RenderError
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory, Network, Nic, Server
from labctl.render.quoting import absolute_path, one_line, plain_word
from labctl.render.systemd import Unit, env_text, unit_text

SPEC_VERSION = "3.3.0"
IDENTITY_PATH = "/etc/labctl/installed.json"
NETWORKD_DIR = "/etc/systemd/network"
NM_DIR = "/etc/NetworkManager/system-connections"


def data_url(text: str) -> str:
    """RFC 2397 URL with the text percent-encoded, as Ignition reads ``contents.source``."""
    # "/", ":", "=" stay readable in the golden files; spaces and newlines are escaped.
    return "data:," + quote(text, safe="/:=@+")


def data_url_text(source: str) -> str:
    """The text a ``data:,`` URL from ``data_url`` holds (what Ignition writes)."""
    return unquote(source.removeprefix("data:,"))


def _file(path: str, text: str, mode: int = 0o644) -> dict[str, Any]:
    # A path made from inventory names (a NIC's) must stay the one file meant.
    absolute_path("an Ignition file", path)
    # overwrite: an image may ship a default (/etc/hostname, update.conf) that ours replaces.
    return {"path": path, "mode": mode, "overwrite": True, "contents": {"source": data_url(text)}}


def prefix_address(inventory: Inventory, network: str, address: str) -> str:
    """``address`` with its network's prefix length (``10.31.10.20/24``)."""
    prefix = ipaddress.ip_network(inventory.network(network).cidr, strict=False).prefixlen
    return f"{address}/{prefix}"


def _gateway_network(inventory: Inventory, server: Server) -> Network | None:
    """The network whose gateway is the server's default route: the one labctl reaches it on.

    One default route only: a gateway on every network would leave the kernel
    choosing between them.
    """
    reached = primary_address(server, inventory)
    for address in server.addresses():
        if address.address == reached:
            network = inventory.network(address.network)
            return network if network.gateway else None
    return None


def _nic_networks(inventory: Inventory, nic: Nic) -> list[Network]:
    return [inventory.network(a.network) for a in nic.addresses]


def link_unit(nic: Nic) -> Unit:
    """Gives the NIC with this MAC the inventory's name, whatever the kernel called it."""
    return {"Match": [("MACAddress", nic.mac)], "Link": [("Name", nic.name)]}


def network_unit(inventory: Inventory, server: Server, nic: Nic) -> Unit:
    """Static addresses, the default route where it belongs, resolvers and MTU; never DHCP."""
    gateway = _gateway_network(inventory, server)
    networks = _nic_networks(inventory, nic)
    entries: list[tuple[str, str]] = [("DHCP", "no"), ("LinkLocalAddressing", "no")]
    entries += [("Address", prefix_address(inventory, a.network, a.address)) for a in nic.addresses]
    for network in networks:
        if gateway is not None and network.name == gateway.name and network.gateway:
            entries.append(("Gateway", network.gateway))
    for network in networks:
        entries += [("DNS", server_ip) for server_ip in network.dns]
    unit: dict[str, list[tuple[str, str]]] = {
        "Match": [("MACAddress", nic.mac)],
        "Network": entries,
    }
    mtus = [n.mtu for n in networks if n.mtu is not None]
    if mtus:
        unit["Link"] = [("MTUBytes", str(min(mtus)))]
    return unit


def nm_keyfile(inventory: Inventory, server: Server, nic: Nic) -> str:
    """The same settings as ``network_unit``, as a NetworkManager keyfile (Fedora CoreOS)."""
    gateway = _gateway_network(inventory, server)
    networks = _nic_networks(inventory, nic)
    ipv4: list[tuple[str, str]] = [("method", "manual" if nic.addresses else "disabled")]
    for i, address in enumerate(nic.addresses, start=1):
        value = prefix_address(inventory, address.network, address.address)
        network = inventory.network(address.network)
        if gateway is not None and network.name == gateway.name and network.gateway:
            value += f",{network.gateway}"
        ipv4.append((f"address{i}", value))
    dns = [d for n in networks for d in n.dns]
    if dns:
        ipv4.append(("dns", ";".join(dns) + ";"))
    ethernet = [("mac-address", nic.mac)]
    mtus = [n.mtu for n in networks if n.mtu is not None]
    if mtus:
        ethernet.append(("mtu", str(min(mtus))))
    # GLib's key files unescape a backslash (\s, \n...): a value holding one is refused.
    if "\\" in nic.name:
        raise RenderError(f"NIC name {nic.name!r}: a NetworkManager key file would unescape it")
    return unit_text(
        {
            "connection": [("id", nic.name), ("type", "ethernet"), ("interface-name", nic.name)],
            "ethernet": ethernet,
            "ipv4": ipv4,
            "ipv6": [("method", "disabled")],
        },
        specifiers=False,
    )


def network_files(inventory: Inventory, server: Server) -> list[dict[str, Any]]:
    files = []
    for nic in server.nics:
        if server.os.distribution == "fedora-coreos":
            keyfile = nm_keyfile(inventory, server, nic)
            files.append(_file(f"{NM_DIR}/{nic.name}.nmconnection", keyfile, 0o600))
            continue
        stem = f"{NETWORKD_DIR}/10-labctl-{nic.name}"
        # systemd-networkd takes '%' literally: no specifiers doubled.
        link = unit_text(link_unit(nic), specifiers=False)
        network = unit_text(network_unit(inventory, server, nic), specifiers=False)
        files.append(_file(f"{stem}.link", link))
        files.append(_file(f"{stem}.network", network))
    return files


def timesyncd_conf(inventory: Inventory) -> str:
    servers = inventory.lab.time_servers
    # A blank-separated list: each server one word.
    entries = [("NTP", " ".join(plain_word("time server", s) for s in servers))] if servers else []
    return unit_text({"Time": entries}, specifiers=False)


def update_files(server: Server) -> list[dict[str, Any]]:
    """The update channel and who reboots the node (see the module's paragraph)."""
    strategy = server.os.reboot_strategy
    if server.os.distribution == "fedora-coreos":
        if strategy == "reboot":
            toml = '[updates]\nstrategy = "immediate"\n'
        else:
            toml = "[updates]\nenabled = false\n"
        return [_file("/etc/zincati/config.d/55-labctl-updates.toml", toml)]
    reboot = "reboot" if strategy == "reboot" else "off"
    # Plain KEY=value lines, a value with a blank or line break refused (env_text).
    conf = env_text({"GROUP": server.os.channel, "REBOOT_STRATEGY": reboot})
    return [_file("/etc/flatcar/update.conf", conf)]


def units(inventory: Inventory, server: Server) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [{"name": "systemd-timesyncd.service", "enabled": True}]
    if server.os.distribution == "flatcar":
        found.insert(0, {"name": "systemd-networkd.service", "enabled": True})
        if server.os.reboot_strategy != "reboot":
            # labctl holds the reboot lock (the quorum guard); locksmithd must not reboot.
            found.append({"name": "locksmithd.service", "mask": True})
    return found


def identity(inventory: Inventory, server: Server, digest: str) -> str:
    """What labctl reads back to know it installed this node with this config."""
    record = {
        "server": server.name,
        "lab": inventory.lab.name,
        "distribution": server.os.distribution,
        "channel": server.os.channel,
        "config": digest,
    }
    return json.dumps(record, sort_keys=True) + "\n"


def _body(inventory: Inventory, server: Server) -> dict[str, Any]:
    files = [
        _file("/etc/hostname", one_line("hostname", server.name) + "\n"),
        *network_files(inventory, server),
        _file("/etc/systemd/timesyncd.conf.d/10-labctl.conf", timesyncd_conf(inventory)),
        *update_files(server),
    ]
    user: dict[str, Any] = {"name": inventory.lab.ssh.user}
    if inventory.lab.ssh.authorized_keys:
        user["sshAuthorizedKeys"] = list(inventory.lab.ssh.authorized_keys)
    return {
        "ignition": {"version": SPEC_VERSION},
        "passwd": {"users": [user]},
        "storage": {"files": files},
        "systemd": {"units": units(inventory, server)},
    }


def config_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"


def host_key_files(private: str, public: str) -> list[dict[str, Any]]:
    """The server's ed25519 host key where sshd looks first; sshd refuses a private key
    others can read, so 0600."""
    return [_file(HOST_KEY_PATH, private, 0o600), _file(f"{HOST_KEY_PATH}.pub", public + "\n")]


def config(
    inventory: Inventory, server: Server, host_key: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The server's Ignition config; its identity file names the digest of the rest.

    ``host_key`` is ``(private OpenSSH file, public line)``, planted when given.
    """
    body = _body(inventory, server)
    digest = config_digest(body)
    if host_key is not None:
        body["storage"]["files"] += host_key_files(*host_key)
    body["storage"]["files"].append(_file(IDENTITY_PATH, identity(inventory, server, digest)))
    return body


def config_text(
    inventory: Inventory, server: Server, host_key: tuple[str, str] | None = None
) -> str:
    """The config as served: stable JSON, so the same inventory serves the same bytes."""
    return json.dumps(config(inventory, server, host_key), indent=2, sort_keys=False) + "\n"


def install_digest(inventory: Inventory, server: Server) -> str:
    """Changes exactly when what the server would be installed with changes."""
    return config_digest(_body(inventory, server))


def os_disk(server: Server) -> str | None:
    """The disk the installer writes the OS to (the one disk with role ``os``)."""
    disks: Sequence[str] = [d.device for d in server.disks if d.role == "os"]
    return disks[0] if disks else None
