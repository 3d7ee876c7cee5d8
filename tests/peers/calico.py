"""Calico's own confd, built from Calico's source, rendering BIRD's configuration.

labctl's BIRD renderer (``labctl/sim/render/bird.py``) writes what it believes
calico-node's confd would write; a test of it against itself cannot find a wrong
belief. This runs the real one: ``calico-node -confd`` from the build
``scripts/build-calico.sh`` keeps, with confd's own templates and conf.d from the
same commit, against a Kubernetes API holding what the calico-resources layer
applied. Only the output paths in conf.d are moved into the test's directory (they
are absolute, under /etc/calico); confd's ``check_cmd`` (``bird -p -c``) runs the
real BIRD 1.6.8 on every file before it is written, as in calico-node's image.
The process is started and stopped by its pid.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from labctl.programs import BIRD1

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-calico.sh"


def build_dir() -> Path:
    """Where the build script keeps the pinned commit's build."""
    out = subprocess.run([str(SCRIPT), "--print-dir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def require_build() -> Path:
    built = build_dir()
    if not (built / "bin" / "calico-node").exists():
        raise AssertionError(f"{built}/bin/calico-node is missing: run scripts/build-calico.sh")
    return built


def token_kubeconfig(path: Path, server: str, ca: Path, token: str) -> Path:
    """A kubeconfig for a ServiceAccount token, as calico-node's in-cluster config has."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "lab", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "calico-node", "user": {"token": token}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "calico-node"}}],
        "current-context": "lab",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class ConfdRun:
    returncode: int
    output: str
    config_dir: Path

    def file(self, name: str) -> str:
        return (self.config_dir / name).read_text()


def confd_dir(built: Path, workdir: Path) -> tuple[Path, Path]:
    """(confd's configuration directory, where its renders land): Calico's conf.d and
    templates, with each template's ``dest`` moved under ``workdir``."""
    confdir = workdir / "confd"
    out = confdir / "config"
    shutil.rmtree(confdir, ignore_errors=True)
    shutil.copytree(built / "confd", confdir)
    out.mkdir()
    for toml in (confdir / "conf.d").glob("*.toml"):
        text = toml.read_text()
        moved = re.sub(r'^dest = "/etc/calico/confd/config/', f'dest = "{out}/', text, flags=re.M)
        assert moved != text, f"{toml.name}: no dest under /etc/calico/confd/config"
        toml.write_text(moved)
    return confdir, out


def run_confd_once(
    built: Path, workdir: Path, kubeconfig: Path, node: str, timeout: float = 120
) -> ConfdRun:
    """``calico-node -confd -confd-run-once`` as node ``node``: one render of every template
    once confd has synced with the datastore, then exit."""
    confdir, out = confd_dir(built, workdir)
    env = {
        "PATH": f"{Path(BIRD1).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "DATASTORE_TYPE": "kubernetes",
        "KUBECONFIG": str(kubeconfig),
        "NODENAME": node,
        "CALICO_NETWORKING_BACKEND": "bird",
        "BGP_LOGSEVERITYSCREEN": "info",
        "HOME": str(workdir),
    }
    proc = subprocess.Popen(
        [
            str(built / "bin" / "calico-node"),
            "-confd",
            "-confd-run-once",
            f"-confd-confdir={confdir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=out,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(
            f"confd did not finish within {timeout:g} s:\n{output[-4000:]}"
        ) from None
    return ConfdRun(proc.returncode, output, out)


@dataclass(frozen=True)
class BirdPeer:
    name: str
    neighbor: str
    asn: int
    local_as: int | None
    password: str | None
    passive: bool


def bgp_protocols(config: str) -> dict[str, BirdPeer]:
    """The ``protocol bgp`` blocks of a BIRD 1.6 configuration, by name; templates
    (``template bgp NAME``) give their ``local as`` to protocols made ``from`` them."""
    local_as: dict[str, int] = {}
    for m in re.finditer(r"^template bgp (\S+) \{(.*?)^\}", config, re.M | re.S):
        if a := re.search(r"local as (\d+);", m.group(2)):
            local_as[m.group(1)] = int(a.group(1))
    out = {}
    for m in re.finditer(r"^protocol bgp (\S+)(?: from (\S+))? \{(.*?)^\}", config, re.M | re.S):
        name, template, body = m.group(1), m.group(2), m.group(3)
        n = re.search(r"neighbor ([0-9.]+) as (\d+);", body)
        assert n is not None, f"protocol {name} has no neighbor: {body}"
        own = re.search(r"local as (\d+);", body)
        pw = re.search(r'password "([^"]*)";', body)
        out[name] = BirdPeer(
            name,
            n.group(1),
            int(n.group(2)),
            int(own.group(1)) if own else local_as.get(template or ""),
            pw.group(1) if pw else None,
            re.search(r"passive on;", body) is not None,
        )
    return out


def cni_netconf(workdir: Path, node: str, kubeconfig: Path) -> dict[str, object]:
    """Calico's CNI network configuration for a pod on ``node`` (as calico-node's
    installer writes it, Kubernetes datastore), logging into ``workdir``."""
    return {
        "cniVersion": "0.3.1",
        "name": "k8s-pod-network",
        "type": "calico",
        "log_level": "info",
        "log_file_path": str(workdir / "cni.log"),
        "datastore_type": "kubernetes",
        "nodename": node,
        "ipam": {"type": "calico-ipam"},
        "policy": {"type": "k8s"},
        "kubernetes": {"kubeconfig": str(kubeconfig)},
    }


def cni_add_env(
    built: Path, container: str, netns: str, namespace: str, pod: str
) -> dict[str, str]:
    """The environment a container runtime gives a CNI plugin for an ADD of ``pod``."""
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(built / "bin"),
        "CNI_ARGS": (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};"
            f"K8S_POD_INFRA_CONTAINER_ID={container}"
        ),
    }


def ipam_add(
    built: Path, workdir: Path, kubeconfig: Path, node: str, namespace: str, pod: str
) -> dict[str, object]:
    """``calico-ipam`` ADD for ``pod`` on ``node``, as the CNI plugin calls it (the IPAM
    plugin alone: it allocates an address, it touches no interface). Its CNI result."""
    import json

    workdir.mkdir(parents=True, exist_ok=True)
    container = f"labctl-test-{pod}"
    netconf = cni_netconf(workdir, node, kubeconfig)
    # CNI_NETNS is read by the interface plugin only
    env = cni_add_env(built, container, f"/var/run/netns/{container}", namespace, pod)
    done = subprocess.run(
        [str(built / "bin" / "calico-ipam")],
        input=json.dumps(netconf),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"calico-ipam: {done.stdout}\n{done.stderr}"
    result: dict[str, object] = json.loads(done.stdout)
    return result
