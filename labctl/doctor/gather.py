"""`labctl doctor`'s gathering: every device and service asked at once, each within a bound.

A doctor run is worth something only if it ends, and ends soon, when part of the
lab is dead: so every ask (one BMC cipher suite, one PDU, one node's SSH, one
service's status) runs in a thread of its own and is waited for at most the run's
bound; one that has not answered by then is recorded as silent and left behind
(daemon threads: a hung socket never holds the process). The answers are plain
data (``labctl/doctor/checks.py``'s), judged there by pure functions.

Nothing is re-implemented: BMCs through the IPMI and Redfish drivers, PDUs through
the PDU driver, nodes through the SSH driver, etcd/Kubernetes/Ceph/BGP through the
sessions their own status commands use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.doctor.checks import (
    Answers,
    BmcAnswer,
    CertAnswer,
    DiskAnswer,
    DnsAnswer,
    NodeAnswer,
    PduAnswer,
    ServiceAnswer,
)
from labctl.errors import AuthenticationError, HostKeyError, LabctlError, SecretError
from labctl.inventory.model import Inventory, Server

if TYPE_CHECKING:
    from labctl.engine.layer import Platform

# Suites doctor asks every IPMI BMC about besides its own list: the two labctl
# prefers (HMAC-SHA256/AES and HMAC-SHA1/AES), so "refuses 17, takes 3" is said.
PROBED_SUITES = (17, 3)
_NO_INTEGRITY = frozenset({0, 1, 15})


class Silent(Exception):
    """An ask that did not answer within the run's bound."""


def ask_all(jobs: dict[str, Callable[[], Any]], bound: float) -> dict[str, Any]:
    """Run every job in its own daemon thread; key -> its result, its exception, or Silent.

    The whole call takes at most ``bound`` seconds (plus a thread start each).
    """
    done: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run(key: str, job: Callable[[], Any]) -> None:
        try:
            done.put((key, job()))
        except BaseException as exc:  # every failure is an answer here
            done.put((key, exc))

    for key, job in jobs.items():
        threading.Thread(target=run, args=(key, job), daemon=True, name=f"doctor {key}").start()
    results: dict[str, Any] = {}
    end = time.monotonic() + bound
    while len(results) < len(jobs):
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            key, value = done.get(timeout=left)
        except queue.Empty:
            break
        results[key] = value
    for key in jobs:
        results.setdefault(key, Silent(f"no answer within {bound:g} s"))
    return results


def _why(value: Any) -> str | None:
    return str(value) if isinstance(value, BaseException) else None


# -- BMCs ---------------------------------------------------------------------------


def _suites(server: Server) -> tuple[int, ...]:
    bmc = server.bmc
    extra = [s for s in PROBED_SUITES if s not in bmc.cipher_suites]
    suites = [*bmc.cipher_suites, *extra]
    return tuple(s for s in suites if bmc.allow_insecure or s not in _NO_INTEGRITY)


def _ipmi_probe(server: Server, base_dir: Path, suite: int, timeout: float) -> Callable[[], Any]:
    def probe() -> str:
        from labctl.drivers.ipmi import BmcEndpoint, IpmiClient
        from labctl.power.channels import bmc_endpoint

        endpoint = bmc_endpoint(server, base_dir, timeout)
        assert isinstance(endpoint, BmcEndpoint)
        one = dataclasses.replace(endpoint, cipher_suites=(suite,), retries=0)
        with IpmiClient(one) as client:
            return client.power_state().value

    return probe


def _redfish_probe(server: Server, base_dir: Path, timeout: float) -> Callable[[], Any]:
    def probe() -> str:
        from labctl.drivers.redfish import RedfishClient, RedfishEndpoint
        from labctl.power.channels import bmc_endpoint

        endpoint = bmc_endpoint(server, base_dir, timeout)
        assert isinstance(endpoint, RedfishEndpoint)
        client = RedfishClient(endpoint)
        try:
            ident = client.identity()
        finally:
            client.close()
        return " ".join(x for x in (ident.manufacturer, ident.model, ident.serial) if x)

    return probe


def _redfish_root(server: Server, timeout: float) -> Callable[[], Any]:
    """Whether a Redfish service answers on the BMC's address (its service root, which
    asks no credentials: only whether the BMC speaks Redfish, for one bmc.type ipmi)."""

    def probe() -> bool:
        from labctl.drivers.bmc_probe import redfish_service_root

        return redfish_service_root(server.bmc.address, 443, timeout)

    return probe


def _ipmi_ping(server: Server, timeout: float) -> Callable[[], Any]:
    """Whether an IPMI service answers an RMCP presence ping on the BMC's address (for
    a bmc.type redfish that does not answer Redfish)."""

    def probe() -> bool:
        from labctl.drivers.bmc_probe import rmcp_ping

        return rmcp_ping(server.bmc.address, 623, timeout)

    return probe


def bmc_jobs(inventory: Inventory, base_dir: Path, timeout: float) -> dict[str, Callable[[], Any]]:
    jobs: dict[str, Callable[[], Any]] = {}
    for s in inventory.servers:
        if s.bmc.redfish:
            jobs[f"bmc:{s.name}:redfish"] = _redfish_probe(s, base_dir, timeout)
            jobs[f"bmc:{s.name}:other"] = _ipmi_ping(s, timeout)
        else:
            for suite in _suites(s):
                jobs[f"bmc:{s.name}:{suite}"] = _ipmi_probe(s, base_dir, suite, timeout)
            jobs[f"bmc:{s.name}:other"] = _redfish_root(s, timeout)
    return jobs


def bmc_answers(inventory: Inventory, results: dict[str, Any]) -> tuple[BmcAnswer, ...]:
    """Each BMC's answer from its probes' results (pure)."""
    from labctl.errors import InsecureProtocolError

    answers = []
    for s in inventory.servers:
        other = results.get(f"bmc:{s.name}:other")
        if s.bmc.redfish:
            got = results.get(f"bmc:{s.name}:redfish")
            if not isinstance(got, BaseException):
                answers.append(BmcAnswer(s.name, "redfish", "redfish", identity=str(got)))
                continue
            if isinstance(got, SecretError):
                answers.append(BmcAnswer(s.name, "redfish", None, error=str(got), unasked=True))
                continue
            speaks = "ipmi" if other is True else None
            answers.append(BmcAnswer(s.name, "redfish", speaks, error=str(got)))
            continue
        suites: dict[int, str | None] = {}
        silent: list[str] = []
        probes = [results.get(f"bmc:{s.name}:{suite}") for suite in _suites(s)]
        unasked = next((p for p in probes if isinstance(p, SecretError)), None)
        if unasked is not None:
            answers.append(BmcAnswer(s.name, "ipmi", None, error=str(unasked), unasked=True))
            continue
        for suite in _suites(s):
            got = results.get(f"bmc:{s.name}:{suite}")
            if not isinstance(got, BaseException):
                suites[suite] = None
            elif isinstance(got, InsecureProtocolError | AuthenticationError):
                suites[suite] = _refusal(got)  # the BMC answered: it refused this suite
            else:
                silent.append(str(got))
        if suites:
            answers.append(BmcAnswer(s.name, "ipmi", "ipmi", suites=suites))
        else:
            speaks = "redfish" if other is True else None
            answers.append(BmcAnswer(s.name, "ipmi", speaks, error=silent[0] if silent else "?"))
    return tuple(answers)


def _refusal(exc: BaseException) -> str:
    text = str(exc)
    if "accepted none of cipher suites" in text:
        return "refused by the BMC"
    return text.split(": ", 1)[-1]


# -- PDUs ---------------------------------------------------------------------------


def pdu_jobs(inventory: Inventory, base_dir: Path, timeout: float) -> dict[str, Callable[[], Any]]:
    jobs: dict[str, Callable[[], Any]] = {}
    for pdu in inventory.pdus:

        def probe(name: str = pdu.name) -> str:
            from labctl.drivers.pdu import PduClient
            from labctl.power.channels import pdu_endpoints

            endpoint = dataclasses.replace(
                pdu_endpoints(inventory, base_dir, timeout)[name], retries=0
            )

            async def ask() -> str:
                async with PduClient(endpoint) as client:
                    return (await client.outlet_state(1)).value

            return asyncio.run(ask())

        jobs[f"pdu:{pdu.name}"] = probe
    return jobs


def pdu_answers(inventory: Inventory, results: dict[str, Any]) -> tuple[PduAnswer, ...]:
    answers = []
    for pdu in inventory.pdus:
        got = results.get(f"pdu:{pdu.name}")
        refused, unasked = isinstance(got, AuthenticationError), isinstance(got, SecretError)
        answers.append(PduAnswer(pdu.name, _why(got), refused=refused, unasked=unasked))
    return tuple(answers)


# -- nodes over SSH -------------------------------------------------------------------


def data_paths(inventory: Inventory, server: Server) -> tuple[str, ...]:
    """The file systems a node's services write to: its root, /var/lib, etcd's data."""
    paths = ["/", "/var/lib"]
    etcd = inventory.cluster.etcd
    if "etcd" in server.roles and etcd is not None:
        paths.append(etcd.data_dir)
    return tuple(dict.fromkeys(paths))


def parse_df(paths: Sequence[str], text: str) -> tuple[DiskAnswer, ...]:
    """``df -Pk PATH...``'s lines, one per path that exists, in the order asked (pure)."""
    rows = [line.split() for line in text.splitlines()[1:] if line.strip()]
    found = []
    for path, row in zip(paths, rows, strict=False):
        if len(row) < 6 or not (row[1].isdigit() and row[3].isdigit()):
            continue
        found.append(DiskAnswer(path, " ".join(row[5:]), int(row[1]), int(row[3])))
    return tuple(found)


def node_jobs(inventory: Inventory, base_dir: Path, timeout: float) -> dict[str, Callable[[], Any]]:
    jobs: dict[str, Callable[[], Any]] = {}
    for server in inventory.servers:

        def probe(s: Server = server) -> NodeAnswer:
            from labctl.drivers.ssh import SshSession
            from labctl.targets import ssh_target

            target = dataclasses.replace(
                ssh_target(inventory, base_dir, s.name),
                connect_timeout=timeout,
                command_timeout=timeout,
            )
            with SshSession(target) as ssh:
                before = time.time()
                said = ssh.run(["date", "+%s.%N"]).text().strip()
                after = time.time()
                paths = [p for p in data_paths(inventory, s)]
                df = ssh.run(["df", "-Pk", "--", *paths], check=False)
            remote = float(said)
            return NodeAnswer(
                s.name,
                clock_offset=remote - (before + after) / 2,
                clock_uncertainty=(after - before) / 2,
                disks=parse_df(paths, df.text()),
            )

        jobs[f"node:{server.name}"] = probe
    return jobs


def node_answers(inventory: Inventory, results: dict[str, Any]) -> tuple[NodeAnswer, ...]:
    answers = []
    for server in inventory.servers:
        got = results.get(f"node:{server.name}")
        if isinstance(got, NodeAnswer):
            answers.append(got)
        else:
            refused = isinstance(got, HostKeyError)
            answers.append(NodeAnswer(server.name, str(got), host_key_refused=refused))
    return tuple(answers)


# -- certificates -----------------------------------------------------------------------


def cert_answers(inventory: Inventory, base_dir: Path) -> tuple[CertAnswer, ...]:
    """Each certificate the inventory's PKI plans, as the store holds it (read, not checked)."""
    from cryptography import x509

    from labctl.pki.lab_pki import PkiSession
    from labctl.pki.specs import plan_certificates

    session = PkiSession(inventory, base_dir)
    store = session.store
    answers = []
    for spec in plan_certificates(session.input):
        pem = store.read_cert(spec.name)
        not_after = x509.load_pem_x509_certificate(pem).not_valid_after_utc if pem else None
        answers.append(CertAnswer(spec.name, not_after))
    return tuple(answers)


def cert_window(inventory: Inventory) -> dt.timedelta:
    from labctl.pki.lab_pki import settings

    return dt.timedelta(days=settings(inventory).renew_within_days)


# -- services, as their status commands read them --------------------------------------


def layers_run(state_dir: Path) -> set[str]:
    """The layers the journal in ``state_dir`` has recorded a step of (read only)."""
    from labctl.engine.journal import journal_path, owner

    path = journal_path(state_dir)
    if not path.is_file():
        return set()
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.add(owner(str(json.loads(line)["layer"])))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _etcd(inventory: Inventory, base_dir: Path, timeout: float) -> tuple[str, ...]:
    from labctl.etcd.cluster import EtcdSession

    with EtcdSession(inventory, base_dir, timeout=timeout) as session:
        problems = [f"member {s.name}: {s.error}" for s in session.states() if s.error]
        try:
            problems += [f"alarm {a.alarm} on {a.member_id:x}" for a in session.client().alarms()]
        except LabctlError as exc:
            problems.append(f"cannot read alarms: {exc}")
    return tuple(problems)


def _kubernetes(inventory: Inventory, base_dir: Path, timeout: float) -> tuple[str, ...]:
    from labctl.kubernetes.api import KubeSession

    found = KubeSession(inventory, base_dir, timeout=timeout).status()
    api = found["api"]
    if not api["ready"]:
        return (f"API {api['url']} not ready: {api['reason']}",)
    problems = [f"Node {n} not registered" for n in found["missing_nodes"]]
    problems += [
        f"{c['component']} has no fresh lease" for c in found["components"] if not c["healthy"]
    ]
    return tuple(problems)


def _ceph(inventory: Inventory, base_dir: Path, timeout: float) -> tuple[str, ...]:
    from labctl.ceph.cluster import CephSession

    with CephSession(inventory, base_dir, timeout=timeout) as session:
        health = session.health()
    if health.status == "HEALTH_OK":
        return ()
    return (health.status, *(c.sentence() for c in health.checks))


def _bgp(inventory: Inventory, base_dir: Path, platform: Platform) -> tuple[str, ...]:
    # The fabric as the platform runs it: where calico-node runs, the blocks each node must
    # announce are the ones Calico's IPAM gave it (calico/work.py), not labctl's own.
    from labctl.calico.work import session_for

    with session_for(inventory, base_dir, platform) as session:
        return tuple(session.status().problems)


def _monitoring(inventory: Inventory, timeout: float) -> tuple[str, ...]:
    from labctl.monitoring.status import ask

    status = ask(inventory, timeout)
    problems = [
        f"target {t.job}/{t.instance} {t.health}" + (f" ({t.error})" if t.error else "")
        for t in status.not_up
    ]
    problems += [
        f"alert {a.name} firing" + (f" on {a.instance}" if a.instance else "")
        for a in status.alerts
    ]
    return tuple(problems)


# The layer whose run makes each service worth asking, and whether the inventory has it.
SERVICE_LAYERS = {
    "etcd": "etcd",
    "kubernetes": "kubernetes",
    "ceph": "ceph",
    "bgp": "calico",
    "monitoring": "monitoring",
}


def service_jobs(
    inventory: Inventory, base_dir: Path, platform: Platform, timeout: float, ran: set[str]
) -> tuple[dict[str, Callable[[], Any]], list[ServiceAnswer]]:
    """Jobs for the services whose layer ran; a not-run answer for the others."""
    asks: dict[str, Callable[[], tuple[str, ...]]] = {
        "etcd": lambda: _etcd(inventory, base_dir, timeout),
        "kubernetes": lambda: _kubernetes(inventory, base_dir, timeout),
        "ceph": lambda: _ceph(inventory, base_dir, timeout),
        "bgp": lambda: _bgp(inventory, base_dir, platform),
        "monitoring": lambda: _monitoring(inventory, timeout),
    }
    jobs: dict[str, Callable[[], Any]] = {}
    skipped = []
    for service, ask in asks.items():
        layer = SERVICE_LAYERS[service]
        if service == "ceph" and inventory.cluster.ceph is None:
            skipped.append(ServiceAnswer(service, not_run="the inventory has no cluster.ceph"))
        elif layer not in ran:
            skipped.append(
                ServiceAnswer(
                    service, not_run=f"the {layer} layer has not run on this lab (journal)"
                )
            )
        else:
            jobs[f"service:{service}"] = ask
    return jobs, skipped


def service_answers(results: dict[str, Any]) -> list[ServiceAnswer]:
    answers = []
    for key, got in results.items():
        if not key.startswith("service:"):
            continue
        service = key.split(":", 1)[1]
        if isinstance(got, BaseException):
            answers.append(ServiceAnswer(service, error=str(got)))
        else:
            answers.append(ServiceAnswer(service, problems=tuple(got)))
    return answers


# -- DNS ------------------------------------------------------------------------------------


def dns_names(inventory: Inventory) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, address the inventory gives it, resolvers of that address's network) (pure).

    The API endpoint's name and each server's ``name.lab.domain`` (its primary address).
    """
    import ipaddress

    from labctl.inventory.export import primary_address

    def resolvers(address: str) -> tuple[str, ...]:
        ip = ipaddress.ip_address(address)
        for n in inventory.networks:
            if ip in ipaddress.ip_network(n.cidr, strict=False):
                return n.dns
        return ()

    names = []
    k8s = inventory.cluster.kubernetes
    if k8s is not None:
        api = k8s.api_endpoint
        names.append((api.name, api.address, resolvers(api.address)))
    for s in inventory.servers:
        address = primary_address(s, inventory)
        if address is not None:
            names.append((f"{s.name}.{inventory.lab.domain}", address, resolvers(address)))
    return [n for n in names if n[2]]


def dns_jobs(inventory: Inventory, timeout: float) -> dict[str, Callable[[], Any]]:
    from labctl.drivers.dns import resolve_a

    jobs: dict[str, Callable[[], Any]] = {}
    for name, _address, servers in dns_names(inventory):
        jobs[f"dns:{name}"] = functools.partial(resolve_a, name, servers, timeout)
    return jobs


def dns_answers(inventory: Inventory, results: dict[str, Any]) -> tuple[DnsAnswer, ...]:
    answers = []
    for name, address, servers in dns_names(inventory):
        got = results.get(f"dns:{name}")
        if isinstance(got, BaseException):
            answers.append(DnsAnswer(name, address, resolver=", ".join(servers), error=str(got)))
        else:
            resolver, addresses = got if isinstance(got, tuple) else ("", [])
            answers.append(DnsAnswer(name, address, tuple(addresses), resolver))
    return tuple(answers)


# -- one run ---------------------------------------------------------------------------------

GROUPS = {
    "bmc": ("DOC001", "DOC002"),
    "pdu": ("DOC010",),
    "node": ("DOC020", "DOC021", "DOC022"),
    "certs": ("DOC030",),
    "service:etcd": ("DOC040",),
    "service:kubernetes": ("DOC041",),
    "service:ceph": ("DOC042",),
    "service:bgp": ("DOC043",),
    "service:monitoring": ("DOC044",),
    "dns": ("DOC050",),
}


def gather(
    inventory: Inventory,
    base_dir: Path,
    state_dir: Path,
    platform: Platform,
    *,
    timeout: float,
    bound: float,
    wanted: set[str],
) -> Answers:
    """Ask everything ``wanted`` (check ids) needs, at once, for at most ``bound`` seconds."""

    def want(group: str) -> bool:
        return any(c in wanted for c in GROUPS[group])

    jobs: dict[str, Callable[[], Any]] = {}
    not_run: dict[str, str] = {}
    if want("bmc"):
        jobs |= bmc_jobs(inventory, base_dir, timeout)
    if want("pdu"):
        jobs |= pdu_jobs(inventory, base_dir, timeout)
    if want("node"):
        jobs |= node_jobs(inventory, base_dir, timeout)
    services: list[ServiceAnswer] = []
    if any(want(f"service:{s}") for s in SERVICE_LAYERS):
        service_asks, services = service_jobs(
            inventory, base_dir, platform, timeout, layers_run(state_dir)
        )
        jobs |= {k: v for k, v in service_asks.items() if want(k)}
    if want("dns"):
        if dns_names(inventory):
            jobs |= dns_jobs(inventory, timeout)
        else:
            not_run["DOC050"] = "no network in the inventory lists a DNS resolver (networks[].dns)"
    if want("certs"):
        jobs["certs"] = lambda: cert_answers(inventory, base_dir)
    results = ask_all(jobs, bound)
    certs = results.get("certs", ())
    if isinstance(certs, BaseException):
        not_run["DOC030"] = f"the PKI store cannot be read: {certs}"
        certs = ()
    suites = {s.name: s.bmc.cipher_suites for s in inventory.servers if not s.bmc.redfish}
    return Answers(
        bmcs=bmc_answers(inventory, results) if want("bmc") else (),
        cipher_suites=suites,
        pdus=pdu_answers(inventory, results) if want("pdu") else (),
        nodes=node_answers(inventory, results) if want("node") else (),
        certs=tuple(certs),
        services=(*services, *service_answers(results)),
        dns=dns_answers(inventory, results) if want("dns") and dns_names(inventory) else (),
        not_run=not_run,
    )
