"""The BGP fabric read from the devices: the switches' FRR JSON or BGP4-MIB, BIRD on the nodes.

``labctl bgp status`` and the calico layer's last step (``calico.established``)
ask through here. Every device is asked in parallel, over one SSH session each
(``labctl/targets.py``: switches on their management address; an FRR switch's
sessions and routes in one ``vtysh`` run) or, for a switch whose ``bgp_status`` is
``snmp``, over SNMP (``switch_snmp.py``), and the pod blocks (below) are read from the
API beside them; a device that does not answer is named with the reason, and its
sessions count as down.
Nodes are read only where the platform names a command that prints their BIRD
protocols (``Platform.node_bgp_query``: the simulated lab's ``birdc``, BIRD standing
in for calico-node); on a real lab calico-node's BIRD is inside its container and
only the switches' side is read, and the pod blocks each node must announce are the
ones Calico's IPAM gave it (its BlockAffinities on the Kubernetes API), not the
blocks ``topology`` assigns the stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.calico import status as parse
from labctl.calico import switch_snmp
from labctl.errors import LabctlError
from labctl.inventory import topology
from labctl.inventory.model import Inventory, Switch
from labctl.targets import InventoryConnector

if TYPE_CHECKING:
    from labctl.drivers.bgp_snmp import SwitchSnmpEndpoint

FRR_SUMMARY = ("vtysh", "-c", "show bgp summary json")
FRR_ROUTES = ("vtysh", "-c", "show ip route bgp json")
# Both in one vtysh start and one exchange; each answer is one JSON document.
FRR_READ = ("vtysh", "-c", FRR_SUMMARY[2], "-c", FRR_ROUTES[2])


class BgpSession:
    def __init__(
        self,
        inventory: Inventory,
        base_dir: Path,
        node_query: tuple[str, ...] | None = None,
        switch_platform: str | None = None,
        pod_blocks: Callable[[], dict[str, list[str]] | None] | None = None,
        stand_in_blocks: dict[str, list[str]] | None = None,
    ) -> None:
        self.inventory = inventory
        # Where the nodes' pod blocks are read (None, or None from it: topology's, the
        # stand-in's).
        self.pod_blocks = pod_blocks
        # What a node announces instead while it still runs the stand-in's BIRD file
        # (``status.assemble``); None: nothing else will do.
        self.stand_in_blocks = stand_in_blocks
        # What prints a node's BIRD protocols, run on the node (None: nodes are not asked).
        self.node_query = node_query
        self.switch_platform = switch_platform
        self.base_dir = base_dir
        self._connector = InventoryConnector(inventory, base_dir)

    def __enter__(self) -> BgpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connector.close()

    def _switch(
        self, switch: Switch, snmp: SwitchSnmpEndpoint | None
    ) -> tuple[dict[str, str], dict[str, list[str]]]:
        if snmp is not None:
            return switch_snmp.read(snmp)
        ssh = self._connector.ssh(switch.name)
        both = parse.frr_documents(ssh.run(FRR_READ, timeout=10.0).text(), 2)
        if both is None:  # an answer that is not JSON (or none): each asked alone, as before
            both = [ssh.run(c, timeout=10.0).text() for c in (FRR_SUMMARY, FRR_ROUTES)]
        summary, routes = both
        return parse.frr_peers(summary), parse.frr_bgp_routes(routes)

    def _node(self, name: str) -> dict[str, str]:
        assert self.node_query is not None
        ssh = self._connector.ssh(name)
        result = ssh.run(self.node_query, timeout=10.0, check=False)
        if not result.ok:
            text = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise LabctlError(f"birdc failed: {text or f'exit {result.exit_code}'}")
        return parse.bird_protocols(result.text())

    def status(self) -> parse.FabricStatus:
        inv = self.inventory
        switches = {s.name: s for s in topology.peering_switches(inv)}
        sources = {
            s.name: source
            for s in switches.values()
            if (source := switch_snmp.source(s, self.switch_platform)) is not None
        }
        # Secrets first: a missing one is the operator's to fix, not a device's silence.
        snmp = {
            name: switch_snmp.endpoint(switches[name], self.base_dir)
            for name, source in sources.items()
            if source == "snmp"
        }
        nodes = [s.name for s in topology.nodes(inv)] if self.node_query else []
        switch_peers: dict[str, dict[str, str]] = {}
        switch_routes: dict[str, dict[str, list[str]]] = {}
        node_protocols: dict[str, dict[str, str]] = {}
        unreachable: dict[str, str] = {}
        blocks = None
        with ThreadPoolExecutor(max_workers=8) as pool:
            # The API's pod blocks beside the devices' reads, not after them.
            blocks_job = pool.submit(self.pod_blocks) if self.pod_blocks is not None else None
            switch_jobs = {
                name: pool.submit(self._switch, switches[name], snmp.get(name)) for name in sources
            }
            node_jobs = {name: pool.submit(self._node, name) for name in nodes}
            for name, job in switch_jobs.items():
                try:
                    switch_peers[name], switch_routes[name] = job.result()
                except (LabctlError, OSError, ValueError) as exc:
                    unreachable[name] = str(exc)
            for name, node_job in node_jobs.items():
                try:
                    node_protocols[name] = node_job.result()
                except (LabctlError, OSError) as exc:
                    unreachable[name] = str(exc)
            if blocks_job is not None:
                try:
                    blocks = blocks_job.result()
                except (LabctlError, OSError) as exc:
                    unreachable["the Kubernetes API"] = (
                        f"cannot read Calico's block affinities: {exc}"
                    )
                    blocks = {}
        return parse.assemble(
            inv,
            switch_peers,
            switch_routes,
            node_protocols,
            unreachable,
            sources,
            blocks,
            self.stand_in_blocks,
        )

    def wait_established(
        self, timeout: float, interval: float = 0.5, mesh: bool = True
    ) -> parse.FabricStatus:
        """Poll until every session is up and every block learned; raise naming what is not.

        A switch session read from neither end is not up: it fails at once, since no
        wait makes it readable (a real lab reads only the switches' side). ``mesh``
        False: the sessions between nodes are not waited for (``switch_side``).
        """
        deadline = time.monotonic() + timeout
        while True:
            current = self.status()
            if not mesh:
                current = current.switch_side()
            if current.unread:
                raise LabctlError(f"cannot prove the BGP fabric up: {'; '.join(current.unread)}")
            if current.ok:
                return current
            if time.monotonic() >= deadline:
                raise LabctlError(
                    f"the BGP fabric is not up after {timeout:g} s: {'; '.join(current.problems)}"
                )
            time.sleep(interval)
