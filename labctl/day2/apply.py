"""A reset's steps done, one at a time, through the lab's own clients.

``day2/retire.py`` decided the steps and their guards; here each is carried out
with the client labctl already has for that component: the Kubernetes API
(the drain of ``kubernetes/drain.py``, Node deletion), etcd's
(member removal), Ceph's CLI on a monitor's node (out, safe-to-destroy, purge,
monitor removal), SSH to FRR switches (the neighbour), SSH to the node (the wipe,
``data/scripts/reset-node.sh``) and the BMC (power off). Every wait is bounded
and says what it waits for. The first step that fails stops the reset with its
sentence; running the reset again plans from what then runs, so it resumes.

After the wipe the journal forgets the node (and a switch whose neighbour was
removed), and the etcd membership record forgets the member, so the next
bootstrap builds them again rather than trusting what was done before.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.data import shell
from labctl.day2.retire import Step
from labctl.engine.journal import Journal
from labctl.errors import DriverTimeout, LabctlError
from labctl.etcd.membership import RECORD_NAME
from labctl.inventory.model import Inventory
from labctl.kubernetes.drain import drain
from labctl.render import ceph as ceph_render
from labctl.render import etcd as etcd_render
from labctl.render.kubernetes import host as kube_host
from labctl.render.kubernetes import kubelet as kube_kubelet

RESET = shell.body("reset-node")
KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
# Directories labctl fills on a node: certificates, configuration, components' state.
NODE_DIRS = (
    "/etc/ssl/etcd",
    "/etc/etcd",
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    "/etc/ceph",
    "/var/lib/ceph",
)
DRAIN_WAIT = 120.0  # seconds for a node's pods to be evicted and gone
SAFE_WAIT = 600.0  # seconds for Ceph to call a host's OSDs safe to destroy


@dataclass
class Reset:
    """The lab a reset acts on, and where it reports progress."""

    inventory: Inventory
    base_dir: Path
    state_dir: Path
    whole_lab: bool = False
    say: Callable[[str], None] = lambda line: None
    drain_wait: float = DRAIN_WAIT
    kube: Any = None  # the API's client (a KubeClient): made from the PKI store when None
    _connector: Any = None

    def do(self, step: Step) -> None:
        getattr(self, "_" + step.kind.replace("-", "_"))(step)

    # Kubernetes -----------------------------------------------------------------
    def _kube(self) -> Any:
        from labctl.kubernetes.api import KubeSession

        if self.kube is None:
            self.kube = KubeSession(self.inventory, self.base_dir).client()
        return self.kube

    def _cordon(self, step: Step) -> None:
        drain(self._kube(), step.target, self.drain_wait, self.say)

    def _delete_node(self, step: Step) -> None:
        status, _ = self._kube().request(
            "DELETE", f"/api/v1/nodes/{urllib.parse.quote(step.target)}"
        )
        if status >= 400 and status != 404:
            raise LabctlError(f"deleting Node {step.target}: HTTP {status}")

    # etcd -----------------------------------------------------------------------
    def _etcd_remove(self, step: Step) -> None:
        from labctl.etcd.cluster import EtcdSession
        from labctl.etcd.work import _once_settled  # the layer's wait for a settled cluster

        with EtcdSession(self.inventory, self.base_dir) as session:
            client = session.client()
            _once_settled(
                lambda: client.remove_member(int(step.target, 16)),
                f"removing {step.server}",
                self.inventory.cluster.etcd.health_timeout,
            )
        self._forget_member(step.server)

    def _forget_member(self, name: str) -> None:
        path = self.state_dir / RECORD_NAME
        if not path.exists():
            return
        from labctl.files import write_atomic

        data = json.loads(path.read_text())
        for key in ("leaving", "joined"):
            data.get(key, {}).pop(name, None)
        write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())

    # Ceph -----------------------------------------------------------------------
    def _ceph(self, *args: str) -> Any:
        from labctl.ceph.cluster import CephSession

        with CephSession(self.inventory, self.base_dir) as session:
            return session.cli.json(*args)

    def _osd_out(self, step: Step) -> None:
        self._ceph("osd", "out", *step.target.split())

    def _osd_wait(self, step: Step) -> None:
        ids = step.target.split()
        end = time.monotonic() + SAFE_WAIT
        while True:
            try:
                self._ceph("osd", "safe-to-destroy", *ids)
                return
            except LabctlError as exc:
                why = str(exc)
            if time.monotonic() > end:
                raise DriverTimeout(f"after {SAFE_WAIT:g} s, osd {' '.join(ids)} are still not "
                                    f"safe to destroy: {why}")  # fmt: skip
            self.say(f"  {step.server}: waiting for Ceph to move data off osd {' '.join(ids)}")
            time.sleep(5.0)

    def _osd_purge(self, step: Step) -> None:
        ssh = self._ssh(step.server)
        for ident in step.target.split():
            ssh.run(("systemctl", "stop", f"ceph-osd-{ident}.service"), check=False, timeout=60)
            # Ceph purges only an OSD its map says is down; stopped, it stays down.
            self._ceph("osd", "down", ident)
            self._ceph("osd", "purge", ident, "--yes-i-really-mean-it")

    def _mon_remove(self, step: Step) -> None:
        unit = f"ceph-mon-{step.target}.service"
        self._ssh(step.server).run(("systemctl", "stop", unit), check=False, timeout=60)
        self._ceph("mon", "remove", step.target)

    # BGP ------------------------------------------------------------------------
    def _bgp_remove(self, step: Step) -> None:
        switch, address = step.target.split()
        sw = next(s for s in self.inventory.switches if s.name == switch)
        self._ssh(switch).run(
            ("vtysh", "-c", "configure terminal", "-c", f"router bgp {sw.asn}",
             "-c", f"no neighbor {address}"),
            timeout=30,
        )  # fmt: skip
        # The switch's file still has the neighbour: the next calico run restarts FRR.
        Journal(self.state_dir).forget(switch)

    # The node -------------------------------------------------------------------
    def _ssh(self, name: str) -> Any:
        from labctl.targets import InventoryConnector

        if self._connector is None:
            self._connector = InventoryConnector(self.inventory, self.base_dir)
        return self._connector.ssh(name)

    def close(self) -> None:
        if self._connector is not None:
            self._connector.close()
            self._connector = None

    def _wipe(self, step: Step) -> None:
        server = self.inventory.server(step.server)
        run = ceph_render.runtime(self.inventory) if self.inventory.cluster.ceph else ""
        units = [etcd_render.UNIT_NAME, kube_kubelet.UNIT_NAME]
        units += [kube_host.unit_name(c) for c in KUBE_COMPONENTS]
        devices = []
        if self.inventory.cluster.ceph is not None and run:
            units += [f"ceph-{d}-{server.name}.service" for d in ("mon", "mgr", "mds")]
            for osd in ceph_render.osds(self.inventory):
                if osd.server == server.name:
                    units.append(osd.unit_name)
                    devices.append(osd.device)
        argv = ("sh", "-c", RESET, "labctl-reset", etcd_render.data_dir(self.inventory),
                *units, "--", *NODE_DIRS, "--zap", *devices)  # fmt: skip
        self._ssh(step.server).run(argv, timeout=300, label="reset-node.sh")
        Journal(self.state_dir).forget(step.server)
        self._forget_member(step.server)

    def _power_off(self, step: Step) -> None:
        from labctl.power.controller import PowerSession
        from labctl.power.requests import PowerVerb

        server = self.inventory.server(step.server)

        async def off() -> list[Any]:
            async with PowerSession(self.inventory, self.base_dir, servers=[server]) as power:
                power.check_secrets([server])
                return await power.request([server], PowerVerb.OFF, force=self.whole_lab)

        for result in asyncio.run(off()):
            if not result.ok:
                raise LabctlError(f"powering {step.server} off: {result.error}")
