"""A Ceph cluster's files, from the inventory: ceph.conf, keyrings, units and node scripts.

Pure: the inventory (and, for keyrings, the minted keys) in, text out.
Monitors and managers run on the ``ceph-mon`` servers, one MDS on each
``ceph-mds`` server, one OSD per disk of role ``osd`` on the ``ceph-osd``
servers. OSD ids and uuids are fixed by the inventory (ids in inventory
order, a uuid derived from the fsid, server and device), so a plan names
every OSD's unit before the cluster exists and a re-run finds the same OSDs.

``runtime`` is the one difference between a real lab and the simulated one:
``container`` runs every daemon and tool from the Ceph image (Flatcar and
Fedora CoreOS ship no Ceph), ``host`` runs the node's own ``/usr/bin/ceph-*``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from labctl.data import shell
from labctl.errors import RenderError
from labctl.inventory.model import Ceph, Inventory, Server
from labctl.render.quoting import absolute_path
from labctl.render.systemd import Unit, exec_command, unit_text

RUNTIMES = ("container", "host")
IMAGE = "quay.io/ceph/ceph"
CONF_PATH = "/etc/ceph/ceph.conf"
ADMIN_KEYRING = "/etc/ceph/ceph.client.admin.keyring"
MON_KEYRING = "/var/lib/ceph/labctl/mon-bootstrap.keyring"  # every key the mons start with
BOOTSTRAP_OSD_KEYRING = "/var/lib/ceph/bootstrap-osd/ceph.keyring"
RUN_DIR = "/var/lib/ceph/run"  # survives reboots; /run/ceph is made by packaging we lack
MON_PORTS = (3300, 6789)

# Capabilities of each kind of entity, as Ceph's own deployment tools give them.
CAPS: dict[str, tuple[tuple[str, str], ...]] = {
    "mon": (("mon", "allow *"),),
    "client.admin": (
        ("mds", "allow *"),
        ("mgr", "allow *"),
        ("mon", "allow *"),
        ("osd", "allow *"),
    ),
    "client.bootstrap-osd": (("mon", "allow profile bootstrap-osd"),),
    "mgr": (("mds", "allow *"), ("mon", "allow profile mgr"), ("osd", "allow *")),
    "mds": (
        ("mds", "allow *"),
        ("mgr", "allow profile mds"),
        ("mon", "allow profile mds"),
        ("osd", "allow *"),
    ),
    "osd": (("mgr", "allow profile osd"), ("mon", "allow profile osd"), ("osd", "allow *")),
}


@dataclass(frozen=True)
class Osd:
    id: int
    server: str
    device: str
    uuid: str
    wipe: bool
    wwn: str | None = None  # the node must agree the device is this disk before a write
    serial: str | None = None

    @property
    def identity(self) -> str:
        """`` (wwn 0x…, serial …)`` as the inventory gives it, or nothing."""
        said = [f"{k} {v}" for k, v in (("wwn", self.wwn), ("serial", self.serial)) if v]
        return f" ({', '.join(said)})" if said else ""

    @property
    def unit_name(self) -> str:
        return f"ceph-osd-{self.id}.service"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/ceph/osd/ceph-{self.id}"


def settings(inventory: Inventory) -> Ceph:
    ceph = inventory.cluster.ceph
    if ceph is None:
        raise ValueError("the inventory has no cluster.ceph")
    return ceph


def runtime(inventory: Inventory) -> str:
    return settings(inventory).runtime


def mons(inventory: Inventory) -> list[Server]:
    return inventory.with_role("ceph-mon")


def managers(inventory: Inventory) -> list[Server]:
    """The first ``cluster.ceph.managers`` monitor servers (2 unless the inventory says)."""
    return mons(inventory)[: settings(inventory).managers or 2]


def mds_servers(inventory: Inventory) -> list[Server]:
    return inventory.with_role("ceph-mds")


def ceph_servers(inventory: Inventory) -> list[Server]:
    """Every server that runs a Ceph daemon, in inventory order."""
    roles = {"ceph-mon", "ceph-osd", "ceph-mds"}
    return [s for s in inventory.servers if s.roles & roles]


def osds(inventory: Inventory) -> list[Osd]:
    fsid = uuid.UUID(settings(inventory).fsid)
    found: list[Osd] = []
    for server in inventory.with_role("ceph-osd"):
        for disk in server.disks:
            if disk.role == "osd":
                # Handed to ceph-bluestore-tool and ceph-osd: never an option, one path.
                absolute_path(f"{server.name}: OSD device", disk.device)
                osd_uuid = str(uuid.uuid5(fsid, f"{server.name}:{disk.device}"))
                found.append(
                    Osd(len(found), server.name, disk.device, osd_uuid, disk.wipe,
                        disk.wwn, disk.serial)
                )  # fmt: skip
    return found


def address(inventory: Inventory, server: Server, network: str) -> str:
    found = server.addresses(network)
    if not found:  # LAB080 refuses such an inventory; this says why if one slips by
        raise ValueError(f"{server.name} has no address on the network {network}")
    return found[0].address


def mon_addrs(inventory: Inventory, server: Server) -> str:
    ip = address(inventory, server, settings(inventory).public_network)
    return f"[v2:{ip}:{MON_PORTS[0]},v1:{ip}:{MON_PORTS[1]}]"


def cidr(inventory: Inventory, network: str) -> str:
    return next(n.cidr for n in inventory.networks if n.name == network)


def _value(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def conf(inventory: Inventory) -> dict[str, list[tuple[str, str]]]:
    """ceph.conf as sections of (option, value), the same on every Ceph node."""
    ceph = settings(inventory)
    names = [conf_name("monitor", s.name) for s in mons(inventory)]
    glob = [
        ("fsid", ceph.fsid),
        ("mon_initial_members", ", ".join(names)),
        ("mon_host", ",".join(mon_addrs(inventory, s) for s in mons(inventory))),
        ("public_network", cidr(inventory, ceph.public_network)),
    ]
    if ceph.cluster_network:
        glob.append(("cluster_network", cidr(inventory, ceph.cluster_network)))
    glob += [
        ("auth_cluster_required", "cephx"),
        ("auth_service_required", "cephx"),
        ("auth_client_required", "cephx"),
        ("auth_allow_insecure_global_id_reclaim", "false"),
        ("mon_max_pg_per_osd", str(ceph.max_pg_per_osd)),
        ("run_dir", RUN_DIR),
        *((key, _value(value)) for key, value in ceph.config),
    ]
    sections = {
        "global": glob,
        # Each daemon's own key where its data is: without it cephx is off for mons.
        "mon": [("keyring", "/var/lib/ceph/mon/$cluster-$id/keyring")],
        "mgr": [("keyring", "/var/lib/ceph/mgr/$cluster-$id/keyring")],
        "osd": [("keyring", "/var/lib/ceph/osd/$cluster-$id/keyring")],
        "mds": [("keyring", "/var/lib/ceph/mds/$cluster-$id/keyring")],
        "client.bootstrap-osd": [("keyring", BOOTSTRAP_OSD_KEYRING)],
    }
    # The failure domain is the server, named here: nodes' host names may not be theirs.
    for osd in osds(inventory):
        host = conf_name("OSD server", osd.server)
        sections[f"osd.{osd.id}"] = [("crush_location", f"root=default host={host}")]
    return sections


_CONF_KEY = re.compile(r"[A-Za-z0-9_.-]+(?: [A-Za-z0-9_.-]+)*")
_CONF_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def conf_key(key: str) -> str:
    """An option name as ceph.conf holds it: letters, digits, ``_ . -``, single spaces."""
    if not _CONF_KEY.fullmatch(key):
        raise RenderError(f"ceph.conf: {key!r} cannot be written as an option name")
    return key


def conf_value(key: str, value: str) -> str:
    """``value`` as Ceph's config parser reads it back unchanged.

    Ceph ends a value at ``#`` or ``;`` even inside quotes, strips blanks around
    it, and its parser aborts on anything but ASCII: such values are refused.
    A backslash or a quote (Ceph also reads single-quoted values) is written in double
    quotes, escaped as Ceph unescapes it.
    """
    if not value or value != value.strip(" \t"):
        raise RenderError(f"ceph.conf: {key}: {value!r} is empty or has blanks around it")
    if not value.isascii() or not value.isprintable():
        raise RenderError(f"ceph.conf: {key}: {value!r} holds a line break, control or non-ASCII")
    if "#" in value or ";" in value:
        raise RenderError(f"ceph.conf: {key}: {value!r} holds # or ;, which start a comment")
    if any(c in value for c in "\"'\\"):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def conf_name(what: str, name: str) -> str:
    """A server name inside a Ceph value (a list of members, a CRUSH location)."""
    if not _CONF_NAME.fullmatch(name):
        raise RenderError(f"ceph.conf: {what} {name!r} cannot be written in a Ceph value")
    return name


def conf_text(inventory: Inventory) -> str:
    blocks = []
    for section, entries in conf(inventory).items():
        lines = [f"[{conf_key(section)}]"]
        lines += [f"{conf_key(key)} = {conf_value(key, value)}" for key, value in entries]
        blocks.append("\n".join(lines))
    return (
        "# Written by labctl from the inventory; edits are overwritten.\n"
        + "\n\n".join(blocks)
        + "\n"
    )


# -- keys --------------------------------------------------------------------------


def entities(inventory: Inventory) -> list[str]:
    """Every entity labctl mints a key for, in a stable order."""
    names = ["mon.", "client.admin", "client.bootstrap-osd"]
    names += [f"mgr.{conf_name('manager', s.name)}" for s in managers(inventory)]
    names += [f"mds.{conf_name('metadata server', s.name)}" for s in mds_servers(inventory)]
    names += [f"osd.{o.id}" for o in osds(inventory)]
    return names


def caps(entity: str) -> tuple[tuple[str, str], ...]:
    kind = entity.split(".")[0]
    return CAPS.get(entity, CAPS.get(kind, ()))


def keyring(keys: dict[str, str], names: list[str], with_caps: bool = True) -> str:
    """A keyring as ceph-authtool writes it (tab-indented, caps quoted)."""
    blocks = []
    for name in names:
        lines = [f"[{name}]", f"\tkey = {keys[name]}"]
        if with_caps:
            lines += [f'\tcaps {service} = "{cap}"' for service, cap in caps(name)]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


def mon_keyring(inventory: Inventory, keys: dict[str, str]) -> str:
    """What the monitors start with: every key but the OSDs' (``osd new`` adds those)."""
    return keyring(keys, [e for e in entities(inventory) if not e.startswith("osd.")])


# -- how daemons and tools run -------------------------------------------------------


def image(inventory: Inventory) -> str:
    ceph = settings(inventory)
    return ceph.image or f"{IMAGE}:v{ceph.version}"


def container_engine(server: Server) -> str:
    """docker on Flatcar, podman on Fedora CoreOS (what each ships)."""
    return "/usr/bin/podman" if server.os.distribution == "fedora-coreos" else "/usr/bin/docker"


def _container(inventory: Inventory, server: Server, name: str | None, program: str) -> list[str]:
    engine = container_engine(server)
    argv = [engine, "run", "--rm"]
    if name:
        argv += ["--name", name]
    return [
        *argv, "--network", "host", "--pid", "host", "--privileged",
        "--volume", "/etc/ceph:/etc/ceph", "--volume", "/var/lib/ceph:/var/lib/ceph",
        "--volume", "/var/log/ceph:/var/log/ceph", "--volume", "/dev:/dev",
        "--entrypoint", f"/usr/bin/{program}", image(inventory),
    ]  # fmt: skip


def tool(inventory: Inventory, server: Server, program: str, run: str) -> list[str]:
    """The argv that starts a Ceph program (ceph, monmaptool...) on ``server``."""
    if run == "host":
        return [f"/usr/bin/{program}"]
    # --interactive: some tools read a secret on stdin (``osd new -i -``).
    return [
        *_container(inventory, server, None, program)[:3],
        "--interactive",
        *_container(inventory, server, None, program)[3:],
    ]


def reader_words(inventory: Inventory, server: Server, program: str, run: str) -> list[str]:
    """A call of ``ceph_reader`` (``data/scripts/ceph-reader.sh``, a shell function) that
    runs ``program`` on ``server``: into the node's running monitor container, else
    ``tool``'s ``run --rm``. The host runtime has no container: ``tool``'s argv.

    The node scripts that ask the cluster many times (the pools plan's, ``osd new``)
    carry the function and call these words as their ``$ceph``.
    """
    argv = tool(inventory, server, program, run)
    if run == "host":
        return argv
    container = daemon_name("mon", server.name)  # the monitor's container on this node
    return ["ceph_reader", container_engine(server), container, program, str(len(argv)), *argv]


READER = shell.body("ceph-reader")


def reader(inventory: Inventory, server: Server, program: str, run: str) -> list[str]:
    """The argv that runs a Ceph CLI (``ceph``) on ``server`` to ask the cluster something.

    Under a container runtime it is ``data/scripts/ceph-reader.sh``: an ``exec`` into the
    node's running monitor container (same ``/etc/ceph``, same CLI, a few tens of ms)
    when there is one, else ``tool``'s ``run --rm`` of the image (0.6-0.9 s before the
    CLI starts). The pools plan's steps and ``osd new`` ask through it too
    (``reader_words``): the monitor's container is the image's own container, with the
    same mounts. Steps that make a daemon's files (``mon mkfs``, ``ceph-osd --mkfs``,
    ``ceph-bluestore-tool``) keep ``tool``'s container of their own.
    """
    words = reader_words(inventory, server, program, run)
    if run == "host":
        return words
    return ["sh", "-c", READER + 'ceph_reader "$@"\n', "ceph-reader", *words[1:]]


def daemon_name(daemon: str, ident: str) -> str:
    """A Ceph daemon's name on its node: its unit's stem and, in a container runtime,
    its container's name (a monitor's ident is its server's name)."""
    return f"ceph-{daemon}-{ident}"


def daemon_unit(
    inventory: Inventory, server: Server, daemon: str, ident: str, description: str, run: str
) -> Unit:
    if run not in RUNTIMES:
        raise ValueError(f"ceph runtime {run!r} is not one of {', '.join(RUNTIMES)}")
    args = ["-f", "--cluster", "ceph", "--id", ident]
    name = daemon_name(daemon, ident)
    if run == "host":
        start = [("ExecStart", exec_command([f"/usr/bin/ceph-{daemon}", *args]))]
    else:
        engine = container_engine(server)
        container = _container(inventory, server, name, f"ceph-{daemon}")
        start = [
            ("ExecStartPre", exec_command([engine, "rm", "-f", name], prefix="-")),
            ("ExecStart", exec_command([*container, *args])),
            ("ExecStop", exec_command([engine, "stop", name])),
        ]
    return {
        "Unit": [
            ("Description", f"{description} (written by labctl)"),
            ("Wants", "network-online.target"),
            ("After", "network-online.target"),
        ],
        "Service": [
            *start,
            ("Restart", "on-failure"),
            ("RestartSec", "10"),
            ("LimitNOFILE", "1048576"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }


@dataclass(frozen=True)
class DaemonFiles:
    """One daemon's unit on one node; its digest (with ceph.conf's) decides restarts."""

    name: str  # unit name
    unit: str
    conf: str

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.unit + self.conf).encode()).hexdigest()


def daemon_files(
    inventory: Inventory, server: Server, daemon: str, ident: str, description: str, run: str
) -> DaemonFiles:
    unit = unit_text(daemon_unit(inventory, server, daemon, ident, description, run))
    return DaemonFiles(f"{daemon_name(daemon, ident)}.service", unit, conf_text(inventory))


def mon_files(inventory: Inventory, server: Server, run: str) -> DaemonFiles:
    return daemon_files(inventory, server, "mon", server.name, f"Ceph monitor {server.name}", run)


def mgr_files(inventory: Inventory, server: Server, run: str) -> DaemonFiles:
    return daemon_files(inventory, server, "mgr", server.name, f"Ceph manager {server.name}", run)


def mds_files(inventory: Inventory, server: Server, run: str) -> DaemonFiles:
    description = f"Ceph metadata server {server.name}"
    return daemon_files(inventory, server, "mds", server.name, description, run)


def osd_files(inventory: Inventory, server: Server, osd: Osd, run: str) -> DaemonFiles:
    description = f"Ceph OSD {osd.id} on {osd.server} {osd.device}"
    return daemon_files(inventory, server, "osd", str(osd.id), description, run)


def config_digest(inventory: Inventory) -> str:
    return hashlib.sha256(conf_text(inventory).encode()).hexdigest()
