"""The monitoring programs' systemd units and the IPMI exporter's config, from the inventory.

What the monitoring layer runs and with what command line, as data (pure): node-exporter
on every server; Prometheus, Alertmanager and the IPMI and SNMP exporters on the
monitoring servers, from units of labctl's own (``labctl-*``), so they never collide
with a package's own units. ``runtime`` (``cluster.monitoring.runtime`` as the platform
runs it) is the one difference between the two renders, as for etcd and Ceph:

* ``container`` (the default): each program is a container of the image
  ``cluster.monitoring.images`` names (upstream's, at the versions Debian 12 packages),
  under docker on Flatcar and podman on Fedora CoreOS, which ship none of these
  programs; host network, only the files it reads mounted (read-only but its data),
  ``--entrypoint`` the program's path in upstream's image. node-exporter as upstream
  documents it: host network and PID namespace, the host's root read-only at /host.
* ``host``: Debian 12's binaries at /usr/bin (``prometheus``,
  ``prometheus-node-exporter``, ``prometheus-alertmanager``, ``prometheus-ipmi-exporter``,
  ``prometheus-snmp-exporter``).

Either way no program runs as root: each has a system user of its own (``PROGRAMS``:
``labctl-prometheus`` and so on, each with a fixed uid, made on the node by the layer),
the container's ``--user`` or the unit's ``User=``. A credential a program reads is
that user's own file, 0600: the layer writes the exporters' files (device
credentials) and the receivers' secrets owned by the exporter's or Alertmanager's user,
so nothing else on the node reads them, under docker (which has no ``--secret`` outside
swarm) as under podman. The two keys of the ``prometheus`` identity are the pki
layer's, root's and 0600 like every key: Prometheus's unit copies them at each start,
as root, into a folder only Prometheus's user reads (``paths.KEYS_DIR``). The
exporters that hold device credentials listen on loopback only; Prometheus asks them
there (``paths.py``).

``ipmi_config`` is the IPMI exporter's module per BMC (user, password, LAN 2.0, the
collectors for sensors, chassis power and the SEL); like snmp.yml it takes the
password only through ``resolve``, so this module never reads a secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labctl.inventory.model import Inventory, SecretRef, Server
from labctl.pki.placement import TEXTFILE_DIR
from labctl.render.monitoring.paths import (
    BIRD_RUN_DIR,
    BIRD_SOCKET,
    KEYS_DIR,
    PLACED_ETCD_KEY,
    PLACED_KUBE_KEY,
    SERVER_PATHS,
)
from labctl.render.monitoring.prometheus import prometheus_flags
from labctl.render.monitoring.targets import (
    ALERTMANAGER_PORT,
    BIRD_EXPORTER_PORT,
    NODE_EXPORTER_PORT,
    PROMETHEUS_PORT,
)
from labctl.render.systemd import Unit, exec_command, unit_text

RUNTIMES = ("container", "host")
CONFIG_DIR = "/etc/prometheus"
PROMETHEUS_YML = f"{CONFIG_DIR}/labctl-prometheus.yml"
ALERTMANAGER_YML = f"{CONFIG_DIR}/labctl-alertmanager.yml"
SNMP_YML = f"{CONFIG_DIR}/labctl-snmp.yml"
IPMI_YML = f"{CONFIG_DIR}/labctl-ipmi.yml"
RULES_YML = SERVER_PATHS.rules
PROMETHEUS_DATA = "/var/lib/prometheus/labctl"
ALERTMANAGER_DATA = "/var/lib/prometheus/labctl-alertmanager"
# FreeIPMI's tools keep their SDR cache under $HOME: the IPMI exporter's user's own.
IPMI_HOME = "/var/lib/prometheus/labctl-ipmi-exporter"
HOST_ROOT = "/host"  # where node-exporter's container sees the host's root
BIRD_TMPFILES = "/etc/tmpfiles.d/labctl-bird-exporter.conf"
TMPFILES_BINARY = "/usr/bin/systemd-tmpfiles"

NODE_EXPORTER = "labctl-node-exporter.service"
PROMETHEUS = "labctl-prometheus.service"
ALERTMANAGER = "labctl-alertmanager.service"
SNMP_EXPORTER = "labctl-snmp-exporter.service"
IPMI_EXPORTER = "labctl-ipmi-exporter.service"
BIRD_EXPORTER = "labctl-bird-exporter.service"
# Every server's units: node-exporter, and the BGP exporter reading calico-node's BIRD.
NODE_UNITS = (NODE_EXPORTER, BIRD_EXPORTER)
# The monitoring servers' units in the order they start: exporters before Prometheus.
SERVER_UNITS = (IPMI_EXPORTER, SNMP_EXPORTER, ALERTMANAGER, PROMETHEUS)

Resolve = Callable[[SecretRef], str]


@dataclass(frozen=True)
class Program:
    """One monitoring program: its unit (and container) name, the user it runs as with
    its fixed uid (also its group's gid), Debian's binary, the path in upstream's image,
    and the ``cluster.monitoring.images`` field naming its image."""

    unit: str
    user: str
    uid: int
    host_binary: str
    image_binary: str
    image_field: str

    @property
    def container(self) -> str:
        return self.unit.removesuffix(".service")

    @property
    def owner(self) -> str:
        return f"{self.user}:{self.user}"


# The uids are the programs' ports: fixed, so a container's --user is the same number as
# the user the layer makes on the node, whose name owns the program's files.
PROGRAMS = {
    NODE_EXPORTER: Program(
        NODE_EXPORTER, "labctl-node-exporter", 9100,
        "/usr/bin/prometheus-node-exporter", "/bin/node_exporter", "node_exporter",
    ),
    PROMETHEUS: Program(
        PROMETHEUS, "labctl-prometheus", 9090, "/usr/bin/prometheus", "/bin/prometheus",
        "prometheus",
    ),
    ALERTMANAGER: Program(
        ALERTMANAGER, "labctl-alertmanager", 9093, "/usr/bin/prometheus-alertmanager",
        "/bin/alertmanager", "alertmanager",
    ),
    SNMP_EXPORTER: Program(
        SNMP_EXPORTER, "labctl-snmp-exporter", 9116, "/usr/bin/prometheus-snmp-exporter",
        "/bin/snmp_exporter", "snmp_exporter",
    ),
    IPMI_EXPORTER: Program(
        IPMI_EXPORTER, "labctl-ipmi-exporter", 9290, "/usr/bin/prometheus-ipmi-exporter",
        "/bin/ipmi_exporter", "ipmi_exporter",
    ),
    # Upstream's image (czerwonk/bird_exporter's Dockerfile) has it at /app.
    BIRD_EXPORTER: Program(
        BIRD_EXPORTER, "labctl-bird-exporter", 9324, "/usr/bin/prometheus-bird-exporter",
        "/app/bird_exporter", "bird_exporter",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class UnitFile:
    name: str
    text: str
    ready_url: str  # what answers once the program serves (asked on the node itself)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def image(inv: Inventory, program: Program) -> str:
    """The image ``program`` runs from (``cluster.monitoring.images``)."""
    return str(getattr(inv.cluster.monitoring.images, program.image_field))


def container_engine(server: Server) -> str:
    """docker on Flatcar, podman on Fedora CoreOS (what each ships), as etcd's and Ceph's."""
    return "/usr/bin/podman" if server.os.distribution == "fedora-coreos" else "/usr/bin/docker"


@dataclass(frozen=True)
class Spec:
    """How one program is started, whatever the runtime: its arguments, the files and
    folders it reads (``ro``) or writes, its environment, what its unit does first as
    root, and whether it needs the host's PID namespace and root (node-exporter)."""

    program: Program
    what: str
    args: tuple[str, ...]
    ro: tuple[str, ...] = ()
    rw: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    before: tuple[tuple[str, ...], ...] = ()
    host_view: bool = False


def _start(inv: Inventory, server: Server, spec: Spec, runtime: str) -> list[tuple[str, str]]:
    """The unit's runtime-dependent lines: the only difference between the two runtimes."""
    p = spec.program
    # "+": as root even where User= says otherwise (the keys it copies are root's).
    before = [("ExecStartPre", exec_command(list(argv), prefix="+")) for argv in spec.before]
    if runtime == "host":
        return [
            ("User", p.user),
            ("Group", p.user),
            *(("Environment", f"{k}={v}") for k, v in spec.env),
            *before,
            ("ExecStart", exec_command([p.host_binary, *spec.args])),
        ]
    engine = container_engine(server)
    run = [engine, "run", "--rm", "--name", p.container, "--network", "host"]
    run += ["--user", f"{p.uid}:{p.uid}"]
    if spec.host_view:
        run += ["--pid", "host", "--volume", f"/:{HOST_ROOT}:ro,rslave"]
    for path in spec.ro:
        run += ["--volume", f"{path}:{path}:ro"]
    for path in spec.rw:
        run += ["--volume", f"{path}:{path}"]
    for key, value in spec.env:
        run += ["--env", f"{key}={value}"]
    run += ["--entrypoint", p.image_binary, image(inv, p), *spec.args]
    return [
        *before,
        ("ExecStartPre", exec_command([engine, "rm", "-f", p.container], prefix="-")),
        ("ExecStart", exec_command(run)),
        ("ExecStop", exec_command([engine, "stop", p.container])),
    ]


def _unit(inv: Inventory, server: Server, spec: Spec, runtime: str) -> Unit:
    if runtime not in RUNTIMES:
        raise ValueError(f"monitoring runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    return {
        "Unit": [
            ("Description", f"{spec.what} (written by labctl's monitoring layer)"),
            ("Wants", "network-online.target"),
            ("After", "network-online.target"),
        ],
        "Service": [
            *_start(inv, server, spec, runtime),
            ("Restart", "always"),
            ("RestartSec", "5"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }


def _file(inv: Inventory, server: Server, spec: Spec, runtime: str, ready: str) -> UnitFile:
    return UnitFile(spec.program.unit, unit_text(_unit(inv, server, spec, runtime)), ready)


def node_exporter(inv: Inventory, server: Server, runtime: str) -> UnitFile:
    program = PROGRAMS[NODE_EXPORTER]
    listen = f"--web.listen-address=:{NODE_EXPORTER_PORT}"
    if runtime == "host":
        args: tuple[str, ...] = (listen, f"--collector.textfile.directory={TEXTFILE_DIR}")
    else:  # upstream's way: the host's root read-only at /host, its /proc and /sys there
        args = (
            f"--path.rootfs={HOST_ROOT}",
            listen,
            f"--collector.textfile.directory={HOST_ROOT}{TEXTFILE_DIR}",
        )
    spec = Spec(program, "Prometheus node exporter", args, host_view=runtime != "host")
    return _file(inv, server, spec, runtime, f"http://127.0.0.1:{NODE_EXPORTER_PORT}/metrics")


# The pki layer's files of the prometheus identity Prometheus reads (the certificates and
# CAs, bind-mounted) or copies (the keys): a change to any of them restarts it.
IDENTITY_FILES = (
    SERVER_PATHS.etcd_ca,
    SERVER_PATHS.etcd_cert,
    PLACED_ETCD_KEY,
    SERVER_PATHS.kube_ca,
    SERVER_PATHS.kube_cert,
    PLACED_KUBE_KEY,
)


def bird_access() -> list[tuple[str, ...]]:
    """systemd-tmpfiles lines (``BIRD_TMPFILES``) that let the BGP exporter's user, and
    no other, talk to BIRD: BIRD 1.6 makes its control socket root's and 0660 each time
    it starts (``cli_init_unix``), so a default ACL on its folder gives every new socket
    an entry for that uid, and the socket there now gets one too. The folder is made if
    calico-node has not made it yet (its hostPath mount finds it then)."""
    uid = PROGRAMS[BIRD_EXPORTER].uid
    # /var/run is a link to /run: tmpfiles wants the path without it.
    folder, socket = (p.removeprefix("/var") for p in (BIRD_RUN_DIR, BIRD_SOCKET))
    return [
        ("d", folder, "0755", "root", "root", "-"),
        ("a+", folder, "-", "-", "-", "-", f"default:user:{uid}:rw"),
        ("a+", socket, "-", "-", "-", "-", f"user:{uid}:rw"),
    ]


def bird_tmpfiles() -> str:
    """``BIRD_TMPFILES``'s text: ``bird_access``'s lines."""
    lines = ["# BIRD's control socket for labctl-bird-exporter (written by labctl)"]
    return "\n".join([*lines, *(" ".join(line) for line in bird_access())]) + "\n"


def bird_exporter(inv: Inventory, server: Server, runtime: str) -> UnitFile:
    """The BGP exporter (Debian's ``prometheus-bird-exporter``, upstream's
    czerwonk/bird_exporter) on ``server``: BIRD 1.x's protocol (no ``-bird.v2``) on
    calico-node's socket, IPv4 only (calico-node's BIRD 1.6 runs no bird6 here), the
    metric format ``bird_protocol_up{name,proto,state,...}``; its unit first applies
    ``BIRD_TMPFILES`` as root so its own user may connect to the socket."""
    program = PROGRAMS[BIRD_EXPORTER]
    args = (
        f"-bird.socket={BIRD_SOCKET}",
        "-bird.v2=false",
        "-bird.ipv6=false",
        "-format.new=true",
        f"-web.listen-address=:{BIRD_EXPORTER_PORT}",
    )
    spec = Spec(
        program,
        "Prometheus BIRD exporter (calico-node's BGP sessions)",
        args,
        ro=(BIRD_RUN_DIR,),
        before=((TMPFILES_BINARY, "--create", BIRD_TMPFILES),),
    )
    return _file(inv, server, spec, runtime, f"http://127.0.0.1:{BIRD_EXPORTER_PORT}/metrics")


def key_copies() -> tuple[tuple[str, ...], ...]:
    """Prometheus's unit's first steps (as root): its identity's keys copied, its user's
    own and 0400, into ``KEYS_DIR``, where prometheus.yml names them."""
    uid = str(PROGRAMS[PROMETHEUS].uid)
    owner = ("-o", uid, "-g", uid)
    return (
        ("/usr/bin/install", "-d", *owner, "-m", "0700", KEYS_DIR),
        ("/usr/bin/install", *owner, "-m", "0400", PLACED_ETCD_KEY, SERVER_PATHS.etcd_key),
        ("/usr/bin/install", *owner, "-m", "0400", PLACED_KUBE_KEY, SERVER_PATHS.kube_key),
    )


def server_units(inv: Inventory, server: Server, runtime: str) -> list[UnitFile]:
    """The monitoring servers' units, in ``SERVER_UNITS`` order."""
    ipmi = SERVER_PATHS.ipmi_exporter
    snmp = SERVER_PATHS.snmp_exporter
    paths = SERVER_PATHS
    specs = [
        (
            Spec(
                PROGRAMS[IPMI_EXPORTER],
                "Prometheus IPMI exporter (every BMC of the inventory)",
                (f"--config.file={IPMI_YML}", f"--web.listen-address={ipmi}"),
                ro=(IPMI_YML,),
                rw=(IPMI_HOME,),
                env=(("HOME", IPMI_HOME),),
            ),
            f"http://{ipmi}/metrics",
        ),
        (
            Spec(
                PROGRAMS[SNMP_EXPORTER],
                "Prometheus SNMP exporter (PDUs, switches' BGP sessions)",
                (f"--config.file={SNMP_YML}", f"--web.listen-address={snmp}"),
                ro=(SNMP_YML,),
            ),
            f"http://{snmp}/metrics",
        ),
        (
            Spec(
                PROGRAMS[ALERTMANAGER],
                "Prometheus Alertmanager",
                (
                    f"--config.file={ALERTMANAGER_YML}",
                    f"--storage.path={ALERTMANAGER_DATA}",
                    f"--web.listen-address=:{ALERTMANAGER_PORT}",
                    # One Alertmanager per server, not a gossip cluster: no cluster port.
                    "--cluster.listen-address=",
                ),
                ro=(ALERTMANAGER_YML, paths.secrets),
                rw=(ALERTMANAGER_DATA,),
            ),
            f"http://127.0.0.1:{ALERTMANAGER_PORT}/-/ready",
        ),
        (
            Spec(
                PROGRAMS[PROMETHEUS],
                "Prometheus",
                (
                    *prometheus_flags(inv, PROMETHEUS_YML),
                    f"--storage.tsdb.path={PROMETHEUS_DATA}",
                    f"--web.listen-address=:{PROMETHEUS_PORT}",
                ),
                ro=(
                    PROMETHEUS_YML,
                    RULES_YML,
                    paths.etcd_ca,
                    paths.etcd_cert,
                    paths.kube_ca,
                    paths.kube_cert,
                    KEYS_DIR,
                ),
                rw=(PROMETHEUS_DATA,),
                before=key_copies(),
            ),
            f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready",
        ),
    ]
    return [_file(inv, server, spec, runtime, ready) for spec, ready in specs]


def ipmi_config(
    inv: Inventory, resolve: Resolve, workarounds: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The IPMI exporter's modules, one per server's BMC (the module Prometheus names);
    ``workarounds`` are FreeIPMI's flags the platform says its BMCs need."""
    modules: dict[str, Any] = {}
    for server in inv.servers:
        bmc = server.bmc
        module: dict[str, Any] = {
            "user": bmc.username,
            "pass": resolve(bmc.password),
            "driver": "LAN_2_0",
            "privilege": "admin",
            "timeout": 10000,
            "collectors": ["bmc", "ipmi", "chassis", "sel"],
        }
        if workarounds:
            module["workaround_flags"] = list(workarounds)
        modules[server.name] = module
    return {"modules": modules}
