"""The stand-in installer VM nodes boot: a Debian kernel, busybox and the real Ignition.

No Flatcar or Fedora CoreOS image can be had on this machine, so the simulated
lab's VM nodes network-boot this instead. It reads the same kernel arguments a
real install gets from labctl's iPXE script (``labctl.config``, ``.disk``,
``.report``), DHCPs, lays an ext2 file system on the OS disk where an image
would go, runs the real Ignition (Debian's 2.14: ``--stage=fetch``, then
``--stage=files`` onto the disk) against labctl's config for this server,
POSTs the result (Ignition's own CRITICAL lines when it fails) with this
install's token, read from the live system's own Ignition (the installer
config at ``ignition.config.url``), and powers off.

It is built from the machine's own packages (linux-image, busybox-static,
ignition, passwd) into a cache keyed by every input's hash, so it is built
once per machine and again only when a package changes; the result is laid out
as a Flatcar release mirror with ``.DIGESTS`` files (and ``version.txt``, and
token disk image and signature files, which it never writes) and, in the same directory,
as a Fedora CoreOS mirror (``stable.json``, ``testing.json``, ``next.json``
stream metadata with SHA-256s, and a token rootfs), so ``labctl boot fetch``
fetches and verifies it exactly as it would the real ones. Booted with Fedora
CoreOS's arguments it fetches the rootfs from ``coreos.live.rootfs_url`` as the
live initramfs would, and reports its size.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError
from labctl.sim.osrelease import SIM_VERSION

CACHE = Path(os.environ.get("LABCTL_INSTALLER_CACHE", "/var/cache/labctl/installer"))
IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")
BUSYBOX = Path("/bin/busybox")
# Dynamically linked programs: what Ignition runs for the passwd section, and
# ipmitool, which asks the board's BMC over /dev/ipmi0 (in-band, as an OS would).
PROGRAMS = (Path("/usr/sbin/usermod"), Path("/usr/bin/ipmitool"))
MODULES = (
    "virtio_pci", "virtio_net", "virtio_scsi", "sd_mod", "virtio_blk",
    "crc32c_generic", "crct10dif_generic", "ext4",
    "ipmi_msghandler", "ipmi_si", "ipmi_devintf",
)  # fmt: skip
KERNEL_NAME = "flatcar_production_pxe.vmlinuz"
INITRD_NAME = "flatcar_production_pxe_image.cpio.gz"
MARK = "LABCTL-INSTALLER"
# Fedora CoreOS's names for the same kernel and initrd, and a token rootfs (the
# stand-in needs none; fetching it proves the boot service serves it).
FCOS_RELEASE = "0.labctl.stand-in"
FCOS_NAMES = {
    "kernel": f"fedora-coreos-{FCOS_RELEASE}-live-kernel-x86_64",
    "initramfs": f"fedora-coreos-{FCOS_RELEASE}-live-initramfs.x86_64.img",
    "rootfs": f"fedora-coreos-{FCOS_RELEASE}-live-rootfs.x86_64.img",
}
FCOS_ROOTFS = b"labctl stand-in rootfs: the stand-in installer runs from its initrd alone\n"
FCOS_STREAMS = ("stable", "testing", "next")
# Flatcar's disk image and its signature: tokens (the stand-in writes no image), there
# so that `labctl boot fetch` caches and the boot service serves them as real ones.
IMAGE_NAME = "flatcar_production_image.bin.bz2"
IMAGE = b"labctl stand-in image: the stand-in installer writes no image\n"
IMAGE_SIGNATURE = b"labctl stand-in signature: nothing checks it\n"
# The release version.txt names (what the sim's nodes say in os-release without os.version).
FLATCAR_RELEASE = SIM_VERSION
# Bumped when the mirror's layout changes, so a cached mirror of the old one is rebuilt.
LAYOUT = "2"

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run; mkdir -p /tmp /sysroot
say() { echo "MARK: $*"; }
arg() { for w in $(cat /proc/cmdline); do case $w in labctl.$1=*) echo "${w#*=}";; esac; done; }
say "up at $(cut -d' ' -f1 /proc/uptime)s"
MODULES_LOAD
# The board's BMC on the system interface: the kernel asks it for its device id over
# KCS at probe time and logs the answer; a VM without one says so and goes on.
IPMI_DONE='Found new BMC|Unable to find any System Interface|detection failed'
i=0; while ! dmesg | grep -Eq "$IPMI_DONE" && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
bmc=$(dmesg | grep -o 'Found new BMC.*' | tail -n1)
if [ -c /dev/ipmi0 ] && [ -n "$bmc" ]; then
  say "ipmi /dev/ipmi0: $bmc"
  # (ipmitool warns first that it has no IANA enterprise-number list here.)
  inband=$(ipmitool -I open chassis power status 2>&1 | grep -v 'IANA PEN' | head -n1)
  say "ipmi in-band: $inband"
else
  say "ipmi: no BMC on the system interface"
fi
ip link set lo up
NIC=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
ip link set "$NIC" up
udhcpc -i "$NIC" -s /etc/udhcpc.script -q -n -t 10 -T 2 || say "no DHCP lease"
REPORT=$(arg report); CONFIG=$(arg config); DISK=$(arg disk)
# The live system's own Ignition (the installer config) carries this install's report
# token, as the token file's contents: without it the boot service refuses the report.
INSTALL=$(for w in $(cat /proc/cmdline); do case $w in ignition.config.url=*) echo "${w#*=}";;
  esac; done)
TOKEN=$(wget -q -O- "$INSTALL" | grep -o 'LABCTL_INSTALL_TOKEN=[0-9a-f]*' | head -n1)
TOKEN=${TOKEN#*=}
[ -n "$TOKEN" ] || say "no install token in $INSTALL"
json() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk 'BEGIN{ORS="\\n"}{print}'; }
report() {
  body="{\"result\": \"$1\", \"message\": \"$(printf '%s' "$2" | json)\"}"
  wget -q -O- --header 'Content-Type: application/json' \
    --header "X-Labctl-Install-Token: $TOKEN" --post-data "$body" "$REPORT"
}
finish() { say "ignition=$1, powering off"; report "$1" "$2"; sync; poweroff -f; }
# Fedora CoreOS's live initramfs fetches its root file system from here.
ROOTFS=$(for w in $(cat /proc/cmdline); do case $w in coreos.live.rootfs_url=*) echo "${w#*=}";;
  esac; done)
if [ -n "$ROOTFS" ]; then
  wget -q -O /run/rootfs.img "$ROOTFS" || finish failed "cannot fetch the live rootfs $ROOTFS"
  say "rootfs $(wc -c < /run/rootfs.img) bytes from $ROOTFS"
fi
i=0; while [ ! -b "$DISK" ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
[ -b "$DISK" ] || finish failed "the OS disk $DISK did not appear"
mke2fs -q "$DISK" && mount -t ext2 "$DISK" /sysroot \
  || finish failed "cannot lay a file system on $DISK"
mkdir -p /sysroot/etc/selinux /sysroot/home/core /sysroot/root
printf 'root:x:0:0:root:/root:/bin/sh\ncore:x:500:500:core:/home/core:/bin/sh\n' \
  > /sysroot/etc/passwd
printf 'root:x:0:\ncore:x:500:\n' > /sysroot/etc/group
printf 'root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n' > /sysroot/etc/shadow
printf 'root:*::\ncore:!::\n' > /sysroot/etc/gshadow
chmod 600 /sysroot/etc/shadow /sysroot/etc/gshadow; chown 500:500 /sysroot/home/core
printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' > /sysroot/etc/selinux/config
# Ignition reads its config URL from the kernel command line: this install's own config.
sed "s#ignition.config.url=[^ ]*#ignition.config.url=$CONFIG#" /proc/cmdline > /run/cmdline
mount --bind /run/cmdline /proc/cmdline
mkdir -p /run/ignition
IGN="ignition --platform=metal --log-to-stdout"
if $IGN --stage=fetch > /run/fetch.log 2>&1 \
   && $IGN --stage=files --root=/sysroot > /run/files.log 2>&1; then
  tail -n 3 /run/files.log
  umount /sysroot
  finish ok "ignition fetch and files stages finished; wrote $DISK"
fi
cat /run/fetch.log /run/files.log 2>/dev/null | tail -n 15
why=$(cat /run/fetch.log /run/files.log 2>/dev/null | grep CRITICAL | tail -n 3)
umount /sysroot
finish failed "${why:-ignition failed without a CRITICAL line}"
""".replace("MARK", MARK)

UDHCPC_SCRIPT = r"""#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"
ip addr add "$ip/$mask" dev "$interface"
[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
echo "LABCTL-INSTALLER: dhcp $ip/$mask"
"""


@dataclass(frozen=True)
class Inputs:
    kernel: Path
    modules: Path
    version: str


def kernel_inputs() -> Inputs:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise LabctlError(
            "no Debian kernel in /boot; it is in the Debian package linux-image-amd64"
        )
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    return Inputs(kernel, Path("/lib/modules") / version, version)


def module_order(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Module paths in load order: each after everything it depends on (modprobe's order)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[name] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps.get(path, [])):
            visit(dep)
        order.append(path)

    for name in wanted:
        found = by_name.get(name)
        if found is not None:  # built into the kernel when absent
            visit(found)
    return order


def _libraries(program: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=False)
    found = []
    for line in out.stdout.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                found.append(Path(part))
    return found


def _files(inputs: Inputs) -> dict[str, Path]:
    """Every file in the initrd by its path there, from the machine."""
    needs = ((BUSYBOX, "busybox-static"), (IGNITION, "ignition"), (PROGRAMS[1], "ipmitool"))
    for needed, package in needs:
        if not needed.exists():
            raise LabctlError(f"{needed} is missing; it is in the Debian package {package}")
    files: dict[str, Path] = {"bin/busybox": BUSYBOX, "usr/bin/ignition": IGNITION}
    for program in PROGRAMS:
        files[str(program).lstrip("/")] = program
    for program in (IGNITION, *PROGRAMS):
        for lib in _libraries(program):
            files[str(lib).lstrip("/")] = lib.resolve()
    dep = (inputs.modules / "modules.dep").read_text()
    for path in module_order(dep, MODULES):
        files[f"lib/modules/{inputs.version}/{path}"] = inputs.modules / path
    return files


def _init_text(inputs: Inputs) -> str:
    dep = (inputs.modules / "modules.dep").read_text()
    loads = "\n".join(
        f"insmod /lib/modules/{inputs.version}/{path} 2>/dev/null"
        for path in module_order(dep, MODULES)
    )
    return INIT.replace("MODULES_LOAD", loads)


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, content); directories have empty content."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08X}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        )
        out.write(header.encode() + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return out.getvalue()


def build_initrd(inputs: Inputs) -> bytes:
    files = _files(inputs)
    entries: list[tuple[str, int, bytes]] = []
    dirs = {"proc", "sys", "dev", "run", "tmp", "sysroot", "etc", "usr/sbin", "sbin", "lib64"}
    for path in files:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    for d in sorted(dirs):
        entries.append((d, 0o040755, b""))
    entries.append(("init", 0o100755, _init_text(inputs).encode()))
    entries.append(("etc/udhcpc.script", 0o100755, UDHCPC_SCRIPT.encode()))
    # Ignition relabels for SELinux; with SELinux off a no-op setfiles does.
    entries.append(("usr/sbin/setfiles", 0o100755, b"#!/bin/sh\nexit 0\n"))
    for path, source in sorted(files.items()):
        entries.append((path, 0o100755, source.read_bytes()))
    return gzip.compress(_cpio(entries), compresslevel=6, mtime=0)


def cache_key(inputs: Inputs) -> str:
    digest = hashlib.sha256(_init_text(inputs).encode() + UDHCPC_SCRIPT.encode() + LAYOUT.encode())
    for path, source in sorted({**_files(inputs), "kernel": inputs.kernel}.items()):
        stat = source.stat()
        digest.update(f"{path} {source} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def digests_text(name: str, data: bytes) -> str:
    return f"# SHA512 HASH\n{hashlib.sha512(data).hexdigest()}  {name}\n"


def stream_metadata(stream: str, files: dict[str, bytes]) -> dict[str, object]:
    """Fedora CoreOS stream metadata for the stand-in, locations relative to it."""
    pxe = {
        kind: {
            "location": FCOS_NAMES[kind],
            "signature": f"{FCOS_NAMES[kind]}.sig",  # none is made: fetch without a keyring
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        for kind, data in files.items()
    }
    metal = {"release": FCOS_RELEASE, "formats": {"pxe": pxe}}
    return {"stream": stream, "architectures": {"x86_64": {"artifacts": {"metal": metal}}}}


def build(cache: Path = CACHE) -> Path:
    """The stand-in as a release mirror directory (built unless cached); its path."""
    inputs = kernel_inputs()
    mirror = cache / cache_key(inputs)
    if (mirror / f"{FCOS_STREAMS[-1]}.json").exists():
        return mirror
    work = cache / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    kernel = inputs.kernel.read_bytes()
    initrd = build_initrd(inputs)
    for name, data in ((KERNEL_NAME, kernel), (INITRD_NAME, initrd), (IMAGE_NAME, IMAGE)):
        (work / name).write_bytes(data)
        (work / f"{name}.DIGESTS").write_text(digests_text(name, data))
    (work / f"{IMAGE_NAME}.sig").write_bytes(IMAGE_SIGNATURE)
    (work / "version.txt").write_text(f"FLATCAR_VERSION={FLATCAR_RELEASE}\n")
    fcos = {"kernel": kernel, "initramfs": initrd, "rootfs": FCOS_ROOTFS}
    for kind, data in fcos.items():
        (work / FCOS_NAMES[kind]).write_bytes(data)
    for stream in FCOS_STREAMS:  # written last: build() takes the last one as "complete"
        metadata = stream_metadata(stream, fcos)
        (work / f"{stream}.json").write_text(json.dumps(metadata, indent=2) + "\n")
    shutil.rmtree(mirror, ignore_errors=True)
    work.rename(mirror)
    return mirror


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else CACHE))
