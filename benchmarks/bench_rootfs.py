"""Start N simulated nodes over the host's root and over a cached debootstrap root, and compare.

Usage (root): python benchmarks/bench_rootfs.py [--nodes 30] [--cache DIR] [--runs 3]

The simulated-lab issue asked for per-node overlays "either over a root file
system built once and cached (a debootstrap of Debian 12) or over the host's own
root; measure both and choose". labctl.sim.node uses the host's root; this measures what the
other choice would cost:

- build once: the wall time and size (du -sm) of
  `debootstrap --variant=minbase --include=openssh-server,iproute2,procps,python3,etcd-server`,
  cached in --cache and reused by later runs (its build record sits beside it);
- N nodes up: wall time from launching N nodes in parallel until every node's
  sshd accepts a TCP connection (median of --runs, fresh nodes each run);
- memory while up: the drop in MemAvailable with every node up (everything the
  nodes cost, kernel included, but it drifts by tens of MiB between runs), and
  the node processes' summed Pss (steady, but user memory only);
- disk per node after start: what the node's overlay upper layers hold.

Each node gets its own network namespace (loopback only) and is started as
labctl.sim.node starts one, `unshare --mount --uts --pid --fork --kill-child
--mount-proc sh -c BOOT`; sshd listens on 127.0.0.1:22 inside it and is
probed from this process through a socket made in that namespace. "host root"
boots as node.py does (overlays over the host's /etc, /var, ... and the host's
sshd); "debootstrap root" mounts one overlay over the whole cached root, binds
/dev, mounts proc and a tmpfs /run, and chroots into it to exec its own sshd.
Every mount is made inside the node's private mount namespace, so killing the
node (SIGKILL to unshare ends its PID namespace) removes them all.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labctl.sim import netns_dir
from labctl.sim.node import NODE_MOUNT, host_root_view

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
PACKAGES = ("openssh-server", "iproute2", "procps", "python3", "etcd-server")
OPTIONAL = "etcd-server"  # dropped (and said so) if debootstrap cannot resolve it
DEFAULT_CACHE = Path("/var/cache/labctl-bench/rootfs-bookworm")
UP_TIMEOUT = 180.0
CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)

SSHD_CONFIG = f"""\
ListenAddress 127.0.0.1:22
HostKey {NODE_MOUNT}/host_key
PidFile /run/sshd.pid
UsePAM no
PasswordAuthentication no
LogLevel ERROR
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable")


def settled_available_kib(samples: int = 5) -> int:
    """MemAvailable's median over a second: one reading moves by megabytes on its own."""
    readings = []
    for _ in range(samples):
        readings.append(available_kib())
        time.sleep(0.2)
    return int(statistics.median(readings))


def pss_kib(pid: int) -> int:
    """Proportional set size of a process and all its descendants (0 for one that is gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except (FileNotFoundError, ProcessLookupError):
        return 0
    own = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return own + sum(pss_kib(child) for child in children)


def du_kib(*paths: Path) -> int:
    done = sh("du", "-sk", "--total", *map(str, paths))
    return int(done.stdout.splitlines()[-1].split()[0])


def mounts_under(path: Path) -> list[str]:
    """Host mount points at or below path, deepest first."""
    prefix = str(path)
    points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == prefix or line.split()[4].startswith(prefix + "/")
    ]
    return sorted(points, key=len, reverse=True)


# --- the cached root -------------------------------------------------------


def record_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".json")


def debootstrap(target: Path, packages: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    argv = [
        "debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
        SUITE, str(target), MIRROR,
    ]  # fmt: skip
    print(f"$ {' '.join(argv)}", file=sys.stderr)
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def discard(partial: Path) -> None:
    """Remove a failed or interrupted build, after unmounting what debootstrap left in it."""
    for point in mounts_under(partial):
        sh("umount", "-l", point, check=False)
    if mounts_under(partial):
        raise SystemExit(f"{partial}: still has mounts, left in place: {mounts_under(partial)}")
    shutil.rmtree(partial, ignore_errors=True)


@dataclasses.dataclass
class Build:
    seconds: float | None  # None: cached by something other than this script
    mb: int | None
    packages: list[str]
    notes: list[str]
    cached: bool = False


def build_root(cache: Path) -> Build:
    """Build the cached root once, or find it built; say what it took."""
    record = record_path(cache)
    if (cache / "usr/sbin/sshd").exists():
        if record.exists():
            return Build(**{**json.loads(record.read_text()), "cached": True})
        return Build(None, None, [], ["cached root built elsewhere"], cached=True)
    try:
        urllib.request.urlopen(f"{MIRROR}/dists/{SUITE}/Release", timeout=15).close()
    except OSError as error:
        raise SystemExit(
            f"cannot reach {MIRROR} ({error}): no cached root at {cache} and none can be built; "
            "no figures measured"
        ) from None
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.name + ".partial")
    discard(partial)
    packages: tuple[str, ...] = PACKAGES
    notes: list[str] = []
    try:
        start = time.perf_counter()
        done = debootstrap(partial, packages)
        if done.returncode != 0 and OPTIONAL in done.stdout + done.stderr:
            notes.append(f"{OPTIONAL} could not be installed, built without it")
            print(f"{notes[-1]}:\n{done.stderr[-1500:]}", file=sys.stderr)
            discard(partial)
            packages = tuple(p for p in packages if p != OPTIONAL)
            start = time.perf_counter()
            done = debootstrap(partial, packages)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"debootstrap failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
        partial.rename(cache)
    finally:
        if partial.exists():
            discard(partial)
    mb = int(sh("du", "-sm", str(cache)).stdout.split()[0])
    build = Build(seconds, mb, list(packages), notes)
    record.write_text(json.dumps(dataclasses.asdict(build), indent=2) + "\n")
    return build


# --- nodes ------------------------------------------------------------------


def host_root_boot(node: Path, name: str) -> str:
    """As labctl.sim.node boots: / read-only, overlays over the host's writable dirs."""
    q = shlex.quote
    lines = ["set -e", f"hostname {q(name)}", *host_root_view(node)]
    lines += [
        "mount -t tmpfs -o mode=755 tmpfs /run",
        "mkdir -p /run/sshd",
        f"exec /usr/sbin/sshd -D -e -f {NODE_MOUNT}/sshd_config",
    ]
    return "\n".join(lines)


def debootstrap_root_boot(node: Path, name: str, lower: Path) -> str:
    """One overlay over the whole cached root, then chroot into it and exec its sshd."""
    q = shlex.quote
    root = q(str(node / "merged"))
    upper, work = q(str(node / "upper")), q(str(node / "work"))
    return "\n".join(
        [
            "set -e",
            f"hostname {q(name)}",
            "mount --make-rprivate /",
            f"mkdir -p {upper} {work} {root}",
            f"mount -t overlay overlay -o lowerdir={q(str(lower))},upperdir={upper},"
            f"workdir={work} {root}",
            f"mount --bind {q(str(node))} {root}{NODE_MOUNT}",
            f"mount --rbind /dev {root}/dev",
            f"mount -t proc proc {root}/proc",
            f"mount -t tmpfs -o mode=755 tmpfs {root}/run",
            f"mkdir -p {root}/run/sshd",
            f"exec chroot {root} /usr/sbin/sshd -D -e -f {NODE_MOUNT}/sshd_config",
        ]
    )


@dataclasses.dataclass
class Node:
    name: str  # also its network namespace's name
    dir: Path
    process: subprocess.Popen[bytes] | None = None
    netns_fd: int | None = None


def prepare(node: Node) -> None:
    """Namespace with loopback up, node dir, host key and sshd_config; none of it is timed."""
    sh("ip", "netns", "add", node.name)
    sh("ip", "netns", "exec", node.name, "ip", "link", "set", "lo", "up")
    node.netns_fd = os.open(f"/run/netns/{node.name}", os.O_RDONLY)
    node.dir.mkdir(parents=True)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(node.dir / "host_key"))
    (node.dir / "sshd_config").write_text(SSHD_CONFIG)


def launch(node: Node, boot: str) -> None:
    argv = [
        "ip", "netns", "exec", node.name,
        "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
        "sh", "-c", boot,
    ]  # fmt: skip
    with (node.dir / "node.log").open("ab") as log:
        node.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )


def socket_in(netns_fd: int) -> socket.socket:
    """A TCP socket made in another network namespace (it stays there once made)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        if LIBC.setns(netns_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            return socket.socket()
        finally:
            if LIBC.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)


def accepts(node: Node) -> bool:
    assert node.netns_fd is not None
    with socket_in(node.netns_fd) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 22)) == 0


def wait_all_up(nodes: list[Node], timeout: float) -> None:
    pending = list(nodes)
    deadline = time.monotonic() + timeout
    while pending:
        for node in list(pending):
            if accepts(node):
                pending.remove(node)
            elif node.process is not None and node.process.poll() is not None:
                log = (node.dir / "node.log").read_text(errors="replace")[-1500:]
                raise SystemExit(f"{node.name} exited {node.process.returncode}:\n{log}")
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} nodes not up after {timeout:.0f} s")
        if pending:
            time.sleep(0.01)


def teardown(nodes: list[Node]) -> None:
    """Kill every node (its whole PID namespace) and delete every namespace, by id."""
    for node in nodes:
        if node.process is not None:
            with contextlib.suppress(ProcessLookupError):
                node.process.send_signal(signal.SIGKILL)
    for node in nodes:
        if node.process is not None:
            node.process.wait()
        if node.netns_fd is not None:
            os.close(node.netns_fd)
            node.netns_fd = None
        sh("ip", "netns", "del", node.name, check=False)


@dataclasses.dataclass
class Run:
    seconds: float
    memory_mib: float  # drop in MemAvailable: processes, page cache, kernel objects
    pss_mib: float  # the node processes' own memory, shared pages split among sharers
    disk_mb_per_node: float


def median(runs: list[Run]) -> Run:
    """Each figure's median over the runs."""
    return Run(
        *(
            statistics.median(getattr(r, field.name) for r in runs)
            for field in dataclasses.fields(Run)
        )
    )


def one_run(way: str, n: int, run: int, lower: Path, work: Path, prefix: str) -> Run:
    nodes = [Node(f"{prefix}{run}-{i}", work / f"{way}-{run}-{i}") for i in range(n)]
    try:
        for node in nodes:
            prepare(node)
        boots = [
            host_root_boot(node.dir, node.name)
            if way == "host"
            else debootstrap_root_boot(node.dir, node.name, lower)
            for node in nodes
        ]
        before = settled_available_kib()
        start = time.perf_counter()
        for node, boot in zip(nodes, boots, strict=True):
            launch(node, boot)
        wait_all_up(nodes, UP_TIMEOUT)
        seconds = time.perf_counter() - start
        time.sleep(1)  # let every sshd settle before reading memory
        memory_mib = (before - settled_available_kib()) / 1024
        pss_mib = sum(pss_kib(node.process.pid) for node in nodes if node.process) / 1024
        disk_kib = du_kib(*(node.dir / "upper" for node in nodes))
        return Run(seconds, memory_mib, pss_mib, disk_kib / 1024 / n)
    finally:
        teardown(nodes)
        for node in nodes:
            shutil.rmtree(node.dir, ignore_errors=True)


# --- checks -----------------------------------------------------------------


def leftovers(prefix: str, paths: list[Path]) -> list[str]:
    """What this script made that is still there: namespaces, mounts, processes."""
    found = [f"netns {line}" for line in sh("ip", "netns", "list").stdout.splitlines()]
    found = [f for f in found if prefix in f]
    for path in paths:
        found += [f"mount {p}" for p in mounts_under(path)]
    ps = sh("ps", "-eo", "pid,args").stdout.splitlines()
    found += [
        f"process {line.strip()}"
        for line in ps
        if prefix in line or any(str(p) in line for p in paths)
    ]
    return found


def check_root(cache: Path) -> None:
    """Fail early, with the reason, if the cached root cannot run sshd under chroot."""
    done = sh("chroot", str(cache), "/usr/sbin/sshd", "-V", check=False)
    if "OpenSSH" not in done.stderr:
        raise SystemExit(f"{cache}/usr/sbin/sshd does not run under chroot: {done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark makes namespaces and mounts")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill too
    cache = args.cache.resolve()

    build = build_root(cache)
    check_root(cache)
    prefix = f"labctl-bench-rootfs-{os.getpid()}-"
    results: dict[str, list[Run]] = {"host": [], "debootstrap": []}
    work = Path(tempfile.mkdtemp(prefix=prefix))
    netns_before = netns_dir.snapshot()
    try:
        for run in range(args.runs):
            for way in results:  # interleaved, so drift on the machine hits both alike
                result = one_run(way, args.nodes, run, cache, work, prefix)
                print(
                    f"run {run + 1}, {way} root: {args.nodes} nodes up in {result.seconds:.2f} s, "
                    f"memory {result.memory_mib:.0f} MiB (Pss {result.pss_mib:.1f} MiB), "
                    f"upper {result.disk_mb_per_node * 1024:.0f} KiB/node",
                    file=sys.stderr,
                )
                results[way].append(result)
    finally:
        netns_dir.restore(netns_before)
        shutil.rmtree(work, ignore_errors=True)
        left = leftovers(prefix, [work, cache])
        print(f"left behind: {left}" if left else "left behind: nothing", file=sys.stderr)

    if build.seconds is None:
        build_cols = ("?", "?")
    else:
        build_cols = (f"{build.seconds:.0f}{' (cached)' if build.cached else ''}", str(build.mb))
    print(f"\n{args.nodes} nodes, median of {args.runs} runs")
    if build.packages:
        print(f"debootstrap root packages: {', '.join(build.packages)}")
    for note in build.notes:
        print(f"note: {note}")
    print(
        "| root | build once (s) | cache size (MB) | N nodes up (s) | memory while up (MiB) "
        "| node processes' Pss (MiB) | disk per node after start (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for way, (built, size) in (("host", ("-", "-")), ("debootstrap", build_cols)):
        m = median(results[way])
        print(
            f"| {way} root | {built} | {size} | {m.seconds:.2f} | {m.memory_mib:.0f} "
            f"| {m.pss_mib:.1f} | {m.disk_mb_per_node:.2f} |"
        )


if __name__ == "__main__":
    main()
