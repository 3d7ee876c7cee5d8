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
import shlex
import subprocess
import sys
import time
from pathlib import Path

from labctl.sim import disks as sim_disks
from labctl.sim import engine as sim_engine
from labctl.sim.process import ManagedProcess
from labctl.sim.render.kubernetes import CNI_CONF_DIR

WRITABLE = ("etc", "root", "var", "home", "tmp", "opt", "srv", "usr/local")


def node_dir(state: Path, name: str) -> Path:
    return state / "nodes" / name


def _config(state: Path, name: str) -> dict[str, object]:
    config: dict[str, object] = json.loads((node_dir(state, name) / "node.json").read_text())
    return config


# Inside a node its own directory is seen here, so the overlays below can never
# hide it (a state dir under /tmp or /root would otherwise vanish under them).
NODE_MOUNT = "/mnt"
# Where a node's own CNI configuration lives in its directory, seen at CNI_CONF_DIR.
CNI_FOLDER = "cni-net.d"


def host_root_view(d: Path) -> list[str]:
    """Shell lines giving a node the host's root read-only, with its own writable overlays."""
    lines = [
        "mount --make-rprivate /",
        f"mount --bind {shlex.quote(str(d))} {NODE_MOUNT}",  # stays writable when / goes ro
        "mount -o remount,bind,ro /",
    ]
    for sub in WRITABLE:
        flat = sub.replace("/", "-")
        upper, work = f"{NODE_MOUNT}/upper/{flat}", f"{NODE_MOUNT}/work/{flat}"
        lines.append(f"mkdir -p {upper} {work}")
        lines.append(
            f"mount -t overlay overlay -o lowerdir=/{sub},upperdir={upper},workdir={work} /{sub}"
        )
    # The pod network's configuration is the node's alone: /etc is an overlay on the
    # host's, and a host package's CNI file (podman's 87-podman-bridge.conflist) would
    # otherwise give the kubelet's containerd a pod network the calico layer never made.
    lines += [
        f"mkdir -p {NODE_MOUNT}/{CNI_FOLDER} {CNI_CONF_DIR}",
        f"mount --bind {NODE_MOUNT}/{CNI_FOLDER} {CNI_CONF_DIR}",
    ]
    return lines


def _login_user(user: str, hostname: str) -> list[str]:
    """Shell lines making ``user`` as CoreOS has core: key login, passwordless sudo.

    Made once, in the node's own /etc and /home overlays (the host never sees it).
    The password field is '*', not the locked '!' useradd leaves: sshd without PAM
    refuses key logins to locked accounts.
    """
    if user == "root":
        return []
    q = shlex.quote
    sudoers = q(f"/etc/sudoers.d/labctl-{user}")
    return [
        f"id {q(user)} >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' {q(user)}",
        f"[ -f {sudoers} ] || {{ echo {q(user + ' ALL=(ALL) NOPASSWD: ALL')} > {sudoers}; "
        f"chmod 0440 {sudoers}; }}",
        # sudo looks its host name up; without this line it warns on every call.
        f"grep -q ' {hostname}$' /etc/hosts || echo '127.0.1.1 {hostname}' >> /etc/hosts",
    ]


def _boot_script(state: Path, name: str) -> str:
    d = node_dir(state, name)
    q = shlex.quote
    bootdev = state / "bmcs" / name / "bootdev"
    lines = [
        "set -e",
        f"hostname {q(name)}",
        # How this boot happened, as the BMC was told (pxe, disk, bios).
        f"if [ -f {q(str(bootdev))} ]; then cp {q(str(bootdev))} {q(str(d / 'bootdev'))}; "
        f"else echo disk > {q(str(d / 'bootdev'))}; fi",
        *host_root_view(d),
        *sim_disks.boot_lines(d, NODE_MOUNT),  # the node's own /dev/sdX, when it has disks
    ]
    lines += [
        "mount -t tmpfs -o mode=755 tmpfs /run",  # a fresh /run every boot
        "mkdir -p /run/sshd /run/labctl",
        f"cp {NODE_MOUNT}/bootdev /run/labctl/bootdev",
        *sim_engine.boot_lines(d, NODE_MOUNT),  # podman and its images, when the lab has them
        *_login_user(str(_config(state, name).get("login_user", "root")), name),
        # Units enabled on the node start at boot, as systemd would start them.
        "/usr/local/bin/systemctl start-enabled || true",
        f"exec /usr/sbin/sshd -D -e -f {NODE_MOUNT}/sshd_config",
    ]
    return "\n".join(lines)


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
    log = (d / "node.log").open("ab")
    argv = [
        "ip", "netns", "exec", str(config["netns"]),
        "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
        "sh", "-c", _boot_script(state, name),
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
