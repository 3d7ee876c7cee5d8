"""The etcd cluster: the inventory's members, reached with labctl's client cert (``EtcdSession``).

The members are the servers with the etcd role, at the client URLs the etcd
layer gave them (``render/etcd.py``); the certificate is the operator's etcd
client certificate from the PKI store. Health, verification, status and
snapshots are decided here once, for ``labctl etcd`` and for the etcd layer's
local work alike.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from labctl.drivers.etcd import EndpointStatus, EtcdClient, EtcdEndpoint, EtcdTls, Member
from labctl.errors import DriverTimeout, LabctlError
from labctl.etcd.snapshots import SnapshotEntry, SnapshotIndex, keep_out_of_git
from labctl.inventory.model import Inventory
from labctl.pki.lab_pki import PkiSession
from labctl.render import etcd as render


@dataclass(frozen=True)
class MemberState:
    """One member as seen now: its status, or why it could not be read."""

    name: str
    url: str
    status: EndpointStatus | None
    error: str | None

    def as_dict(self) -> dict[str, object]:
        s = self.status
        return {
            "name": self.name,
            "url": self.url,
            "healthy": self.error is None,
            "error": self.error,
            "leader": bool(s and s.is_leader),
            "member_id": f"{s.member_id:x}" if s else None,
            "raft_index": s.raft_index if s else None,
            "raft_term": s.raft_term if s else None,
            "db_size": s.db_size if s else None,
            "version": s.version if s else None,
        }


class EtcdSession:
    def __init__(self, inventory: Inventory, base_dir: Path, timeout: float = 5.0) -> None:
        self.inventory = inventory
        self.base_dir = base_dir
        self.timeout = timeout
        self.endpoints = [
            EtcdEndpoint(s.name, render.client_url(inventory, s)) for s in render.members(inventory)
        ]
        self._client: EtcdClient | None = None

    def tls(self) -> EtcdTls:
        """labctl's client certificate for etcd, from the PKI store (minted by the pki layer)."""
        pki = PkiSession(self.inventory, self.base_dir)
        name = f"etcd-client-{pki.settings.operator}"
        return EtcdTls(*pki.store.client_files(name, "etcd client"))

    def client(self) -> EtcdClient:
        if self._client is None:
            self._client = EtcdClient(self.endpoints, self.tls(), self.timeout)
        return self._client

    def unhealthy(self) -> dict[str, str]:
        """Members that do not answer healthy now, with why."""
        client = self.client()
        found = {}
        for endpoint in self.endpoints:
            why = client.healthy(endpoint)
            if why is not None:
                found[endpoint.name] = why
        return found

    def reachable_unhealthy(self) -> dict[str, str] | None:
        """``unhealthy()`` when a cluster answers here; None when none can be asked.

        None: labctl has no client certificate yet (no cluster was formed by it), or
        no member answers (not formed yet, or not reachable from this machine). A member
        that refuses labctl's certificate does answer: that is an ``AuthenticationError``,
        never None, so a refused certificate cannot pass for a cluster still to form.
        """
        try:
            self.tls()
        except LabctlError:
            return None
        sick = self.unhealthy()
        return sick if len(sick) < len(self.endpoints) else None

    def wait_healthy(self, deadline: float, poll: float = 1.0) -> None:
        """Until every member answers healthy; a DriverTimeout naming those that do not
        (a refused certificate at once, as the ``AuthenticationError`` it is)."""
        end = time.monotonic() + deadline
        while True:
            sick = self.unhealthy()
            if not sick:
                return
            if time.monotonic() + poll > end:
                named = "; ".join(f"{name}: {why}" for name, why in sick.items())
                raise DriverTimeout(
                    f"etcd: after {deadline:g} s, {len(sick)} of {len(self.endpoints)} "
                    f"member(s) still do not answer healthy: {named}"
                )
            time.sleep(poll)

    def states(self) -> list[MemberState]:
        client = self.client()
        states = []
        for endpoint in self.endpoints:
            try:
                states.append(
                    MemberState(endpoint.name, endpoint.url, client.status(endpoint), None)
                )
            except LabctlError as exc:
                states.append(MemberState(endpoint.name, endpoint.url, None, str(exc)))
        return states

    def members(self) -> list[Member]:
        return self.client().members()

    def verify(self) -> list[str]:
        """What is wrong with a cluster that answers: members, learners, leaders."""
        problems = []
        listed = self.members()
        names = {m.name for m in listed}
        wanted = {e.name for e in self.endpoints}
        if wanted - names:
            problems.append(f"not members of the cluster: {', '.join(sorted(wanted - names))}")
        if names - wanted:
            problems.append(
                f"members the inventory does not have: {', '.join(sorted(names - wanted))}"
            )
        learners = sorted(m.name for m in listed if m.is_learner)
        if learners:
            problems.append(f"still learners: {', '.join(learners)}")
        statuses = [s.status for s in self.states() if s.status is not None]
        leaders = {s.leader_id for s in statuses}
        if len(leaders) != 1 or 0 in leaders:
            problems.append(f"members do not agree on one leader ({len(leaders)} seen)")
        return problems

    def snapshot_dir(self) -> Path:
        directory = Path(self.inventory.cluster.etcd.snapshots.directory)
        return directory if directory.is_absolute() else self.base_dir / directory

    def snapshot(self, reason: str, out: Path | None = None) -> SnapshotEntry:
        """A consistent snapshot from the first member that answers, kept and indexed.

        ``out`` writes it there instead (not indexed, not pruned).
        """
        index = SnapshotIndex.load(self.snapshot_dir())
        now = dt.datetime.now(dt.UTC)
        path = out or index.new_path(now)
        if out is None:
            keep_out_of_git(index.directory)  # before the snapshot is written into it
        info = self.client().snapshot(path)
        entry = SnapshotEntry(
            path.name, info.size, info.sha256, info.member, reason, now.isoformat()
        )
        if out is None:
            for old in index.add(entry, self.inventory.cluster.etcd.snapshots.keep):
                old.unlink(missing_ok=True)
            index.save()
        return entry

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> EtcdSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
