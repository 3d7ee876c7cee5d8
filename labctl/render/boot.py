"""What the boot service answers a booting server with, from the inventory, as plain data.

A server's PXE firmware asks DHCP, gets iPXE over TFTP (``undionly.kpxe`` for
BIOS, ``ipxe.efi`` for UEFI, told apart by DHCP option 93), and iPXE runs a
fixed TFTP script that chains to labctl's HTTP endpoint with the NIC's MAC in
the path. Only there is the server known: its iPXE script names its kernel,
initrd and Ignition under the same MAC, so a MAC the inventory does not list
gets nothing past DHCP (which ignores it too). dnsmasq's configuration lives
here as data; ``labctl.boot.service`` writes it and runs dnsmasq.

Flatcar's PXE image is a live system: it reads the *installer* Ignition
(``installer_config``), whose one unit runs ``flatcar-install`` onto the OS
disk with the server's own Ignition, told the version (``-V``) and to fetch
that version's image and signature from the boot service (``-b``), which
serves them from labctl's verified cache, and POSTs the result to labctl. Fedora
CoreOS's live PXE system installs itself when told to on the kernel command
line (``coreos.inst.install_dev``, ``coreos.inst.ignition_url``, as its
documentation gives them; its root file system comes from
``coreos.live.rootfs_url``); its installer Ignition only adds the report:
after ``coreos-installer.service`` (or on its failure) a unit POSTs the result
and, on success, powers off; a file in coreos-installer's config directory
(``offline: true``) makes it install the live image labctl served rather than
download one. Every report carries this install's token, from a 0600 file in
the installer Ignition. The stand-in installer of the simulated lab reads
the same kernel arguments (``labctl.*``) and does the same work with the real
Ignition binary.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from labctl.data import shell
from labctl.inventory.model import BootService, Inventory, Nic, Server
from labctl.render.ignition import SPEC_VERSION, data_url, os_disk
from labctl.render.quoting import config_lines, plain_word
from labctl.render.systemd import exec_command, unit_text

TFTP_SCRIPT = "labctl.ipxe"
BIOS_LOADER = "undionly.kpxe"
UEFI_LOADER = "ipxe.efi"
# Option 93 client architectures that want an EFI binary (x86-64 EFI, EFI BC).
UEFI_ARCHES = (7, 9)


@dataclass(frozen=True)
class DnsmasqPaths:
    """Where the running dnsmasq keeps its files (on the boot server)."""

    tftp_root: str
    leases: str
    log: str
    pid: str


def boot_settings(inventory: Inventory) -> BootService:
    boot = inventory.lab.boot
    if boot is None:
        raise ValueError("the inventory has no lab.boot: no boot service to run")
    return boot


def normal_mac(mac: str) -> str:
    """MACs compared and put in paths as lower-case colon pairs."""
    return mac.strip().lower().replace("-", ":")


def pxe_nic(server: Server) -> Nic | None:
    for nic in server.nics:
        if nic.pxe:
            return nic
    return None


def servers_by_mac(inventory: Inventory) -> dict[str, Server]:
    """Every PXE NIC's MAC to its server: the only MACs the boot service answers."""
    found = {}
    for server in inventory.servers:
        nic = pxe_nic(server)
        if nic is not None:
            found[normal_mac(nic.mac)] = server
    return found


def boot_address_of(inventory: Inventory, server: Server) -> str | None:
    """The address full DHCP hands the server's PXE NIC: its own on the boot network."""
    boot = boot_settings(inventory)
    nic = pxe_nic(server)
    if nic is None:
        return None
    for address in nic.addresses:
        if address.network == boot.network:
            return address.address
    return None


def base_url(inventory: Inventory) -> str:
    boot = boot_settings(inventory)
    return f"http://{boot.address}:{boot.http_port}"


def dnsmasq_conf(inventory: Inventory, paths: DnsmasqPaths) -> str:
    """dnsmasq as DHCP (full or proxy) and TFTP server for the inventory's PXE NICs only."""
    boot = boot_settings(inventory)
    network = ipaddress.ip_network(inventory.network(boot.network).cidr, strict=False)
    lines = [
        "# written by labctl from the inventory; dnsmasq serves DHCP and TFTP only",
        "port=0",  # no DNS
        "bind-interfaces",
        f"listen-address={boot.address}",
    ]
    if boot.interface:
        lines.append(f"interface={plain_word('lab.boot.interface', boot.interface)}")
    if boot.dhcp == "proxy":
        lines.append(f"dhcp-range={network.network_address},proxy,{network.netmask}")
    else:
        # "static": only the dhcp-host entries below get an address.
        lines.append(f"dhcp-range={network.network_address},static,{network.netmask},1h")
        gateway = inventory.network(boot.network).gateway
        if gateway:
            lines.append(f"dhcp-option=option:router,{gateway}")
    for mac, server in servers_by_mac(inventory).items():
        address = boot_address_of(inventory, server) if boot.dhcp == "full" else None
        name = plain_word("server name", server.name)
        lines.append(f"dhcp-host={mac},{address + ',' if address else ''}set:known,{name}")
    lines += [
        "dhcp-ignore=tag:!known",  # a MAC the inventory does not list gets no answer
        "log-dhcp",
        "enable-tftp",
        f"tftp-root={paths.tftp_root}",
        "tftp-secure",
        "dhcp-match=set:ipxe,175",
        *(f"dhcp-match=set:efi,option:client-arch,{arch}" for arch in UEFI_ARCHES),
        f"dhcp-boot=tag:!ipxe,tag:efi,{UEFI_LOADER},,{boot.address}",
        f"dhcp-boot=tag:!ipxe,tag:!efi,{BIOS_LOADER},,{boot.address}",
        f"dhcp-boot=tag:ipxe,{TFTP_SCRIPT},,{boot.address}",
    ]
    if boot.dhcp == "proxy":
        # proxyDHCP answers through PXE menus; one entry per firmware kind boots at once.
        lines += [
            # A basename with a dot gets no ".0" added by dnsmasq.
            f"pxe-service=tag:!ipxe,x86PC,labctl,{BIOS_LOADER}",
            f"pxe-service=tag:!ipxe,X86-64_EFI,labctl,{UEFI_LOADER}",
            f"pxe-service=tag:ipxe,x86PC,labctl,{TFTP_SCRIPT}",
        ]
    lines += [
        f"dhcp-leasefile={paths.leases}",
        f"log-facility={paths.log}",
        f"pid-file={paths.pid}",
    ]
    # One option a line: a value with a line break would add options of its own.
    return config_lines("dnsmasq configuration", lines)


def chain_script(inventory: Inventory) -> str:
    """The one TFTP script: on to HTTP, where the NIC's MAC selects the server."""
    return "\n".join(
        [
            "#!ipxe",
            "echo labctl: asking for the script of ${net0/mac}",
            f"chain {base_url(inventory)}/ipxe/${{net0/mac}} || shell",
            "",
        ]
    )


def mac_url(inventory: Inventory, server: Server, what: str) -> str:
    nic = pxe_nic(server)
    assert nic is not None, f"{server.name} has no PXE NIC"
    return f"{base_url(inventory)}/{what}/{normal_mac(nic.mac)}"


def _distribution_args(inventory: Inventory, server: Server, disk: str) -> list[str]:
    if server.os.distribution == "fedora-coreos":
        return [
            f"coreos.live.rootfs_url={mac_url(inventory, server, 'rootfs')}",
            "ignition.firstboot",
            "ignition.platform.id=metal",
            f"ignition.config.url={mac_url(inventory, server, 'install')}",
            f"coreos.inst.install_dev={disk}",
            f"coreos.inst.ignition_url={mac_url(inventory, server, 'ignition')}",
            # labctl powers the server on from disk itself, after the report.
            "coreos.inst.skip_reboot",
        ]
    return [
        "flatcar.first_boot=1",
        f"ignition.config.url={mac_url(inventory, server, 'install')}",
        "ignition.platform.id=metal",
    ]


def kernel_args(inventory: Inventory, server: Server) -> list[str]:
    """The installer's command line: the distribution's own, then labctl's (read by the
    stand-in too)."""
    disk = os_disk(server) or ""
    return [
        "initrd=initrd",
        *_distribution_args(inventory, server, disk),
        "console=tty0",
        "console=ttyS0,115200n8",
        f"labctl.server={server.name}",
        f"labctl.config={mac_url(inventory, server, 'ignition')}",
        f"labctl.report={mac_url(inventory, server, 'report')}",
        f"labctl.disk={disk}",
    ]


def ipxe_script(inventory: Inventory, server: Server) -> str:
    """iPXE expands ``${...}`` and splits on blanks with no quoting a kernel argument
    survives, so every word from the inventory must be a plain word or is refused."""
    words = [mac_url(inventory, server, "kernel"), *kernel_args(inventory, server)]
    words = [plain_word("iPXE kernel argument", word) for word in words]
    return "\n".join(
        [
            "#!ipxe",
            f"echo labctl: installing {plain_word('server name', server.name)}",
            " ".join(["kernel", *words]),
            f"initrd --name initrd {mac_url(inventory, server, 'initrd')}",
            "boot",
            "",
        ]
    )


# The installers' scripts, written whole into their Ignition configs. The report carries
# this install's token (from the installer Ignition's token file, through the unit's
# EnvironmentFile): the boot service refuses a report without it.
INSTALL_SCRIPT = shell.script("flatcar-install")
FCOS_REPORT_SCRIPT = shell.script("fcos-report")

TOKEN_PATH = "/etc/labctl/install-token"
TOKEN_HEADER = "X-Labctl-Install-Token"
TOKEN_VARIABLE = "LABCTL_INSTALL_TOKEN"
# coreos-installer reads every file here as a config file of its long options
# (scripts/coreos-installer-service; src/cmdline/install.rs): ``offline`` makes it
# install the image of the live system it runs in (its osmet, i.e. the rootfs labctl
# served from its verified cache), and fail rather than download anything.
FCOS_INSTALLER_CONFIG = "/etc/coreos/installer.d/50-labctl.yaml"


def token_file(token: str) -> dict[str, Any]:
    """This install's report token, for the report unit's EnvironmentFile (0600)."""
    return {
        "path": TOKEN_PATH,
        "mode": 0o600,
        "overwrite": True,
        "contents": {"source": data_url(f"{TOKEN_VARIABLE}={token}\n")},
    }


def _fcos_installer_config(token: str) -> dict[str, Any]:
    """Fedora CoreOS installs itself (kernel arguments); this only reports how it went.

    On success a unit ordered after ``coreos-installer.service`` reports and powers off;
    on failure that unit's requirement fails, and a drop-in adds labctl's report to the
    installer's own ``OnFailure`` (its emergency shell stays, for the console).
    """
    report = "/opt/labctl-report"
    ok = unit_text(
        {
            "Unit": [
                ("Description", "labctl: report the finished install to labctl"),
                ("Requires", "coreos-installer.service"),
                ("After", "coreos-installer.service"),
            ],
            "Service": [
                ("Type", "oneshot"),
                ("EnvironmentFile", TOKEN_PATH),
                ("ExecStart", report),
            ],
            "Install": [("WantedBy", "multi-user.target")],
        }
    )
    failed = unit_text(
        {
            "Unit": [("Description", "labctl: report the failed install to labctl")],
            "Service": [
                ("Type", "oneshot"),
                ("EnvironmentFile", TOKEN_PATH),
                ("ExecStart", report),
            ],
        }
    )
    return {
        "ignition": {"version": SPEC_VERSION},
        "storage": {
            "files": [
                {
                    "path": report,
                    "mode": 0o755,
                    "overwrite": True,
                    "contents": {"source": data_url(FCOS_REPORT_SCRIPT)},
                },
                {
                    "path": FCOS_INSTALLER_CONFIG,
                    "mode": 0o644,
                    "overwrite": True,
                    "contents": {"source": data_url("offline: true\n")},
                },
                token_file(token),
            ]
        },
        "systemd": {
            "units": [
                {"name": "labctl-install-report.service", "enabled": True, "contents": ok},
                {"name": "labctl-install-failed.service", "contents": failed},
                {
                    "name": "coreos-installer.service",
                    "dropins": [
                        {
                            "name": "50-labctl-report.conf",
                            "contents": unit_text(
                                {"Unit": [("OnFailure", "labctl-install-failed.service")]}
                            ),
                        }
                    ],
                },
            ]
        },
    }


def installer_config(
    inventory: Inventory, server: Server, *, version: str, token: str
) -> dict[str, Any]:
    """The Ignition config the live PXE system boots with: install (Flatcar) and report.

    ``version`` is the release to install (``os.version``, else the one the asset
    cache holds); ``token`` this install's report token (``labctl.boot.http`` mints
    it; the boot service refuses a report without it).
    """
    if server.os.distribution == "fedora-coreos":
        return _fcos_installer_config(token)
    unit = unit_text(
        {
            "Unit": [
                ("Description", "labctl: install Flatcar onto the OS disk"),
                ("Wants", "network-online.target"),
                ("After", "network-online.target"),
            ],
            "Service": [
                ("Type", "oneshot"),
                ("EnvironmentFile", TOKEN_PATH),
                (
                    "ExecStart",
                    exec_command(
                        [
                            "/opt/labctl-install",
                            server.os.channel,
                            version,
                            mac_url(inventory, server, "flatcar"),
                        ]
                    ),
                ),
            ],
            "Install": [("WantedBy", "multi-user.target")],
        }
    )
    return {
        "ignition": {"version": SPEC_VERSION},
        "storage": {
            "files": [
                {
                    "path": "/opt/labctl-install",
                    "mode": 0o755,
                    "overwrite": True,
                    "contents": {"source": data_url(INSTALL_SCRIPT)},
                },
                token_file(token),
            ]
        },
        "systemd": {
            "units": [{"name": "labctl-install.service", "enabled": True, "contents": unit}]
        },
    }


def installer_config_text(inventory: Inventory, server: Server, *, version: str, token: str) -> str:
    config = installer_config(inventory, server, version=version, token=token)
    return json.dumps(config, indent=2) + "\n"
