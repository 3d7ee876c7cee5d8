"""The whole-lab diff ``labctl plan`` prints: the inventory against what runs, in run order.

Pure: the inventory, what was read of the running lab (``running.Observed``) and
the layers' dry runs (the engine's ``LayerOutcome``s, through ``layer_change``)
come in; one ``LabDiff`` comes out, which prints as text for people and as JSON for
programs. It says:

* which servers join (in the inventory, but neither in the journal nor seen live)
  and which leave (in the journal or seen live as a Node, an etcd member or a Ceph
  host, but no longer in the inventory);
* which components change version (etcd, Kubernetes, Ceph: wanted against each
  running daemon's own report) and which skew rules that change breaks
  (``skew.py``);
* which steps each layer would take on which node, with the action and the
  reason, layers in bootstrap order and steps in each node's order;
* what could not be asked (no lab, a daemon down, a secret not given), so a plan
  without a lab still says what it can and is plain about the rest.

The JSON shape is stable (``format``: 1) and documented in docs/commands.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.executor import Outcome
from labctl.engine.runner import LayerOutcome
from labctl.etcd import upgrade as etcd_upgrade
from labctl.inventory.model import Inventory
from labctl.kubernetes import upgrade
from labctl.labdiff.running import Observed
from labctl.labdiff.skew import (
    CEPH_FIELD,
    ETCD_FIELD,
    KUBERNETES_FIELD,
    SkewProblem,
    Version,
    Wanted,
    problems,
)

FORMAT = 1
ACTION_KINDS = ("put-file", "run", "wait-for", "check", "set-power", "set-boot-device", "local")


def wanted_versions(inventory: Inventory) -> Wanted:
    cluster = inventory.cluster
    return Wanted(
        kubernetes=cluster.kubernetes.version,
        etcd=cluster.etcd.version,
        ceph=cluster.ceph.version if cluster.ceph is not None else None,
    )


@dataclass(frozen=True)
class ServerChange:
    name: str
    change: str  # join, leave, stay
    roles: tuple[str, ...] = ()
    seen_in: tuple[str, ...] = ()  # where the running lab has it: journal, kubernetes, etcd, ceph

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name}
        if self.roles:
            found["roles"] = list(self.roles)
        if self.seen_in:
            found["seen_in"] = list(self.seen_in)
        if self.change == "leave":
            found["then"] = leave_sentence(self.name)
        return found


def leave_sentence(name: str) -> str:
    """What the operator does about a server gone from the inventory that still runs."""
    return (
        f"{name} leaves: bootstrap does not take a server out of the lab; run "
        f"`labctl reset {name}` while the inventory still names it, then delete it"
    )


@dataclass(frozen=True)
class VersionChange:
    component: str
    field: str
    wanted: str
    running: dict[str, str]  # who -> version, as each reported it
    change: str  # none, upgrade, downgrade, unknown
    # An upgrade's order: the nodes taken together, batch after batch (Kubernetes), or
    # the members one at a time, the leader last (etcd).
    order: tuple[tuple[str, ...], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "component": self.component,
            "field": self.field,
            "wanted": self.wanted,
            "running": dict(self.running),
            "change": self.change,
        }
        if self.order:
            found["order"] = [list(batch) for batch in self.order]
        return found

    def line(self) -> str:
        if not self.running:
            return f"{self.component}: {self.wanted} wanted; what runs is not known"
        seen: dict[str, list[str]] = {}
        for who, version in self.running.items():
            seen.setdefault(version, []).append(who)
        runs = "; ".join(f"{v} on {', '.join(sorted(w))}" for v, w in sorted(seen.items()))
        said = {"none": "no change", "upgrade": "upgrade", "downgrade": "DOWNGRADE"}[self.change]
        if self.order:
            by = "member by member" if self.component == "etcd" else "node by node"
            said += f", {by}: " + ", then ".join(" + ".join(b) for b in self.order)
        return f"{self.component}: {self.wanted} wanted, running {runs}: {said}"


@dataclass(frozen=True)
class StepChange:
    action: str
    what: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "what": self.what, "reason": self.reason}


@dataclass(frozen=True)
class LayerChange:
    layer: str
    status: str  # changes, nothing-to-do, planned-in-part, not-built, could-not-ask
    nodes: dict[str, list[StepChange]] = field(default_factory=dict)
    already_true: int = 0
    could_not_ask: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "layer": self.layer,
            "status": self.status,
            "already_true": self.already_true,
            "nodes": [
                {"node": node, "steps": [s.as_dict() for s in steps]}
                for node, steps in self.nodes.items()
            ],
        }
        if self.could_not_ask:
            found["could_not_ask"] = list(self.could_not_ask)
        if self.pending:
            found["pending"] = list(self.pending)
        return found


@dataclass(frozen=True)
class LabDiff:
    inventory: str
    servers: tuple[ServerChange, ...]
    versions: tuple[VersionChange, ...]
    skew: tuple[SkewProblem, ...]
    layers: tuple[LayerChange, ...]
    not_asked: tuple[str, ...]
    stand_ins: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No skew rule broken and every layer's dry run could ask what it needed."""
        return not self.skew and all(layer.status != "could-not-ask" for layer in self.layers)

    def of(self, change: str) -> list[ServerChange]:
        return [s for s in self.servers if s.change == change]

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"format": FORMAT, "ok": self.ok, "inventory": self.inventory}
        if self.stand_ins:
            found["stand_ins"] = list(self.stand_ins)
        found["servers"] = {
            "join": [s.as_dict() for s in self.of("join")],
            "leave": [s.as_dict() for s in self.of("leave")],
            "stay": [s.name for s in self.of("stay")],
        }
        found["versions"] = [v.as_dict() for v in self.versions]
        found["skew"] = [p.as_dict() for p in self.skew]
        found["layers"] = [layer.as_dict() for layer in self.layers]
        found["not_asked"] = list(self.not_asked)
        return found

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def render_text(self) -> str:
        lines = [f"plan for {self.inventory}"]
        join, leave, stay = self.of("join"), self.of("leave"), self.of("stay")
        lines.append(f"servers: {len(join)} join, {len(leave)} leave, {len(stay)} stay")
        for s in join:
            lines.append(f"  + {s.name} ({', '.join(s.roles) or 'no roles'})")
        for s in leave:
            lines.append(f"  - {s.name} (seen in {', '.join(s.seen_in)})")
            lines.append(f"    {leave_sentence(s.name)}")
        if stay:
            lines.append(f"  = {', '.join(s.name for s in stay)}")
        lines.append("versions:")
        lines += [f"  {v.line()}" for v in self.versions]
        if self.skew:
            lines.append(
                "refused by the version-skew rules (bootstrap would stop before any layer):"
            )
            lines += [f"  {p.message}" for p in self.skew]
        lines.append("in order:")
        for number, layer in enumerate(self.layers, 1):
            steps = sum(len(s) for s in layer.nodes.values())
            head = {
                "changes": f"{steps} step(s) on {len(layer.nodes)} node(s) would change",
                "nothing-to-do": "nothing to change",
                "planned-in-part": "nothing to change of what could be planned",
                "not-built": "not built in this version of labctl",
                "could-not-ask": f"{steps} step(s) would change; could not ask the rest",
            }[layer.status]
            lines.append(f"  {number}. {layer.layer}: {head}")
            for node, node_steps in layer.nodes.items():
                lines.append(f"       {node}")
                lines += [f"         - {s.what}: {s.reason}" for s in node_steps]
            lines += [f"       could not ask: {why}" for why in layer.could_not_ask]
            lines += [f"       {why}" for why in layer.pending]
        if self.not_asked:
            lines.append("not asked:")
            lines += [f"  {why}" for why in self.not_asked]
        return "\n".join(lines)


def server_changes(inventory: Inventory, observed: Observed) -> tuple[ServerChange, ...]:
    """Each inventory server as joining or staying, and each machine the running lab has
    that the inventory no longer names as leaving (inventory order, then by name)."""
    seen: dict[str, list[str]] = {}
    for host in sorted(observed.journal.hosts):
        seen.setdefault(host, []).append("journal")
    for where in ("kubernetes", "etcd", "ceph"):
        for host in sorted(observed.live.get(where, ())):
            seen.setdefault(host, []).append(where)
    names = {s.name for s in inventory.servers}
    devices = names | {s.name for s in inventory.switches} | {p.name for p in inventory.pdus}
    found = [
        ServerChange(
            s.name,
            "stay" if s.name in seen else "join",
            tuple(sorted(s.roles)),
            tuple(seen.get(s.name, ())),
        )
        for s in inventory.servers
    ]
    found += [
        ServerChange(host, "leave", seen_in=tuple(where))
        for host, where in sorted(seen.items())
        if host not in devices
    ]
    return tuple(found)


def _change(wanted: str, running: dict[str, str]) -> str:
    want = Version.parse(wanted)
    versions = [v for v in map(Version.parse, running.values()) if v is not None]
    if want is None or not versions:
        return "unknown"
    if any(v > want for v in versions):
        return "downgrade"
    if any(v < want for v in versions):
        return "upgrade"
    return "none"


def version_changes(
    wanted: Wanted, observed: Observed, inventory: Inventory | None = None
) -> tuple[VersionChange, ...]:
    """Each component's wanted version against what each of its daemons reports (with
    ``inventory``, an upgrade's order as its layer takes it: Kubernetes' nodes, etcd's
    members)."""
    run = observed.running
    found = []
    if wanted.etcd:
        running = dict(sorted(run.etcd.items()))
        change = _change(wanted.etcd, running)
        members: tuple[tuple[str, ...], ...] = ()
        if inventory is not None and change == "upgrade":
            members = tuple((n,) for n in etcd_upgrade.order(inventory, run.etcd, run.etcd_leader))
        found.append(VersionChange("etcd", ETCD_FIELD, wanted.etcd, running, change, members))
    if wanted.kubernetes:
        running = {f"api-server {k}": v.lstrip("v") for k, v in sorted(run.api_servers.items())}
        running |= {f"kubelet {k}": v.lstrip("v") for k, v in sorted(run.kubelets.items())}
        change = _change(wanted.kubernetes, running)
        order: tuple[tuple[str, ...], ...] = ()
        if inventory is not None and change == "upgrade":
            order = tuple(upgrade.batches(inventory, run.kubelets))
        found.append(
            VersionChange("kubernetes", KUBERNETES_FIELD, wanted.kubernetes, running, change, order)
        )
    if wanted.ceph:
        running = {f"ceph-{kind}": ", ".join(vs) for kind, vs in sorted(run.ceph.items())}
        flat = {f"{k}#{i}": v for k, vs in run.ceph.items() for i, v in enumerate(vs)}
        found.append(
            VersionChange("ceph", CEPH_FIELD, wanted.ceph, running, _change(wanted.ceph, flat))
        )
    return tuple(found)


def _kind(step_id: str) -> str:
    kind = step_id.split(":", 1)[0]
    return kind if kind in ACTION_KINDS else "step"


def layer_change(outcome: LayerOutcome) -> LayerChange:
    """One layer's dry run as the diff shows it: the steps that would change, by node."""
    if outcome.status == "not-built":
        return LayerChange(outcome.name, "not-built")
    nodes: dict[str, list[StepChange]] = {}
    failed: list[str] = []
    already = 0
    for report in outcome.reports:
        for r in report.results:
            if r.outcome is Outcome.WOULD_CHANGE:
                nodes.setdefault(r.target, []).append(
                    StepChange(_kind(r.step_id), r.description, r.reason or "")
                )
            elif r.outcome in (Outcome.UNCHANGED, Outcome.SKIPPED):
                already += 1
            elif r.outcome is Outcome.FAILED:
                failed.append(f"{r.target}: {r.description}: {r.error}")
    if failed:
        status = "could-not-ask"
    elif nodes:
        status = "changes"
    elif outcome.pending:
        status = "planned-in-part"  # nothing would change of what could be planned
    else:
        status = "nothing-to-do"
    return LayerChange(outcome.name, status, nodes, already, tuple(failed), tuple(outcome.pending))


def lab_diff(
    inventory: Inventory,
    inventory_name: str,
    observed: Observed,
    layers: Sequence[LayerChange],
    stand_ins: Sequence[str] = (),
) -> LabDiff:
    """The whole diff (pure); ``layers``: each layer's dry run (``layer_change``)."""
    wanted = wanted_versions(inventory)
    return LabDiff(
        inventory=inventory_name,
        servers=server_changes(inventory, observed),
        versions=version_changes(wanted, observed, inventory),
        skew=tuple(problems(wanted, observed.running)),
        layers=tuple(layers),
        not_asked=tuple(observed.not_asked),
        stand_ins=tuple(stand_ins),
    )


def located(problem: SkewProblem, text: str, file: str) -> str:
    """``problem``'s sentence led by ``file:line:col`` of its field in the inventory's
    ``text`` (of the nearest mapping that holds it when the field is left at its default)."""
    from labctl.inventory.load import LoadFailed, load_yaml

    try:
        _, source = load_yaml(text, file)
    except LoadFailed:
        return f"{file}: {problem.message}"
    at = source.value_at(tuple(problem.field.split(".")))
    where = f"{file}:{at.line}:{at.column}" if at else file
    return f"{where}: {problem.message}"
