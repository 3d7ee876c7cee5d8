"""The inventory as typed, immutable data.

Built only from a document that passed the schema, so construction trusts the
shape; defaults here mirror the schema's ``default`` keywords. Each record keeps
its document ``path`` so semantic checks can point back at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labctl.inventory.problems import DocPath


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives. ``literal`` is set only for inline secrets."""

    env: str | None = None
    file: str | None = None
    literal: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "an inline value"


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    cidr: str
    purpose: str
    gateway: str | None
    vlan: int | None
    dns: tuple[str, ...]
    overlaps: tuple[str, ...]
    path: DocPath
    mtu: int | None = None


@dataclass(frozen=True, slots=True)
class Address:
    network: str
    address: str
    path: DocPath


@dataclass(frozen=True, slots=True)
class Bmc:
    type: str
    network: str
    address: str
    port: int
    username: str
    password: SecretRef
    cipher_suites: tuple[int, ...]
    allow_insecure: bool
    mac: str | None
    path: DocPath


@dataclass(frozen=True, slots=True)
class Nic:
    name: str
    mac: str
    speed: str
    switch: str | None
    port: str | None
    pxe: bool
    addresses: tuple[Address, ...]
    path: DocPath


BY_ID = "/dev/disk/by-id/"


@dataclass(frozen=True, slots=True)
class Disk:
    device: str
    size: str
    type: str
    role: str
    path: DocPath
    wipe: bool = False  # an OSD disk holding data may be overwritten
    wwn: str | None = None  # what udev reports: the node must agree before a write
    serial: str | None = None

    @property
    def by_id(self) -> bool:
        """Named by udev's stable link, which follows the disk whatever the kernel calls it."""
        return self.device.startswith(BY_ID)

    @property
    def stable(self) -> bool:
        """Named so that labctl can tell this disk from another one on the node."""
        return self.by_id or self.wwn is not None or self.serial is not None


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    distribution: str
    channel: str
    reboot_strategy: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Hardware:
    model: str
    cpu_model: str
    cpu_count: int
    memory: str


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    hardware: Hardware
    bmc: Bmc
    nics: tuple[Nic, ...]
    disks: tuple[Disk, ...]
    os: OperatingSystem
    roles: frozenset[str]
    path: DocPath

    def addresses(self, network: str | None = None) -> list[Address]:
        return [
            a for nic in self.nics for a in nic.addresses if network is None or a.network == network
        ]


@dataclass(frozen=True, slots=True)
class SwitchPort:
    name: str
    speed: str | None
    path: DocPath
    uplink: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Switch:
    name: str
    model: str
    management: Address | None
    asn: int | None
    router_id: str | None
    ports: tuple[SwitchPort, ...]
    path: DocPath
    platform: str | None = None  # frr, eos, ios: the configuration dialect
    interfaces: tuple[Address, ...] = ()
    ssh_user: str | None = None
    ssh_port: int = 22
    bgp_status: str | None = None  # ssh-frr, snmp: where its BGP sessions are read
    snmp: Snmp | None = None

    @property
    def bgp_source(self) -> str | None:
        """Where its BGP side is read from (None: nowhere), ``bgp_status`` or the platform's way."""
        if self.bgp_status is not None:
            return self.bgp_status
        return "ssh-frr" if self.platform == "frr" else None

    def interface(self, address: str) -> Address | None:
        for a in self.interfaces:
            if a.address == address:
                return a
        return None


@dataclass(frozen=True, slots=True)
class Snmp:
    version: str
    port: int
    username: str | None
    auth_protocol: str
    auth_key: SecretRef | None
    priv_protocol: str
    priv_key: SecretRef | None
    community: SecretRef | None


@dataclass(frozen=True, slots=True)
class Outlet:
    outlet: int
    device: str
    psu: int
    path: DocPath


@dataclass(frozen=True, slots=True)
class Pdu:
    name: str
    model: str
    profile: str
    custom_profile: dict[str, Any] | None
    network: str
    address: str
    outlet_count: int
    snmp: Snmp
    outlets: tuple[Outlet, ...]
    path: DocPath


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    name: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Kubernetes:
    version: str
    api_endpoint: ApiEndpoint
    pod_cidr: str
    service_cidr: str
    cluster_domain: str
    cluster_dns: str | None = None
    node_cidr_mask_size: int = 24
    runtime: str = "static-pods"
    binary_dir: str = "/opt/bin"
    image_registry: str = "registry.k8s.io"
    ready_timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class EtcdSnapshots:
    directory: str
    keep: int


@dataclass(frozen=True, slots=True)
class Etcd:
    version: str | None
    client_port: int
    peer_port: int
    network: str | None = None
    runtime: str = "container"
    image: str | None = None
    data_dir: str = "/var/lib/etcd"
    health_timeout: int = 120
    snapshots: EtcdSnapshots = EtcdSnapshots("etcd-snapshots", 5)


@dataclass(frozen=True, slots=True)
class CalicoPeer:
    """A switch the nodes peer with; ``nodes`` is "all", "attached" or server names."""

    switch: str
    address: str
    nodes: str | tuple[str, ...]
    password: SecretRef | None
    path: DocPath


@dataclass(frozen=True, slots=True)
class CalicoAdvertise:
    pod_blocks: bool = True
    service_cidr: bool = False
    external_network: str | None = None


@dataclass(frozen=True, slots=True)
class CalicoManifest:
    url: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Calico:
    asn: int
    node_to_node_mesh: bool
    peers: tuple[CalicoPeer, ...]
    nat_outgoing: bool
    version: str | None = None
    manifest: CalicoManifest | None = None
    network: str | None = None
    block_size: int = 26
    advertise: CalicoAdvertise = CalicoAdvertise()
    route_reflector_cluster_id: str = "244.0.0.1"
    mesh_password: SecretRef | None = None
    keepalive_time: int = 30
    hold_time: int = 90


@dataclass(frozen=True, slots=True)
class CephPool:
    name: str
    application: str
    size: int
    pg_num: int | None
    path: DocPath


@dataclass(frozen=True, slots=True)
class CephFilesystem:
    name: str
    metadata_pool: str
    data_pool: str
    path: DocPath


@dataclass(frozen=True, slots=True)
class Ceph:
    fsid: str
    public_network: str
    cluster_network: str | None
    pools: tuple[CephPool, ...]
    filesystems: tuple[CephFilesystem, ...]
    runtime: str = "container"
    version: str | None = None
    image: str | None = None
    max_pg_per_osd: int = 250
    managers: int | None = None  # None: 2, or every monitor server when there are fewer
    health_timeout: int = 600
    # Further ceph.conf [global] options, in the order the inventory gives them.
    config: tuple[tuple[str, str | int | float | bool], ...] = ()


@dataclass(frozen=True, slots=True)
class PkiSettings:
    passphrase: SecretRef
    directory: str
    backend: str
    operator: str
    validity_days: int
    renew_within_days: int


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    kubernetes: Kubernetes
    etcd: Etcd
    calico: Calico
    ceph: Ceph | None
    pki: PkiSettings | None = None


@dataclass(frozen=True, slots=True)
class SshSettings:
    user: str
    port: int
    known_hosts: str | None
    identity_file: str | None
    boot_wait: float
    authorized_keys: tuple[str, ...] = ()
    # Who labctl logs in as when not ``user`` (never from the file: the CLI's
    # LABCTL_SSH_USER). ``user`` stays the account nodes are installed with.
    login_user: str | None = field(default=None, metadata={"not_in_file": True})


@dataclass(frozen=True, slots=True)
class BootService:
    """Where and how labctl's boot service answers booting servers (lab.boot)."""

    network: str
    address: str
    interface: str | None = None
    dhcp: str = "full"
    http_port: int = 8080
    assets: str = ".labctl/boot-assets"
    mirror: str | None = None
    install_timeout: float = 1200.0


@dataclass(frozen=True, slots=True)
class Lab:
    name: str
    domain: str
    site: str | None
    allow_literal_secrets: bool
    ssh: SshSettings
    time_servers: tuple[str, ...] = ()
    boot: BootService | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    lab: Lab
    networks: tuple[Network, ...]
    servers: tuple[Server, ...]
    switches: tuple[Switch, ...]
    pdus: tuple[Pdu, ...]
    cluster: Cluster

    def server(self, name: str) -> Server:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(name)

    def network(self, name: str) -> Network:
        for network in self.networks:
            if network.name == name:
                return network
        raise KeyError(name)

    def with_role(self, role: str) -> list[Server]:
        return [s for s in self.servers if role in s.roles]


# -- construction from schema-valid data ------------------------------------


def _secret(value: Any) -> SecretRef:
    if isinstance(value, dict):
        return SecretRef(env=value.get("env"), file=value.get("file"))
    return SecretRef(literal=str(value))


def _address(d: dict[str, Any], path: DocPath) -> Address:
    return Address(d["network"], d["address"], path)


def _server(d: dict[str, Any], path: DocPath) -> Server:
    b = d["bmc"]
    bmc = Bmc(
        type=b["type"],
        network=b["network"],
        address=b["address"],
        port=b.get("port", 623),
        username=b["username"],
        password=_secret(b["password"]),
        cipher_suites=tuple(b.get("cipher_suites", (17, 3))),
        allow_insecure=b.get("allow_insecure", False),
        mac=b.get("mac"),
        path=(*path, "bmc"),
    )
    nics = tuple(
        Nic(
            name=n["name"],
            mac=n["mac"],
            speed=n["speed"],
            switch=n.get("switch"),
            port=n.get("port"),
            pxe=n.get("pxe", False),
            addresses=tuple(
                _address(a, (*path, "nics", i, "addresses", j))
                for j, a in enumerate(n.get("addresses", ()))
            ),
            path=(*path, "nics", i),
        )
        for i, n in enumerate(d["nics"])
    )
    disks = tuple(
        Disk(
            x["device"],
            x["size"],
            x["type"],
            x["role"],
            (*path, "disks", i),
            x.get("wipe", False),
            x.get("wwn"),
            x.get("serial"),
        )
        for i, x in enumerate(d["disks"])
    )
    hw = d["hardware"]
    os_ = d["os"]
    return Server(
        name=d["name"],
        hardware=Hardware(hw["model"], hw["cpus"]["model"], hw["cpus"]["count"], hw["memory"]),
        bmc=bmc,
        nics=nics,
        disks=disks,
        os=OperatingSystem(
            os_["distribution"],
            os_["channel"],
            os_.get("reboot_strategy", "etcd-lock"),
            os_.get("version"),
        ),
        roles=frozenset(d["roles"]),
        path=path,
    )


def _switch(d: dict[str, Any], path: DocPath) -> Switch:
    mgmt = d.get("management")
    ssh = d.get("ssh", {})
    return Switch(
        name=d["name"],
        model=d["model"],
        management=_address(mgmt, (*path, "management")) if mgmt else None,
        asn=d.get("asn"),
        router_id=d.get("router_id"),
        ports=tuple(
            SwitchPort(
                p["name"],
                p.get("speed"),
                (*path, "ports", i),
                uplink=p.get("uplink", False),
                description=p.get("description"),
            )
            for i, p in enumerate(d.get("ports", ()))
        ),
        path=path,
        platform=d.get("platform"),
        interfaces=tuple(
            _address(a, (*path, "interfaces", i)) for i, a in enumerate(d.get("interfaces", ()))
        ),
        ssh_user=ssh.get("user"),
        ssh_port=ssh.get("port", 22),
        bgp_status=d.get("bgp_status"),
        snmp=_snmp(d["snmp"]) if "snmp" in d else None,
    )


def _snmp(s: dict[str, Any]) -> Snmp:
    return Snmp(
        version=s["version"],
        port=s.get("port", 161),
        username=s.get("username"),
        auth_protocol=s.get("auth_protocol", "sha"),
        auth_key=_secret(s["auth_key"]) if "auth_key" in s else None,
        priv_protocol=s.get("priv_protocol", "aes"),
        priv_key=_secret(s["priv_key"]) if "priv_key" in s else None,
        community=_secret(s["community"]) if "community" in s else None,
    )


def _calico(calico: dict[str, Any]) -> Calico:
    advertise = calico.get("advertise", {})
    manifest = calico.get("manifest")
    mesh_password = calico.get("mesh_password")
    peers = []
    for i, p in enumerate(calico.get("peers", ())):
        nodes = p.get("nodes", "all")
        peers.append(
            CalicoPeer(
                switch=p["switch"],
                address=p["address"],
                nodes=nodes if isinstance(nodes, str) else tuple(nodes),
                password=_secret(p["password"]) if "password" in p else None,
                path=("cluster", "calico", "peers", i),
            )
        )
    return Calico(
        asn=calico["asn"],
        node_to_node_mesh=calico.get("node_to_node_mesh", True),
        peers=tuple(peers),
        nat_outgoing=calico.get("nat_outgoing", True),
        version=calico.get("version"),
        manifest=CalicoManifest(manifest["url"], manifest["sha256"]) if manifest else None,
        network=calico.get("network"),
        block_size=calico.get("block_size", 26),
        advertise=CalicoAdvertise(
            pod_blocks=advertise.get("pod_blocks", True),
            service_cidr=advertise.get("service_cidr", False),
            external_network=advertise.get("external_network"),
        ),
        route_reflector_cluster_id=calico.get("route_reflector_cluster_id", "244.0.0.1"),
        mesh_password=_secret(mesh_password) if mesh_password is not None else None,
        keepalive_time=calico.get("keepalive_time", 30),
        hold_time=calico.get("hold_time", 90),
    )


def _pdu(d: dict[str, Any], path: DocPath) -> Pdu:
    s = d["snmp"]
    return Pdu(
        name=d["name"],
        model=d["model"],
        profile=d["profile"],
        custom_profile=d.get("custom_profile"),
        network=d["network"],
        address=d["address"],
        outlet_count=d["outlet_count"],
        snmp=_snmp(s),
        outlets=tuple(
            Outlet(o["outlet"], o["device"], o.get("psu", 1), (*path, "outlets", i))
            for i, o in enumerate(d.get("outlets", ()))
        ),
        path=path,
    )


def _cluster(d: dict[str, Any]) -> Cluster:
    k = d["kubernetes"]
    api = k["api_endpoint"]
    etcd = d.get("etcd", {})
    calico = d["calico"]
    ceph = d.get("ceph")
    pki = d.get("pki")
    return Cluster(
        name=d["name"],
        kubernetes=Kubernetes(
            version=k["version"],
            api_endpoint=ApiEndpoint(api["name"], api["address"], api.get("port", 6443)),
            pod_cidr=k["pod_cidr"],
            service_cidr=k["service_cidr"],
            cluster_domain=k.get("cluster_domain", "cluster.local"),
            cluster_dns=k.get("cluster_dns"),
            node_cidr_mask_size=k.get("node_cidr_mask_size", 24),
            runtime=k.get("runtime", "static-pods"),
            binary_dir=k.get("binary_dir", "/opt/bin"),
            image_registry=k.get("image_registry", "registry.k8s.io"),
            ready_timeout=float(k.get("ready_timeout", 300)),
        ),
        etcd=Etcd(
            version=etcd.get("version"),
            client_port=etcd.get("client_port", 2379),
            peer_port=etcd.get("peer_port", 2380),
            network=etcd.get("network"),
            runtime=etcd.get("runtime", "container"),
            image=etcd.get("image"),
            data_dir=etcd.get("data_dir", "/var/lib/etcd"),
            health_timeout=etcd.get("health_timeout", 120),
            snapshots=EtcdSnapshots(
                etcd.get("snapshots", {}).get("directory", "etcd-snapshots"),
                etcd.get("snapshots", {}).get("keep", 5),
            ),
        ),
        calico=_calico(calico),
        ceph=Ceph(
            fsid=ceph["fsid"],
            public_network=ceph["public_network"],
            cluster_network=ceph.get("cluster_network"),
            pools=tuple(
                CephPool(
                    p["name"],
                    p["application"],
                    p.get("size", 3),
                    p.get("pg_num"),
                    ("cluster", "ceph", "pools", i),
                )
                for i, p in enumerate(ceph["pools"])
            ),
            filesystems=tuple(
                CephFilesystem(
                    f["name"],
                    f["metadata_pool"],
                    f["data_pool"],
                    ("cluster", "ceph", "filesystems", i),
                )
                for i, f in enumerate(ceph.get("filesystems", ()))
            ),
            runtime=ceph.get("runtime", "container"),
            version=ceph.get("version"),
            image=ceph.get("image"),
            max_pg_per_osd=ceph.get("max_pg_per_osd", 250),
            managers=ceph.get("managers"),
            health_timeout=ceph.get("health_timeout", 600),
            config=tuple(ceph.get("config", {}).items()),
        )
        if ceph
        else None,
        pki=PkiSettings(
            passphrase=_secret(pki["passphrase"]),
            directory=pki.get("directory", "ssl"),
            backend=pki.get("backend", "auto"),
            operator=pki.get("operator", "admin"),
            validity_days=pki.get("validity_days", 365),
            renew_within_days=pki.get("renew_within_days", 30),
        )
        if pki
        else None,
    )


def _boot(d: dict[str, Any]) -> BootService:
    return BootService(
        network=d["network"],
        address=d["address"],
        interface=d.get("interface"),
        dhcp=d.get("dhcp", "full"),
        http_port=d.get("http_port", 8080),
        assets=d.get("assets", ".labctl/boot-assets"),
        mirror=d.get("mirror"),
        install_timeout=float(d.get("install_timeout", 1200)),
    )


def build_inventory(data: dict[str, Any]) -> Inventory:
    """Typed inventory from a document that passed the schema."""
    lab = data["lab"]
    ssh = lab.get("ssh", {})
    return Inventory(
        lab=Lab(
            name=lab["name"],
            domain=lab["domain"],
            site=lab.get("site"),
            allow_literal_secrets=lab.get("allow_literal_secrets", False),
            ssh=SshSettings(
                user=ssh.get("user", "core"),
                port=ssh.get("port", 22),
                known_hosts=ssh.get("known_hosts"),
                identity_file=ssh.get("identity_file"),
                boot_wait=float(ssh.get("boot_wait", 600)),
                authorized_keys=tuple(ssh.get("authorized_keys", ())),
            ),
            time_servers=tuple(lab.get("time_servers", ())),
            boot=_boot(lab["boot"]) if "boot" in lab else None,
        ),
        networks=tuple(
            Network(
                name=n["name"],
                cidr=n["cidr"],
                purpose=n["purpose"],
                gateway=n.get("gateway"),
                vlan=n.get("vlan"),
                dns=tuple(n.get("dns", ())),
                overlaps=tuple(n.get("overlaps", ())),
                path=("networks", i),
                mtu=n.get("mtu"),
            )
            for i, n in enumerate(data["networks"])
        ),
        servers=tuple(_server(s, ("servers", i)) for i, s in enumerate(data["servers"])),
        switches=tuple(_switch(s, ("switches", i)) for i, s in enumerate(data.get("switches", ()))),
        pdus=tuple(_pdu(p, ("pdus", i)) for i, p in enumerate(data.get("pdus", ()))),
        cluster=_cluster(data["cluster"]),
    )
