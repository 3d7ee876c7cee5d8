"""`labctl doctor`'s checks: what each asks, and its verdict on the answers gathered.

Every check has a stable id (DOC001...), a one-line summary and a fix, like the
inventory's LAB checks, so CI and people read one set of findings. The verdicts
here are pure: they take what the gathering (``labctl/doctor/gather.py``) brought
back from the devices, plus the bounds, and return findings; no device is asked
here, so each verdict is unit-tested without a lab. A check that could not be
asked (a layer that never ran, no resolver configured) says why it did not run
instead of passing silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Check:
    id: str
    summary: str
    fix: str


REGISTRY: dict[str, Check] = {
    c.id: c
    for c in (
        Check(
            "DOC001",
            "Every BMC answers in the protocol its bmc.type names.",
            "Check the BMC's power, its management link and bmc.address/port; a BMC that "
            "answers in the other protocol wants bmc.type changed (ipmi/ilo or redfish).",
        ),
        Check(
            "DOC002",
            "Every BMC accepts the IPMI cipher suites the inventory lists, in order.",
            "Enable the suite on the BMC (its IPMI settings), or list the suites it takes "
            "in bmc.cipher_suites.",
        ),
        Check(
            "DOC010",
            "Every PDU answers with the SNMP security the inventory configures.",
            "Check the PDU's SNMP user, keys and protocols against pdus[].snmp and the "
            "secrets they name; a silent PDU wants its power and management link checked.",
        ),
        Check(
            "DOC020",
            "SSH reaches every server, with the host key in the known_hosts file.",
            "Start the node or its sshd; a changed host key is accepted by replacing its "
            "line in lab.ssh.known_hosts once you know why it changed.",
        ),
        Check(
            "DOC021",
            "Every node's clock is within the bound of the operator's.",
            "Set the node's time (chrony/timesyncd against lab.time_servers); certificates "
            "and etcd leases go wrong with skewed clocks.",
        ),
        Check(
            "DOC022",
            "Every node's data paths have free space above the bound.",
            "Free space on the file system named (old images, logs, etcd defragment).",
        ),
        Check(
            "DOC030",
            "No certificate in the PKI store expires within the window.",
            "labctl pki mint re-mints what expires (then bootstrap --only pki to push it).",
        ),
        Check(
            "DOC040",
            "etcd: every member healthy and no alarm, as `labctl etcd status` reads it.",
            "labctl etcd status names the member; start it or see docs/etcd.md.",
        ),
        Check(
            "DOC041",
            "Kubernetes: API ready, control plane and Nodes healthy, as `labctl kubernetes "
            "status` reads it.",
            "labctl kubernetes status names what is unwell; see docs/kubernetes.md.",
        ),
        Check(
            "DOC042",
            "Ceph: HEALTH_OK, as `labctl ceph status` reads it.",
            "labctl ceph status lists each health check not OK; see docs/ceph.md.",
        ),
        Check(
            "DOC043",
            "BGP: every session Established and every pod block learned, as `labctl bgp "
            "status` reads it.",
            "labctl bgp status names the session; check both ends' daemons and passwords.",
        ),
        Check(
            "DOC044",
            "Monitoring: every target the inventory implies up and no alert firing, as "
            "`labctl monitoring status` reads it.",
            "labctl monitoring status names the target or alert; see docs/monitoring.md's runbook.",
        ),
        Check(
            "DOC050",
            "The inventory's DNS names resolve to their addresses on the configured resolvers.",
            "Fix the record on the DNS server (or the address in the inventory).",
        ),
    )
}
BMC_ANSWERS, BMC_SUITES, PDU_ANSWERS = "DOC001", "DOC002", "DOC010"
SSH_REACHES, CLOCK, DISK, CERTS = "DOC020", "DOC021", "DOC022", "DOC030"
ETCD, KUBERNETES, CEPH, BGP, DNS = "DOC040", "DOC041", "DOC042", "DOC043", "DOC050"
MONITORING = "DOC044"


@dataclass(frozen=True)
class Finding:
    """A check's verdict on one device or service that is not fit."""

    check_id: str
    severity: Severity
    subject: str  # the server, PDU, certificate or service named
    sentence: str

    @property
    def fix(self) -> str:
        return REGISTRY[self.check_id].fix

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check_id,
            "severity": str(self.severity),
            "subject": self.subject,
            "message": self.sentence,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Bounds:
    clock_seconds: float = 1.0  # largest skew between a node's clock and the operator's
    min_free_percent: float = 10.0  # least free space on a data path's file system
    cert_window: dt.timedelta = dt.timedelta(days=30)


# -- answers: what the gathering brought back ---------------------------------


@dataclass(frozen=True)
class BmcAnswer:
    """One BMC: the protocol asked first (bmc.type's) and how it went.

    ``suites`` maps each IPMI cipher suite tried to None (accepted) or why not;
    ``speaks`` is the protocol that answered (``ipmi``, ``redfish``) or None.
    """

    server: str
    configured: str  # "ipmi" or "redfish"
    speaks: str | None
    error: str | None = None  # why the configured protocol did not answer
    suites: dict[int, str | None] = field(default_factory=dict)
    identity: str | None = None  # what Redfish says the system is
    unasked: bool = False  # not asked at all: its password's secret did not resolve


@dataclass(frozen=True)
class PduAnswer:
    pdu: str
    error: str | None = None
    refused: bool = False  # the agent answered and refused the credentials
    unasked: bool = False  # not asked at all: a secret of its SNMP security did not resolve


@dataclass(frozen=True)
class DiskAnswer:
    path: str
    mount: str
    size_kib: int
    free_kib: int


@dataclass(frozen=True)
class NodeAnswer:
    """One node over SSH: the login, then its clock and its data paths' file systems."""

    node: str
    error: str | None = None
    host_key_refused: bool = False
    # The node's clock minus the operator's, and how much of that the round trip may hide.
    clock_offset: float | None = None
    clock_uncertainty: float = 0.0
    disks: tuple[DiskAnswer, ...] = ()


@dataclass(frozen=True)
class CertAnswer:
    name: str
    not_after: dt.datetime | None  # None: not minted yet


@dataclass(frozen=True)
class ServiceAnswer:
    """A service as its status command reads it: ``problems`` empty when healthy.

    ``not_run`` says why it was not asked (the layer never ran on this lab);
    ``error`` that asking failed as a whole.
    """

    service: str
    problems: tuple[str, ...] = ()
    error: str | None = None
    not_run: str | None = None


@dataclass(frozen=True)
class DnsAnswer:
    name: str
    want: str
    got: tuple[str, ...] = ()
    resolver: str = ""
    error: str | None = None


# -- verdicts -------------------------------------------------------------------


def bmc_findings(answers: Sequence[BmcAnswer], wanted: dict[str, tuple[int, ...]]) -> list[Finding]:
    """DOC001 and DOC002; ``wanted`` is each IPMI BMC's bmc.cipher_suites, in order."""
    found = []
    for a in answers:
        if a.speaks is None:
            what = "cannot be asked" if a.unasked else "does not answer"
            found.append(
                Finding(
                    BMC_ANSWERS, Severity.ERROR, a.server, f"{a.server}'s BMC {what}: {a.error}"
                )
            )
            continue
        if a.speaks != a.configured:
            found.append(
                Finding(
                    BMC_ANSWERS,
                    Severity.ERROR,
                    a.server,
                    f"{a.server}'s BMC speaks {_protocol(a.speaks)}, not the "
                    f"{_protocol(a.configured)} its bmc.type says ({a.error})",
                )
            )
            continue
        if a.configured != "ipmi" or not a.suites:
            continue
        order = wanted.get(a.server, tuple(a.suites))
        accepted = [s for s in order if a.suites.get(s, "") is None]
        refused = [s for s in order if a.suites.get(s) is not None]
        if not refused:
            continue
        reasons = "; ".join(f"suite {s}: {a.suites[s]}" for s in refused)
        if accepted:
            taken = ", ".join(map(str, accepted))
            found.append(
                Finding(
                    BMC_SUITES,
                    Severity.WARNING,
                    a.server,
                    f"{a.server}'s BMC refuses cipher suite(s) "
                    f"{', '.join(map(str, refused))} but takes {taken} ({reasons})",
                )
            )
        else:
            found.append(
                Finding(
                    BMC_SUITES,
                    Severity.ERROR,
                    a.server,
                    f"{a.server}'s BMC accepts none of cipher suites "
                    f"{', '.join(map(str, order))} ({reasons})",
                )
            )
    return found


def _protocol(name: str) -> str:
    return {"ipmi": "IPMI 2.0", "redfish": "Redfish"}.get(name, name)


def pdu_findings(answers: Sequence[PduAnswer]) -> list[Finding]:
    """DOC010: a silent PDU, or one that refuses the configured SNMP security."""
    found = []
    for a in answers:
        if a.error is None:
            continue
        if a.unasked:
            what = "cannot be asked"
        elif a.refused:
            what = "refuses the configured SNMP security"
        else:
            what = "does not answer over SNMP"
        found.append(Finding(PDU_ANSWERS, Severity.ERROR, a.pdu, f"{a.pdu} {what}: {a.error}"))
    return found


def node_findings(answers: Sequence[NodeAnswer], bounds: Bounds) -> list[Finding]:
    """DOC020 (SSH and its host key), DOC021 (clock) and DOC022 (disk space)."""
    found = []
    for a in answers:
        if a.error is not None:
            what = "refuses the host key it offers" if a.host_key_refused else "is not reached"
            found.append(
                Finding(
                    SSH_REACHES,
                    Severity.ERROR,
                    a.node,
                    f"{a.node} {what} over SSH: {a.error}",
                )
            )
            continue
        if a.clock_offset is not None:
            skew = abs(a.clock_offset) - a.clock_uncertainty
            if skew > bounds.clock_seconds:
                way = "ahead of" if a.clock_offset > 0 else "behind"
                found.append(
                    Finding(
                        CLOCK,
                        Severity.ERROR,
                        a.node,
                        f"{a.node}'s clock is {abs(a.clock_offset):.1f} s {way} the operator's "
                        f"(bound {bounds.clock_seconds:g} s)",
                    )
                )
        for d in a.disks:
            if d.size_kib <= 0:
                continue
            free = 100.0 * d.free_kib / d.size_kib
            if free < bounds.min_free_percent:
                found.append(
                    Finding(
                        DISK,
                        Severity.ERROR,
                        a.node,
                        f"{a.node}: {d.path} has {free:.1f} % free ({_gib(d.free_kib)} of "
                        f"{_gib(d.size_kib)} on {d.mount}; bound {bounds.min_free_percent:g} %)",
                    )
                )
    return found


def _gib(kib: int) -> str:
    return f"{kib / 1024 / 1024:.1f} GiB"


def cert_findings(answers: Sequence[CertAnswer], now: dt.datetime, bounds: Bounds) -> list[Finding]:
    """DOC030: expired certificates (errors) and those expiring within the window (warnings).

    A certificate not minted yet is no finding: before a bootstrap there are none.
    """
    found = []
    for a in answers:
        if a.not_after is None:
            continue
        left = a.not_after - now
        if left <= dt.timedelta(0):
            found.append(
                Finding(
                    CERTS,
                    Severity.ERROR,
                    a.name,
                    f"certificate {a.name} expired on {a.not_after:%Y-%m-%d %H:%M} UTC",
                )
            )
        elif left < bounds.cert_window:
            found.append(
                Finding(
                    CERTS,
                    Severity.WARNING,
                    a.name,
                    f"certificate {a.name} expires on {a.not_after:%Y-%m-%d} UTC, in "
                    f"{left.days} day(s) (window {bounds.cert_window.days} days)",
                )
            )
    return found


SERVICE_CHECKS = {
    "etcd": ETCD,
    "kubernetes": KUBERNETES,
    "ceph": CEPH,
    "bgp": BGP,
    "monitoring": MONITORING,
}


def service_findings(answers: Sequence[ServiceAnswer]) -> list[Finding]:
    """DOC040-DOC044: each problem the service's status names, or why it could not be read."""
    found = []
    for a in answers:
        check = SERVICE_CHECKS[a.service]
        if a.not_run is not None:
            continue
        if a.error is not None:
            found.append(
                Finding(check, Severity.ERROR, a.service, f"{a.service} cannot be read: {a.error}")
            )
        found += [
            Finding(check, Severity.ERROR, a.service, f"{a.service}: {p}") for p in a.problems
        ]
    return found


def dns_findings(answers: Sequence[DnsAnswer]) -> list[Finding]:
    """DOC050: a name that does not resolve, or resolves elsewhere than the inventory says."""
    found = []
    for a in answers:
        if a.error is not None:
            sentence = f"{a.name} does not resolve on {a.resolver}: {a.error}"
        elif a.want not in a.got:
            sentence = (
                f"{a.name} resolves to {', '.join(a.got) or 'nothing'} on {a.resolver}, "
                f"not {a.want} as the inventory says"
            )
        else:
            continue
        found.append(Finding(DNS, Severity.ERROR, a.name, sentence))
    return found


@dataclass(frozen=True)
class Answers:
    """Everything one doctor run gathered; ``not_run`` says why a check was not asked."""

    bmcs: tuple[BmcAnswer, ...] = ()
    cipher_suites: dict[str, tuple[int, ...]] = field(default_factory=dict)
    pdus: tuple[PduAnswer, ...] = ()
    nodes: tuple[NodeAnswer, ...] = ()
    certs: tuple[CertAnswer, ...] = ()
    services: tuple[ServiceAnswer, ...] = ()
    dns: tuple[DnsAnswer, ...] = ()
    not_run: dict[str, str] = field(default_factory=dict)


def verdicts(answers: Answers, now: dt.datetime, bounds: Bounds) -> list[Finding]:
    """Every finding of every check, in check id order."""
    found = [
        *bmc_findings(answers.bmcs, answers.cipher_suites),
        *pdu_findings(answers.pdus),
        *node_findings(answers.nodes, bounds),
        *cert_findings(answers.certs, now, bounds),
        *service_findings(answers.services),
        *dns_findings(answers.dns),
    ]
    return sorted(found, key=lambda f: f.check_id)


def not_run(answers: Answers) -> dict[str, str]:
    """Check id -> why it was not run: the gathering's reasons and each service not asked."""
    reasons = dict(answers.not_run)
    for a in answers.services:
        if a.not_run is not None:
            reasons[SERVICE_CHECKS[a.service]] = a.not_run
    return reasons
