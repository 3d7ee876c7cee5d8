"""A reset's steps done, one at a time (``--all``: each server's beside the others'),
through the lab's own clients.

``day2/retire.py`` decided the steps and their guards; here each is carried out
with the client labctl already has for that component: the Kubernetes API
(the drain of ``kubernetes/drain.py``, Node deletion), etcd's
(member removal), Ceph's CLI on a monitor's node (out, safe-to-destroy, purge,
monitor removal), SSH to FRR switches (the neighbour), SSH to the node (the wipe,
``data/scripts/reset-node.sh``) and the BMC (power off). Every wait is bounded
and says what it waits for. The first step that fails stops the reset with its
sentence; running the reset again plans from what then runs, so it resumes.

After the wipe (or the fence of a server that does not answer) the journal forgets
the node (and a switch whose neighbour was removed), and the etcd membership record
forgets the member, so the next bootstrap builds them again rather than trusting
what was done before. A whole-lab reset also forgets the etcd cluster's token with
its first wipe (``etcd/token.py``): the cluster the next bootstrap forms gets a new
one, and so new cluster and member ids. The wipe
keeps the server's OS, and says so in the state (``os/survey.py``'s
``reset_record``): the next bootstrap's os layer waits for it to boot once the power
layer turned it on, rather than taking it for a new machine to install.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.data import shell
from labctl.day2.retire import Step
from labctl.engine.journal import Journal
from labctl.errors import DriverTimeout, LabctlError
from labctl.etcd import token as etcd_token
from labctl.etcd.membership import RECORD_NAME
from labctl.files import write_atomic
from labctl.inventory.model import Inventory
from labctl.kubernetes.drain import drain
from labctl.os import survey
from labctl.render import ceph as ceph_render
from labctl.render import etcd as etcd_render
from labctl.render.kubernetes import host as kube_host
from labctl.render.kubernetes import kubelet as kube_kubelet
from labctl.render.monitoring import units as monitoring
from labctl.render.monitoring.paths import NODE_TEXTFILES

RESET = shell.body("reset-node")
KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
# Directories labctl fills on a node (certificates, configuration, components' state),
# then files it writes into folders it does not own.
NODE_DIRS = (
    "/etc/ssl/etcd",
    "/etc/etcd",
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    "/etc/ceph",
    "/var/lib/ceph",
    # calico-node's state on the host (its pod's hostPaths): node name, MTU, BIRD's
    # socket, the CNI plugin's log.
    "/var/lib/calico",
    "/var/run/calico",
    "/var/log/calico",
    # The monitoring programs' data.
    monitoring.PROMETHEUS_DATA,
    monitoring.ALERTMANAGER_DATA,
    monitoring.IPMI_HOME,
    # Files, not folders: node-exporter's folder may hold an operator's own textfiles,
    # /etc/cni/net.d other CNI configurations, /etc/prometheus an operator's own.
    *NODE_TEXTFILES,
    "/etc/cni/net.d/10-calico.conflist",  # calico-node's install-cni writes both
    "/etc/cni/net.d/calico-kubeconfig",
    monitoring.PROMETHEUS_YML,
    monitoring.ALERTMANAGER_YML,
    monitoring.SNMP_YML,
    monitoring.IPMI_YML,
    monitoring.RULES_YML,
    monitoring.BIRD_TMPFILES,
)
DRAIN_WAIT = 120.0  # seconds for a node's pods to be evicted and gone
SAFE_WAIT = 600.0  # seconds for Ceph to call a host's OSDs safe to destroy
SAY_EVERY = 5.0  # seconds between two "waiting for Ceph" lines of one wait
MON_GONE_WAIT = 60.0  # seconds for a stopped monitor to be gone from its node, the quorum, the map


@dataclass
class Reset:
    """The lab a reset acts on, and where it reports progress."""

    inventory: Inventory
    base_dir: Path
    state_dir: Path
    whole_lab: bool = False
    say: Callable[[str], None] = lambda line: None
    drain_wait: float = DRAIN_WAIT
    mon_gone_wait: float = MON_GONE_WAIT
    mon_poll: float = 1.0  # seconds between two looks at the monitor or the monmap
    # Seconds between two `ceph osd safe-to-destroy`: Ceph answers as soon as the data
    # has moved (a few seconds on a small lab), and each look is one command. At 5 s
    # the wait overshot by 2.5 s on average (the second lab's reset, issue 28).
    osd_poll: float = 1.0
    kube: Any = None  # the API's client (a KubeClient): made from the PKI store when None
    # Where the lab runs (the CLI passes the chosen platform): the units and files of
    # its own stand-ins go with the wipe too. None: a real lab's, which has none.
    platform: Any = None
    _connector: Any = None
    # A whole-lab reset wipes its servers at once (cli/reset_cmd.py): the state files
    # they share (the journal, the etcd membership record, the token) and the one SSH
    # connector are changed by one at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

        data = json.loads(path.read_text())
        for key in ("leaving", "joined"):
            data.get(key, {}).pop(name, None)
        write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())

    # Ceph -----------------------------------------------------------------------
    def _ceph(self, *args: str) -> str:
        """A ``ceph`` command that changes the cluster: it answers with a sentence (or by
        its exit code alone), never JSON, so it is not asked for JSON (found on the
        second lab: ``ceph osd out 2 -f json`` prints ``marked out osd.2.``)."""
        from labctl.ceph.cluster import CephSession

        with CephSession(self.inventory, self.base_dir) as session:
            return session.cli.command(*args)

    def _osd_out(self, step: Step) -> None:
        self._ceph("osd", "out", *step.target.split())

    def _osd_wait(self, step: Step) -> None:
        ids = step.target.split()
        end = time.monotonic() + SAFE_WAIT
        said = -SAY_EVERY
        while True:
            try:
                self._ceph("osd", "safe-to-destroy", *ids)
                return
            except LabctlError as exc:
                why = str(exc)
            if time.monotonic() > end:
                raise DriverTimeout(f"after {SAFE_WAIT:g} s, osd {' '.join(ids)} are still not "
                                    f"safe to destroy: {why}")  # fmt: skip
            if time.monotonic() - said >= SAY_EVERY:  # said as often as before, not per look
                said = time.monotonic()
                self.say(f"  {step.server}: waiting for Ceph to move data off osd {' '.join(ids)}")
            time.sleep(self.osd_poll)

    def _osd_purge(self, step: Step) -> None:
        for ident in step.target.split():
            self._stop_unit(step.server, f"ceph-osd-{ident}.service")
            # Ceph purges only an OSD its map says is down; stopped, it stays down.
            self._ceph("osd", "down", ident)
            self._ceph("osd", "purge", ident, "--yes-i-really-mean-it")
        # Its host's CRUSH bucket, empty now, goes too (`ceph osd tree` no longer lists
        # the server; Ceph refuses to remove a bucket that still holds an OSD). A
        # bootstrap that makes the OSDs again makes the bucket again (crush_location).
        self._ceph("osd", "crush", "rm", step.server)

    def _stop_unit(self, server: str, unit: str) -> None:
        """Stop a daemon on its node; a node that does not answer runs none of them."""
        try:
            self._ssh(server).run(("systemctl", "stop", unit), check=False, timeout=60)
        except LabctlError as exc:
            self.say(f"  {server}: {unit} not stopped, the node does not answer ({exc})")

    def _mon_remove(self, step: Step) -> None:
        """The monitor stopped, and known gone, before the monmap drops it; then checked out.

        A monitor still running when ``mon remove`` takes it out of the map asks to join
        again (MMonJoin: its own ceph.conf names it), and is back in the map and the
        quorum at once; the step would report done with the monitor still there. So
        its daemon must be gone first (its container, or its process on the host
        runtime), and out of the quorum (a removal sent before the others noticed was
        lost on the second lab), and the monmap is read after the removal.
        """
        self._stop_unit(step.server, f"ceph-mon-{step.target}.service")
        self._wait_mon_gone(step.server, step.target)
        self._wait_out_of_quorum(step.target)
        self._remove_from_monmap(step.target)

    def _mon_running(self, server: str, mon: str) -> bool | None:
        """Whether ``mon``'s daemon still runs on its node; None: the node does not answer."""
        node = self.inventory.server(server)
        if ceph_render.runtime(self.inventory) == "host":
            argv: tuple[str, ...] = ("pgrep", "-x", "ceph-mon")
        else:
            engine = ceph_render.container_engine(node)
            argv = (engine, "inspect", "--format", "{{.State.Running}}", f"ceph-mon-{mon}")
        try:
            done = self._ssh(server).run(argv, check=False, timeout=30)
        except LabctlError:
            return None
        if ceph_render.runtime(self.inventory) == "host":
            return bool(done.ok)
        # No such container (exit 1): gone; ``--rm`` removes it once it has stopped.
        return bool(done.ok) and done.text().strip() == "true"

    def _wait_mon_gone(self, server: str, mon: str) -> None:
        end = time.monotonic() + self.mon_gone_wait
        stopped_directly = False
        while True:
            running = self._mon_running(server, mon)
            if running is None:
                self.say(f"  {server}: not asked whether mon.{mon} still runs: no answer")
                return
            if not running:
                return
            if not stopped_directly and ceph_render.runtime(self.inventory) != "host":
                # The unit's manager did not stop it (it no longer tracked the daemon):
                # the container is stopped by name, as the unit's ExecStop= does.
                engine = ceph_render.container_engine(self.inventory.server(server))
                self.say(f"  {server}: mon.{mon}'s container outlived its unit's stop; "
                         "stopping the container")  # fmt: skip
                self._ssh(server).run((engine, "stop", f"ceph-mon-{mon}"), check=False,
                                      timeout=60)  # fmt: skip
                stopped_directly = True
                continue
            if time.monotonic() > end:
                raise DriverTimeout(
                    f"mon.{mon} still runs on {server} {self.mon_gone_wait:g} s after it was "
                    "stopped; it is not removed from the monmap while it runs (it would "
                    "join again)"
                )
            time.sleep(self.mon_poll)

    def _monmap(self) -> tuple[list[str], list[str]]:
        """(monitors in the monmap, monitors in quorum), as the monitors answer."""
        from labctl.ceph.cluster import CephSession

        with CephSession(self.inventory, self.base_dir) as session:
            return session.quorum()

    def _wait_out_of_quorum(self, mon: str) -> None:
        """Until the other monitors have noticed ``mon`` gone and formed a quorum
        without it. Found on the second lab: `ceph mon remove` sent while a monitor
        stopped a second before was still counted in the quorum exited 0, and the
        monmap stayed at its epoch with the monitor in it (the change was lost in the
        election that followed)."""
        end = time.monotonic() + self.mon_gone_wait
        while mon in (quorum := self._monmap()[1]):
            if time.monotonic() > end:
                raise DriverTimeout(
                    f"mon.{mon} is stopped but still in the quorum ({', '.join(quorum)}) "
                    f"{self.mon_gone_wait:g} s later; it is not removed from the monmap "
                    "until the other monitors form a quorum without it"
                )
            time.sleep(self.mon_poll)

    def _remove_from_monmap(self, mon: str) -> None:
        """``ceph mon remove``, then the monmap read until it no longer lists ``mon``;
        the removal is sent again (Ceph answers 0 for a monitor already removed) while
        it does, up to the bound."""
        end = time.monotonic() + self.mon_gone_wait
        while True:
            self._ceph("mon", "remove", mon)
            listed, quorum = self._monmap()
            if mon not in listed and mon not in quorum:
                return
            if time.monotonic() > end:
                raise LabctlError(
                    f"mon.{mon} is still in the monmap {self.mon_gone_wait:g} s after "
                    f"`ceph mon remove {mon}` (monmap: {', '.join(listed)}; quorum: "
                    f"{', '.join(quorum)})"
                )
            self.say(f"  mon.{mon} still in the monmap after its removal; removing it again")
            time.sleep(self.mon_poll)

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

        with self._lock:
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
        stand_in_units, stand_in_paths = (
            self.platform.node_leftovers() if self.platform else ((), ())
        )
        units = [etcd_render.UNIT_NAME, kube_kubelet.UNIT_NAME]
        units += [kube_host.unit_name(c) for c in KUBE_COMPONENTS]
        units += [*monitoring.PROGRAMS, *stand_in_units]  # every node's and a server's
        devices = []
        if self.inventory.cluster.ceph is not None and run:
            units += [f"ceph-{d}-{server.name}.service" for d in ("mon", "mgr", "mds")]
            for osd in ceph_render.osds(self.inventory):
                if osd.server == server.name:
                    units.append(osd.unit_name)
                    devices.append(osd.device)
        argv = ("sh", "-c", RESET, "labctl-reset", etcd_render.data_dir(self.inventory),
                *units, "--", *NODE_DIRS, *stand_in_paths, "--zap", *devices)  # fmt: skip
        if self.whole_lab:  # the members' data goes: the next formation is a new cluster
            with self._lock:
                etcd_token.forget(self.state_dir)
        self._ssh(step.server).run(argv, timeout=300, label="reset-node.sh")
        # Its OS stays: the next bootstrap's os survey waits for it to boot, not installs it.
        with self._lock:
            write_atomic(survey.reset_record(self.state_dir, step.server), b'{"os": "kept"}\n')
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

    def _fence(self, step: Step) -> None:
        """A server that does not answer SSH: off through its BMC, or its BMC dark too.
        What was done on it is forgotten, as after a wipe: whatever comes back under its
        name (the machine repaired, or another one in its place) is built again, not
        trusted to hold what the journal remembers (a replacement got its files back,
        but not the commands run after them: calico-node's confd never started)."""
        try:
            self._power_off(step)
        except LabctlError as exc:
            self.say(
                f"  {step.server}: its BMC does not power it off either ({exc}); taken as dark"
            )
        with self._lock:
            Journal(self.state_dir).forget(step.server)
