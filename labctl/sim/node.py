"""A simulated server's power: its namespaces, overlays and sshd, started and stopped.

``python -m labctl.sim.node start|stop NAME STATE_DIR`` is what the
simulated BMC and PDU hooks run. A node runs as ``unshare --pid --kill-child``
inside its network namespace: killing that one process kills everything in the
node (SIGKILL to its PID namespace), which is what pulling the power does.

Inside, ``/`` is read-only and the writable directories are overlays whose
upper layers live in the node's state directory, so writes stay on the node
(across power cycles, like a disk) and never reach the host or another node.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from labctl.sim import disks as sim_disks
from labctl.sim import engine as sim_engine
from labctl.sim.process import ManagedProcess
from labctl.sim.render.kubernetes import mount_cgroups

WRITABLE = ("etc", "root", "var", "home", "tmp", "opt", "srv", "usr/local")


def node_dir(state: Path, name: str) -> Path:
    return state / "nodes" / name


def _config(state: Path, name: str) -> dict[str, object]:
    config: dict[str, object] = json.loads((node_dir(state, name) / "node.json").read_text())
    return config


# Inside a node its own directory is seen here, so the overlays below can never
# hide it (a state dir under /tmp or /root would otherwise vanish under them).
NODE_MOUNT = "/mnt"


# The node's boot: a shipped script (its header says what it does and reads), with the
# node's values as its arguments and its disks and images as tables in its folder.
BOOT_SCRIPT = Path(__file__).with_name("node-boot.sh")
BOOT_FOLDER = "boot"


def write_boot_tables(d: Path) -> None:
    """The tables the boot reads from the node's folder, made afresh for each boot."""
    folder = d / BOOT_FOLDER
    folder.mkdir(exist_ok=True)
    disks, links = sim_disks.boot_tables(d, NODE_MOUNT)
    (folder / "disks").write_text(disks)
    (folder / "links").write_text(links)
    (folder / "images").write_text(sim_engine.boot_images(d))
    (folder / "mount-cgroups.sh").write_text("\n".join(mount_cgroups()) + "\n")


def boot_argv(state: Path, name: str) -> list[str]:
    """The boot script and its arguments (node-boot.sh's header names them)."""
    d = node_dir(state, name)
    return [
        "sh",
        str(BOOT_SCRIPT),
        name,
        str(d),
        NODE_MOUNT,
        str(state / "bmcs" / name / "bootdev"),
        str(_config(state, name).get("login_user", "root")),
        sim_engine.boot_folder(d, NODE_MOUNT) or "-",
        *WRITABLE,
    ]


def pid(state: Path, name: str) -> int | None:
    path = node_dir(state, name) / "pid"
    if not path.exists():
        return None
    value = int(path.read_text())
    return value if ManagedProcess(value).running() else None


def start(state: Path, name: str) -> int:
    running = pid(state, name)
    if running:
        return running
    config = _config(state, name)
    d = node_dir(state, name)
    write_boot_tables(d)
    log = (d / "node.log").open("ab")
    argv = [
        "ip", "netns", "exec", str(config["netns"]),
        "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
        *boot_argv(state, name),
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    (d / "pid").write_text(str(process.pid))
    return process.pid


def stop(state: Path, name: str) -> None:
    running = pid(state, name)
    if running:
        ManagedProcess(running).stop(timeout=2.0)
    (node_dir(state, name) / "pid").unlink(missing_ok=True)
    release_cgroups(state, name)


# containerd (under the kubelet) puts each container's cgroup at /k8s.io/ID of the
# host's own tree; killing the node's PID namespace ends the processes but leaves the
# directories. Power-off removes this node's, by the ids its containerd recorded.
CGROUP_ROOT = Path("/sys/fs/cgroup")
CRI_STATE = ("upper", "var", "lib", "containerd", "io.containerd.grpc.v1.cri")


def release_cgroups(state: Path, name: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Remove the cgroups of the node's containers; the ones removed."""
    cri = node_dir(state, name).joinpath(*CRI_STATE)
    ids = [p.name for kind in ("containers", "sandboxes") if (cri / kind).is_dir()
           for p in (cri / kind).iterdir()]  # fmt: skip
    paths = [path for container in ids for path in root.glob(f"*/k8s.io/{container}")]
    removed = [path for path in paths if sim_engine.remove_cgroup(path)]
    return removed + sim_engine.release_cgroups(node_dir(state, name), root)


def wait_ssh(address: str, port: int = 22, timeout: float = 10.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((address, port)) == 0:
                return True
        time.sleep(0.05)
    return False


def main(argv: list[str]) -> int:
    # What the simulated BMC and PDU hooks run; power status reads the pid file instead.
    if len(argv) != 3 or argv[0] not in ("start", "stop"):
        print("usage: python -m labctl.sim.node start|stop NAME STATE_DIR", file=sys.stderr)
        return 2
    command, name, state = argv[0], argv[1], Path(argv[2])
    if command == "start":
        start(state, name)
    else:
        stop(state, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
