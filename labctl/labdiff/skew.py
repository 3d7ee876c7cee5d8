"""The version-skew rules: which version changes the inventory asks for may start at all.

A day-two change of ``cluster.kubernetes.version``, ``cluster.etcd.version`` or
``cluster.ceph.version`` is only safe within each project's own upgrade rules, and
a run that breaks one stops halfway with a cluster its own daemons refuse. So the
rules are checked before anything starts (``labctl plan`` shows them, ``labctl
bootstrap`` refuses with exit 2 and changes nothing). Pure: the versions the
inventory names and the versions that run come in, problems (each a sentence
naming the field and both versions) come out. The rules, from each project's docs:

* Kubernetes (its version-skew policy): no minor skipped (1.34 -> 1.36 refused: the
  API server goes one minor at a time), no major change, no downgrade; a kubelet is
  never newer than the API server (the newest one: an upgrade interrupted between two
  control-plane nodes resumes), nor more than three minors older than the new one.
* etcd (its upgrade guides): one minor at a time (3.4 -> 3.6 refused), no downgrade.
* Ceph: across at most two major releases at once (pacific -> reef ok, octopus ->
  reef refused; cephadm's own check, ceph/ceph#39069), no downgrade.

A running version that could not be read (no lab yet, a daemon that does not
answer) is simply absent: nothing is refused on what is not known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Ceph's major releases by name, for sentences (``ceph versions`` says both).
CEPH_RELEASES = {
    14: "nautilus",
    15: "octopus",
    16: "pacific",
    17: "quincy",
    18: "reef",
    19: "squid",
    20: "tentacle",
}

KUBERNETES_FIELD = "cluster.kubernetes.version"
ETCD_FIELD = "cluster.etcd.version"
CEPH_FIELD = "cluster.ceph.version"

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """``1.36.3``, ``v1.36.3``, ``v1.36.3+k3s1``, ``3.5.0-rc.1``; None if no version."""
        found = _VERSION.match(text.strip())
        if found is None:
            return None
        major, minor, patch = found.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_line(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Running:
    """What runs, by component, as read from the lab (a name absent: not read).

    ``api_servers`` and ``kubelets``: Kubernetes API servers (by who answered) and
    each Node's kubelet; ``etcd``: each member's server version; ``ceph``: each
    daemon kind (mon, mgr, osd, mds) with the versions its daemons report."""

    api_servers: Mapping[str, str] = field(default_factory=dict)
    kubelets: Mapping[str, str] = field(default_factory=dict)
    etcd: Mapping[str, str] = field(default_factory=dict)
    ceph: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    etcd_leader: str = ""  # the member that leads (an etcd upgrade takes it last)


@dataclass(frozen=True)
class Wanted:
    """The versions the inventory names (None: that component is not in the inventory)."""

    kubernetes: str | None = None
    etcd: str | None = None
    ceph: str | None = None


@dataclass(frozen=True)
class SkewProblem:
    """One rule a version change breaks: the inventory's field, both versions, why."""

    field: str
    wanted: str
    running: str
    rule: str  # a short stable id: minor-skip, downgrade, major-change, kubelet-newer, ...
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "wanted": self.wanted,
            "running": self.running,
            "rule": self.rule,
            "message": self.message,
        }


def _parsed(found: Mapping[str, str]) -> dict[str, Version]:
    out = {}
    for who, text in found.items():
        version = Version.parse(text)
        if version is not None:
            out[who] = version
    return out


def _who(found: Mapping[str, Version], version: Version) -> str:
    return ", ".join(sorted(who for who, v in found.items() if v == version))


def _ceph_name(version: Version) -> str:
    name = CEPH_RELEASES.get(version.major)
    return f"{version} ({name})" if name else str(version)


def kubernetes_problems(wanted: str, running: Running) -> list[SkewProblem]:
    """Kubernetes' skew rules for moving every API server and kubelet to ``wanted``."""
    want = Version.parse(wanted)
    apis, kubelets = _parsed(running.api_servers), _parsed(running.kubelets)
    if want is None or not (apis or kubelets):
        return []
    problems: list[SkewProblem] = []

    def problem(rule: str, have: Version, message: str) -> None:
        problems.append(
            SkewProblem(
                KUBERNETES_FIELD, str(want), str(have), rule, f"{KUBERNETES_FIELD}: {message}"
            )
        )

    newest = max([*apis.values(), *kubelets.values()])
    if want < newest:
        everyone = {f"the API server ({k})": v for k, v in apis.items()}
        everyone.update({f"the kubelet on {k}": v for k, v in kubelets.items()})
        problem(
            "downgrade",
            newest,
            f"{want} is older than {newest}, which {_who(everyone, newest)} runs; "
            "labctl does not downgrade Kubernetes (restore a snapshot of an older lab instead)",
        )
    if apis:
        oldest_api, newest_api = min(apis.values()), max(apis.values())
        if want.major != oldest_api.major:
            problem(
                "major-change",
                oldest_api,
                f"{want} is another major version than the API server's {oldest_api}; "
                "Kubernetes upgrades one minor at a time",
            )
        elif want.minor > oldest_api.minor + 1:
            step = f"{oldest_api.major}.{oldest_api.minor + 1}"
            problem(
                "minor-skip",
                oldest_api,
                f"{want} skips a minor version: the API server ({_who(apis, oldest_api)}) runs "
                f"{oldest_api}, and Kubernetes upgrades one minor at a time; "
                f"set {step}.x first, bootstrap, then {want.minor_line}",
            )
        for node, kubelet in sorted(kubelets.items()):
            if (kubelet.major, kubelet.minor) > (newest_api.major, newest_api.minor):
                problem(
                    "kubelet-newer",
                    kubelet,
                    f"the kubelet on {node} runs {kubelet}, a newer minor than the API "
                    f"server's {newest_api} ({_who(apis, newest_api)}); a kubelet must never "
                    "be newer than the API server",
                )
    for node, kubelet in sorted(kubelets.items()):
        if want.major == kubelet.major and want.minor > kubelet.minor + 3:
            problem(
                "kubelet-too-old",
                kubelet,
                f"the kubelet on {node} runs {kubelet}, more than three minor versions "
                f"older than {want}; upgrade it in steps first",
            )
    return problems


def etcd_problems(wanted: str, running: Running) -> list[SkewProblem]:
    """etcd's rules for moving every member to ``wanted``: one minor at a time, no downgrade."""
    want = Version.parse(wanted)
    members = _parsed(running.etcd)
    if want is None or not members:
        return []
    oldest, newest = min(members.values()), max(members.values())
    out = []
    if want < newest:
        out.append(
            SkewProblem(
                ETCD_FIELD,
                str(want),
                str(newest),
                "downgrade",
                f"{ETCD_FIELD}: {want} is older than {newest}, which {_who(members, newest)} "
                "runs; labctl does not downgrade etcd (restore a snapshot instead)",
            )
        )
    if want.major != oldest.major:
        out.append(
            SkewProblem(
                ETCD_FIELD,
                str(want),
                str(oldest),
                "major-change",
                f"{ETCD_FIELD}: {want} is another major version than {oldest}, which "
                f"{_who(members, oldest)} runs",
            )
        )
    elif want.minor > oldest.minor + 1:
        out.append(
            SkewProblem(
                ETCD_FIELD,
                str(want),
                str(oldest),
                "minor-skip",
                f"{ETCD_FIELD}: {want} skips a minor version: {_who(members, oldest)} runs "
                f"{oldest}, and etcd upgrades one minor at a time; set "
                f"{oldest.major}.{oldest.minor + 1}.x first, bootstrap, then {want.minor_line}",
            )
        )
    return out


def ceph_problems(wanted: str, running: Running) -> list[SkewProblem]:
    """Ceph's rules for moving every daemon to ``wanted``: at most two major releases
    at once, no downgrade."""
    want = Version.parse(wanted)
    daemons = {
        f"{kind} ({text})": version
        for kind, texts in running.ceph.items()
        for text in texts
        if (version := Version.parse(text)) is not None
    }
    if want is None or not daemons:
        return []
    kinds: dict[Version, set[str]] = {}
    for kind, texts in running.ceph.items():
        for text in texts:
            version = Version.parse(text)
            if version is not None:
                kinds.setdefault(version, set()).add(kind)
    oldest, newest = min(daemons.values()), max(daemons.values())
    out = []
    if want < newest:
        out.append(
            SkewProblem(
                CEPH_FIELD,
                str(want),
                str(newest),
                "downgrade",
                f"{CEPH_FIELD}: {_ceph_name(want)} is older than {_ceph_name(newest)}, which "
                f"the {', '.join(sorted(kinds[newest]))} daemons run; Ceph cannot be downgraded",
            )
        )
    if want.major > oldest.major + 2:
        out.append(
            SkewProblem(
                CEPH_FIELD,
                str(want),
                str(oldest),
                "release-skip",
                f"{CEPH_FIELD}: {_ceph_name(want)} is {want.major - oldest.major} major releases "
                f"after {_ceph_name(oldest)}, which the {', '.join(sorted(kinds[oldest]))} "
                "daemons run; Ceph upgrades across at most two major releases at once",
            )
        )
    return out


def problems(wanted: Wanted, running: Running) -> list[SkewProblem]:
    """Every skew rule the change from ``running`` to ``wanted`` breaks, in the order
    the layers run (etcd, kubernetes, ceph)."""
    found: list[SkewProblem] = []
    if wanted.etcd:
        found += etcd_problems(wanted.etcd, running)
    if wanted.kubernetes:
        found += kubernetes_problems(wanted.kubernetes, running)
    if wanted.ceph:
        found += ceph_problems(wanted.ceph, running)
    return found
