"""The ceph layer: a Ceph cluster from the inventory's servers and disks, up to HEALTH_OK.

In the order Ceph needs: keys first (local work ``ceph.keys`` mints every
cephx key the cluster will use, sealed beside the PKI; the later plans read
them as the fact ``CephKeys``), then the monitors on
the ``ceph-mon`` servers, each made from a monitor map and a keyring holding
every key, so the cluster is born knowing its managers, MDSs and the OSD
bootstrap key; then a wait for all of them in quorum. Managers on the first
two (``managers``) monitor servers; once they run, where Prometheus scrapes them (the
monitoring layer's targets, ``render/monitoring/targets.py``), their ``prometheus``
module turned on (it serves ``:9283``): here and not in the monitoring layer, so that
layer needs nothing of Ceph and runs beside it. One OSD per ``osd`` disk (bluestore on the
whole disk, the layout ``ceph-volume raw`` makes), each with the id and uuid the inventory
fixes, created through the bootstrap-osd key; a disk holding anything is
refused and left alone unless the inventory says ``wipe: true``. Once every
OSD is up and in: the OSD map told to require the release they all run (after a
major upgrade's roll, as Ceph's upgrade notes say; nothing on a converged cluster),
then the pools with their size, PG count and application, then each CephFS and its
MDSs. Last, from the operator's machine, a wait for HEALTH_OK that names every
health check that is not OK (``ceph.healthy``).

Every step is an observed file, a wait, or a command the journal remembers
whose script also first looks whether its work is already done, so a re-run
on a healthy cluster changes nothing. The daemons are systemd units whose only
runtime-dependent lines start the daemon (``render/ceph.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from labctl.ceph.keys import CephKeys
from labctl.data import shell
from labctl.engine.actions import Action, LocalStep, PutFile, Run, WaitFor, ssh_answers
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan, Step
from labctl.errors import RenderError
from labctl.inventory.model import BY_ID
from labctl.render import ceph as render
from labctl.render.monitoring.targets import targets

if TYPE_CHECKING:
    from labctl.inventory.model import Inventory, Server

# The scripts the plans run on nodes: labctl/data/scripts/NAME.sh (its header says
# why it exists and what its arguments are).
MON_MKFS = shell.body("ceph-mon-mkfs")
QUORUM = shell.body("ceph-quorum")
# The scripts that ask the cluster through ``$ceph`` carry ``ceph_reader`` (render.READER):
# where the node runs a monitor, its container answers (render.reader_words).
OSD_PREPARE = render.READER + shell.body("ceph-osd-prepare")
OSDS_PREPARE = shell.body("ceph-osds-prepare")
OSDS_IN = render.READER + shell.body("ceph-osds-in")
OSD_RELEASE = render.READER + shell.body("ceph-osd-release")
POOLS = render.READER + shell.body("ceph-pools")
FILESYSTEM = render.READER + shell.body("ceph-fs")
# What the restart scripts share: whether a daemon already runs what its restart would
# start (an interrupted roll resumes, restarting nothing twice), and whether none runs
# at all (a first start: nothing to ask or wait for).
CURRENT = shell.body("ceph-current")
MON_RESTART = CURRENT + shell.body("ceph-mon-restart")
OSD_RESTART = CURRENT + shell.body("ceph-osd-restart")
RESTART = CURRENT + shell.body("ceph-restart")
RUNNING = shell.body("ceph-running")
# Idempotent by Ceph (enabling an enabled module changes nothing); ``--force``: the
# managers may not have reported their modules to the monitors yet.
MGR_MODULE = 'exec "$@" mgr module enable prometheus --force'
RESTART_NAMES = ("labctl-ceph-mon-restart", "labctl-ceph-osd-restart", "labctl-ceph-restart")
RESTART_WAIT = 300
# On a node whose OSDs are restarting: labctl set ``noout`` (unset by the step's next
# run if it was killed before it could unset it itself).
NOOUT_MARK = "/var/lib/ceph/labctl/noout-set-by-labctl"


def scraped(inventory: Inventory) -> bool:
    """Whether Prometheus scrapes the managers (a ``ceph`` job among the targets the
    inventory implies): then the ceph layer turns their ``prometheus`` module on."""
    return any(t.job == "ceph" for t in targets(inventory))


def is_restart(action: Action) -> bool:
    return isinstance(action, Run) and action.argv[3:4] in {(n,) for n in RESTART_NAMES}


class CephLayer:
    name = "ceph"
    # Ceph on the hosts, on the storage network: the nodes up, and its keys sealed in the
    # PKI's directory under the CA passphrase the pki layer proves. Nothing of etcd,
    # Kubernetes or Calico.
    needs = ("os", "pki")
    facts = (CephKeys,)

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.ceph.work import HealthyWork, KeysWork

        return {
            "ceph.keys": KeysWork,
            "ceph.healthy": HealthyWork,
        }

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        if inventory.cluster.ceph is None:
            return
        entities = render.entities(inventory)
        yield Plan.of(
            "ceph: keys",
            [
                LocalStep(
                    "ceph.keys",
                    f"mint the cephx keys of {len(entities)} entities",
                    ",".join(entities),
                )
            ],
            makes=(CephKeys,),
        )
        # Nothing minted yet (a dry run): nothing to push to compare against.
        yield from CephPlans(ctx, ctx.fact(CephKeys).as_dict()).plans()


class CephPlans:
    """The plans after the keys, from the inventory and the minted keys."""

    def __init__(self, ctx: LayerContext, keys: dict[str, str]) -> None:
        self.ctx = ctx
        self.inventory: Inventory = ctx.inventory
        self.keys = keys
        self.run = render.runtime(self.inventory)
        self.conf = render.conf_text(self.inventory)
        self.first_mon = render.mons(self.inventory)[0]

    def path(self, node: str, path: str) -> str:
        return self.ctx.on_node(node, path)

    def secret(self, node: str, path: str, entities: list[str], caps: bool = True) -> PutFile:
        content = render.keyring(self.keys, entities, caps).encode()
        return PutFile(node, self.path(node, path), content, 0o600, "root:root", secret=True)

    def tool(self, server: Server, program: str) -> str:
        """The program's command line for the node scripts, which run it as ``$ceph``:
        word-split, never evaluated, so every word must be one plain shell word."""
        return self.words(program, render.tool(self.inventory, server, program, self.run))

    def reader(self, server: Server, program: str) -> str:
        """``tool`` through ``server``'s running monitor container (``ceph_reader``, which
        the script carries): for the scripts that only ask the cluster or tell it."""
        argv = render.reader_words(self.inventory, server, program, self.run)
        return self.words(program, argv)

    @staticmethod
    def words(program: str, argv: list[str]) -> str:
        import shlex

        for word in argv:
            if shlex.quote(word) != word:
                raise RenderError(f"{program}: {word!r} would not stay one word on the node")
        return shlex.join(argv)

    def units(self, server: Server) -> list[render.DaemonFiles]:
        """Every Ceph daemon's unit on ``server``."""
        inventory, node = self.inventory, server.name
        found = []
        if server in render.mons(inventory):
            found.append(render.mon_files(inventory, server, self.run))
        if server in render.managers(inventory):
            found.append(render.mgr_files(inventory, server, self.run))
        found += [
            render.osd_files(inventory, server, osd, self.run)
            for osd in render.osds(inventory)
            if osd.server == node
        ]
        if server in render.mds_servers(inventory):
            found.append(render.mds_files(inventory, server, self.run))
        return found

    def write_units(self, server: Server) -> list[Action]:
        """All of a node's units at once, and one daemon-reload after them.

        The reload has its own argv: the journal keeps one fingerprint per command
        and node, and other layers reload systemd too.
        """
        node = server.name
        units = self.units(server)
        unit_path = "/etc/systemd/system/{}"
        return [
            *(
                PutFile(node, self.path(node, unit_path.format(f.name)), f.unit.encode())
                for f in units
            ),
            Run(
                node,
                ("sh", "-c", "systemctl daemon-reload", "labctl-ceph-units"),
                triggers=tuple(f.digest for f in units),
                what="systemctl daemon-reload (Ceph's units changed)",
            ),
        ]

    def start(
        self, server: Server, units: list[render.DaemonFiles], osd_ids: list[int] | None = None
    ) -> list[Action]:
        """Units enabled, restarted when they or ceph.conf changed, then all running.

        The restart is one step per node (``is_restart``): a monitor's waits until it
        is back in quorum, a node's OSDs' until they are active and every PG is; the
        plans chain these steps across nodes (``Plan.rolling``).
        """
        node = server.name
        actions: list[Action] = [Run(node, ("systemctl", "enable", f.name)) for f in units]
        if not units:
            return actions
        cli = self.tool(server, "ceph")
        names = [f.name for f in units]
        triggers = tuple(f.digest for f in units)
        # Where a daemon's running container is read from (``current`` in the scripts):
        # the node's engine and the image its units name; none for the host runtime,
        # where systemd's MainPID is read instead.
        live = (
            (render.container_engine(server), render.image(self.inventory))
            if self.run == "container"
            else ("", "")
        )
        files = (self.path(node, "/etc/systemd/system"), self.path(node, render.CONF_PATH))
        if osd_ids is not None:
            pairs = [f"{f.name}:{i}" for f, i in zip(units, osd_ids, strict=True)]
            mark = self.path(node, NOOUT_MARK)
            argv = ("sh", "-c", OSD_RESTART, RESTART_NAMES[1], cli, str(RESTART_WAIT), *live,
                    *files, mark, *pairs)  # fmt: skip
            what = (
                f"`ceph osd ok-to-stop`, noout, systemctl restart {', '.join(names)}, "
                "then wait until they are active and every PG is active+clean (none "
                "running, a first start: all started at once, nothing asked)"
            )
        elif len(units) == 1 and units[0].name.startswith("ceph-mon-"):
            argv = ("sh", "-c", MON_RESTART, RESTART_NAMES[0], cli, node, names[0],
                    str(RESTART_WAIT), *live, *files)  # fmt: skip
            what = (
                f"systemctl restart {names[0]}, then wait until it is back in quorum "
                "(not running, a first start: started, nothing asked)"
            )
        else:
            argv = ("sh", "-c", RESTART, RESTART_NAMES[2], *live, *files, *names)
            what = f"systemctl restart {', '.join(names)}"
        actions += [
            Run(node, argv, triggers=triggers, timeout=RESTART_WAIT + 30.0, what=what),
            WaitFor(
                node,
                ("sh", "-c", RUNNING, "labctl-ceph-running", *names),
                deadline=30.0,
                what=f"{', '.join(names)} to be running",
            ),
        ]
        return actions

    def plans(self) -> Iterator[Plan]:
        yield self.monitors()
        yield self.quorum()
        yield self.managers()
        yield self.osds()
        yield self.pools()
        yield self.metadata_servers()
        digest = render.config_digest(self.inventory)
        timeout = render.settings(self.inventory).health_timeout
        yield Plan.of(
            "ceph: health",
            [LocalStep("ceph.healthy", f"wait up to {timeout} s for HEALTH_OK", digest)],
        )

    def monitors(self) -> Plan:
        inventory = self.inventory
        fsid = render.settings(inventory).fsid
        mons = {s.name for s in render.mons(inventory)}
        addv: list[str] = []
        for mon in render.mons(inventory):
            addv += ["--addv", mon.name, render.mon_addrs(inventory, mon)]
        actions: list[Action] = []
        for server in render.ceph_servers(inventory):
            node = server.name
            actions += [
                ssh_answers(node, inventory.lab.ssh.boot_wait),
                PutFile(node, self.path(node, render.CONF_PATH), self.conf.encode()),
                self.secret(node, render.ADMIN_KEYRING, ["client.admin"]),
                # Where daemons keep sockets and logs (/run/ceph is packaging's, absent
                # on CoreOS).
                Run(
                    node,
                    (
                        "mkdir",
                        "-p",
                        self.path(node, render.RUN_DIR),
                        self.path(node, "/var/log/ceph"),
                    ),
                ),
            ]
            if node not in mons:
                actions += self.write_units(server)
                continue
            files = render.mon_files(inventory, server, self.run)
            keyring = self.path(node, render.MON_KEYRING)
            actions += [
                PutFile(
                    node,
                    keyring,
                    render.mon_keyring(inventory, self.keys).encode(),
                    0o600,
                    "root:root",
                    secret=True,
                ),
                Run(
                    node,
                    (
                        "sh",
                        "-c",
                        MON_MKFS,
                        "labctl-ceph-mon-mkfs",
                        self.tool(server, "ceph-mon"),
                        self.tool(server, "monmaptool"),
                        node,
                        fsid,
                        keyring,
                        self.path(node, f"/var/lib/ceph/mon/ceph-{node}"),
                        *addv,
                    ),
                    timeout=120.0,
                    what=f"make monitor {node}'s store (once; another cluster's is refused)",
                ),
                *self.write_units(server),
                *self.start(server, [files]),
            ]
        return Plan.rolling("ceph: monitors", actions, is_restart)

    def quorum(self) -> Plan:
        names = [s.name for s in render.mons(self.inventory)]
        node = self.first_mon.name
        cli = self.tool(self.first_mon, "ceph")
        digests = [
            render.mon_files(self.inventory, s, self.run).digest
            for s in render.mons(self.inventory)
        ]
        wait = Run(
            node,
            ("sh", "-c", QUORUM, "labctl-ceph-quorum", cli, "180", *names),
            timeout=210.0,
            triggers=tuple(digests),
            what=f"wait up to 180 s for monitors {', '.join(names)} in quorum",
        )
        return Plan.of("ceph: quorum", [wait])

    def managers(self) -> Plan:
        actions: list[Action] = []
        for server in render.managers(self.inventory):
            node = server.name
            files = render.mgr_files(self.inventory, server, self.run)
            keyring = f"/var/lib/ceph/mgr/ceph-{node}/keyring"
            actions += [
                self.secret(node, keyring, [f"mgr.{node}"], caps=False),
                *self.start(server, [files]),
            ]
        plan = Plan.rolling("ceph: managers", actions, is_restart)
        if not scraped(self.inventory):
            return plan
        running = tuple(s.id for s in plan.steps if isinstance(s.action, WaitFor))
        module = self.prometheus_module()
        return Plan(plan.layer, (*plan.steps, Step(module.key, module, running)))

    def prometheus_module(self) -> Run:
        """The managers' ``prometheus`` module on, through the first monitor. Its argv is
        the one the monitoring layer ran before this layer took the step over, so a lab
        whose journal holds it does not run it again."""
        mon = self.first_mon
        cli = render.tool(self.inventory, mon, "ceph", self.run)
        return Run(
            mon.name,
            ("sh", "-c", MGR_MODULE, "labctl-ceph-mgr-prometheus", *cli),
            timeout=60.0,
            what="ceph mgr module enable prometheus (the managers serve :9283)",
        )

    def osds(self) -> Plan:
        inventory = self.inventory
        actions: list[Action] = []
        by_server: dict[str, list[render.Osd]] = {}
        for osd in render.osds(inventory):
            by_server.setdefault(osd.server, []).append(osd)
        for name, osds in by_server.items():
            server = inventory.server(name)
            files = [render.osd_files(inventory, server, osd, self.run) for osd in osds]
            # `osd new` tells the monitors; a node that runs one asks through its container.
            mon_here = server in render.mons(inventory)
            cli = self.reader(server, "ceph") if mon_here else self.tool(server, "ceph")
            actions += [
                ssh_answers(name, inventory.lab.ssh.boot_wait),
                self.secret(name, render.BOOTSTRAP_OSD_KEYRING, ["client.bootstrap-osd"], False),
            ]
            actions += [
                self.secret(name, f"{osd.data_dir}/keyring", [f"osd.{osd.id}"], caps=False)
                for osd in osds
            ]
            # The node's OSDs made at once (``ceph-osds-prepare.sh``): each preparation
            # mostly waits (``osd new``'s commit, bluestore's mkfs syncing).
            per_osd: list[str] = []
            for osd in osds:
                wipe = "yes" if osd.wipe else "no"
                data = self.path(name, osd.data_dir)
                per_osd += [str(osd.id), osd.uuid, osd.device, wipe, data,
                            osd.wwn or "", osd.serial or ""]  # fmt: skip
            made = ", ".join(f"{osd.id} on {osd.device}{osd.identity}" for osd in osds)
            argv = ("sh", "-c", OSDS_PREPARE, "labctl-ceph-osds-prepare", OSD_PREPARE, cli,
                    self.tool(server, "ceph-osd"), self.tool(server, "ceph-bluestore-tool"),
                    BY_ID.rstrip("/"), *per_osd)  # fmt: skip
            actions.append(
                Run(
                    name,
                    argv,
                    timeout=300.0,
                    triggers=tuple(osd.uuid for osd in osds),
                    what=f"make OSDs {made}, at once (a disk holding data is refused)",
                )
            )
            actions += self.start(server, files, [osd.id for osd in osds])
        return Plan.rolling("ceph: osds", actions, is_restart)

    def pools(self) -> Plan:
        ceph = render.settings(self.inventory)
        server = self.first_mon
        node = server.name
        # After quorum the first monitor's container runs: every question is an exec.
        cli = self.reader(server, "ceph")
        count = len(render.osds(self.inventory))
        actions: list[Action] = [
            Run(
                node,
                ("sh", "-c", OSDS_IN, "labctl-ceph-osds-in", cli, str(count), "300"),
                timeout=330.0,
                what=f"wait up to 300 s for all {count} OSDs to be up and in",
            ),
            # After a major upgrade, once every OSD runs the new release (the roll is
            # behind, every OSD up): Ceph's upgrade notes' last OSD step. Asked again
            # whenever an OSD's unit changed (a roll) or the version did.
            Run(
                node,
                ("sh", "-c", OSD_RELEASE, "labctl-ceph-osd-release", cli),
                triggers=(
                    ceph.version or "",
                    *(
                        render.osd_files(
                            self.inventory, self.inventory.server(osd.server), osd, self.run
                        ).digest
                        for osd in render.osds(self.inventory)
                    ),
                ),
                what="ceph osd require-osd-release <the release every OSD runs> "
                "(once; nothing when the OSD map already requires it)",
            ),
        ]
        # Every pool in one step, the pools' writes at once (``ceph-pools.sh``). A pool a
        # CephFS is made on gets its application from `fs new`, not a write of its own.
        on_fs = {p for fs in ceph.filesystems for p in (fs.metadata_pool, fs.data_pool)}
        words: list[str] = []
        for pool in ceph.pools:
            pg = str(pool.pg_num) if pool.pg_num else "auto"
            fs_made = pool.name in on_fs and pool.application == "cephfs"
            words += [pool.name, pg, str(pool.size), pool.application, "yes" if fs_made else "no"]
        if ceph.pools:
            described = "; ".join(
                f"{p.name} (size {p.size}, {p.pg_num or 'auto'} PGs, {p.application})"
                for p in ceph.pools
            )
            actions.append(
                Run(
                    node,
                    ("sh", "-c", POOLS, "labctl-ceph-pools", cli, *words),
                    what=f"pools {described}: what differs written, the pools at once",
                )
            )
        for fs in ceph.filesystems:
            actions.append(
                Run(
                    node,
                    (
                        "sh",
                        "-c",
                        FILESYSTEM,
                        "labctl-ceph-fs",
                        cli,
                        fs.name,
                        fs.metadata_pool,
                        fs.data_pool,
                    ),
                    what=f"CephFS {fs.name} on {fs.metadata_pool} and {fs.data_pool}",
                )
            )
        return Plan.of("ceph: pools", actions)

    def metadata_servers(self) -> Plan:
        actions: list[Action] = []
        for server in render.mds_servers(self.inventory):
            node = server.name
            files = render.mds_files(self.inventory, server, self.run)
            keyring = f"/var/lib/ceph/mds/ceph-{node}/keyring"
            actions += [
                ssh_answers(node, self.inventory.lab.ssh.boot_wait),
                self.secret(node, keyring, [f"mds.{node}"], caps=False),
                *self.start(server, [files]),
            ]
        return Plan.rolling("ceph: metadata servers", actions, is_restart)
