"""A switch's BGP side over SNMP: its BGP4-MIB endpoint from the inventory, rows turned to state.

``bgp status`` reads a switch whose ``bgp_status`` is ``snmp`` through here
instead of FRR's JSON over SSH: the driver walks bgpPeerTable and
bgp4PathAttrTable on the management address, ``bgp4_mib`` turns the rows into
the same peer -> state and prefix -> next hops that ``status.assemble`` judges.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from labctl.calico import bgp4_mib
from labctl.errors import LabctlError
from labctl.inventory.model import Switch
from labctl.inventory.problems import format_path

if TYPE_CHECKING:  # pysnmp is imported when a switch is read over SNMP, not by every bootstrap
    from labctl.drivers.bgp_snmp import SwitchSnmpEndpoint

SOURCES = ("ssh-frr", "snmp")


def source(switch: Switch, platform_override: str | None = None) -> str | None:
    """Where the switch's BGP side is read (None: it is not).

    ``platform_override`` is the simulated lab's (every switch runs FRR there);
    a ``bgp_status`` the inventory gives wins over it.
    """
    if switch.bgp_status is not None:
        return switch.bgp_status
    return "ssh-frr" if (platform_override or switch.platform) == "frr" else None


def endpoint(switch: Switch, base_dir: Path, timeout: float = 3.0) -> SwitchSnmpEndpoint:
    """Where and how to ask; its secrets resolved (SecretError naming the field, if not)."""
    from labctl.drivers.bgp_snmp import SwitchSnmpEndpoint
    from labctl.snmp_credentials import credentials

    if switch.snmp is None or switch.management is None:
        # The schema requires snmp with bgp_status snmp; LAB099 the management address.
        raise LabctlError(
            f"{switch.name}: bgp_status snmp needs snmp settings and a management address"
        )
    where = format_path((*switch.path, "snmp"))
    return SwitchSnmpEndpoint(
        switch.management.address,
        credentials(switch.snmp, where, base_dir),
        port=switch.snmp.port,
        timeout=timeout,
        retries=1,
        name=switch.name,
    )


def read(target: SwitchSnmpEndpoint) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Peer address -> state, prefix -> next hops, as the switch's BGP4-MIB says."""
    from labctl.drivers.bgp_snmp import read_bgp

    rows = read_bgp(target)
    return bgp4_mib.peer_states(rows), bgp4_mib.routes(rows)
