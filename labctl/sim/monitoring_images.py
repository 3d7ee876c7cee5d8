"""The monitoring programs' images the inventory names, made here from Debian's binaries.

A real lab's default is ``cluster.monitoring.runtime: container``: each monitoring
program runs from upstream's image (``quay.io/prometheus/prometheus:v2.42.0`` and so
on, ``render/monitoring/units.py``) under docker or podman. No registry is reached from
here, so the simulated lab makes each image the inventory names from the program
Debian 12 packages (``/usr/bin/prometheus``, ``/usr/bin/prometheus-node-exporter``, ...,
``/usr/bin/prometheus-bird-exporter``), at the path upstream's image has it
(``/bin/prometheus``, ``/bin/node_exporter``, ..., ``/app/bird_exporter``),
with the C library it loads (ldd), as ``labctl/sim/engine.py`` makes etcd's, and its
package's files under /usr/share/prometheus (Debian builds the programs to read their
web assets and Alertmanager's notification templates there rather than from inside the
binary: without ``default.tmpl`` Alertmanager refuses its configuration). The IPMI
exporter runs FreeIPMI's tools, as upstream's image (Debian with freeipmi-tools) has
them: those it calls for the collectors the layer asks (``bmc-info``, ``ipmi-chassis``,
``ipmi-sel``, ``ipmi-sensors`` and its ``ipmimonitoring`` wrapper, a shell script, so
``/bin/sh`` too) and the libraries ldd says they load.

The image's tag must be the version Debian's program is (``tag_refusal``): an image
whose tag claims another version is refused before the lab is made, rather than run
as what it is not. Each archive is cached by the hash of its inputs (the engine's
``build``), and all six are loaded once into one read-only podman image store beside
them that every node's podman lists (node-exporter and the BGP exporter run on every
node), as Ceph's is, rather than unpacked into each node at its first boot.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory
from labctl.render.monitoring import units
from labctl.sim import engine as sim_engine
from labctl.sim import images as sim_images

# FreeIPMI's tools the IPMI exporter runs for its bmc, ipmi, chassis and sel collectors
# (and dcmi, raw for the others), where Debian's freeipmi-tools has them.
FREEIPMI = tuple(
    f"/usr/sbin/{tool}"
    for tool in (
        "bmc-info", "ipmi-chassis", "ipmi-sel", "ipmi-sensors", "ipmimonitoring", "ipmi-dcmi",
        "ipmi-raw",
    )
)  # fmt: skip
SHELL = "/bin/sh"  # ipmimonitoring is a script
SHARED = "/usr/share/prometheus/"  # where Debian's builds read their assets and templates
PODMAN = sim_engine.PODMAN


def program_version(binary: str) -> str:
    """What Debian's program says it is (``prometheus, version 2.42.0+ds (...)``,
    ``Version: 1.4.1``)."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LabctlError(f"{binary} cannot run ({exc}): scripts/setup.sh installs it") from exc
    # bird_exporter says "Version: 1.4.1" on a line of its own.
    words = (done.stdout + done.stderr).replace(",", " ").replace("Version:", "version").split()
    if "version" not in words or words.index("version") + 1 >= len(words):
        raise LabctlError(f"{binary} --version names no version: {done.stdout!r}")
    return words[words.index("version") + 1].split("+", 1)[0]


def tag_refusal(image: str, have: str, binary: str) -> str | None:
    """Why ``image`` cannot be made from Debian's ``binary`` (version ``have``), or None:
    its tag claims another version. Pure."""
    want = sim_engine.image_tag_version(image)
    if want is None or want == have:
        return None
    return (
        f"the simulated lab makes the image {image} from this machine's {binary}, which is "
        f"{have} (Debian's package), not {want}: name an image tagged v{have} in "
        "cluster.monitoring.images, or leave it out for the default"
    )


def check(inv: Inventory) -> None:
    """Refuse, before the lab is made, an image whose tag is not its program's version."""
    for program in units.PROGRAMS.values():
        name = units.image(inv, program)
        why = tag_refusal(name, program_version(program.host_binary), program.host_binary)
        if why:
            raise LabctlError(f"cluster.monitoring.images.{program.image_field}: {why}")


def shared_files(binary: str) -> list[str]:
    """The files (and links) under /usr/share/prometheus of the package holding ``binary``."""
    said = subprocess.run(["dpkg-query", "-S", binary], capture_output=True, text=True)
    if said.returncode != 0:
        raise LabctlError(f"no Debian package holds {binary}: {said.stderr.strip()}")
    package = said.stdout.split(":", 1)[0]
    listed = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True)
    return sorted(
        p
        for p in listed.stdout.splitlines()
        if p.startswith(SHARED) and (os.path.islink(p) or os.path.isfile(p))
    )


def program_image(inv: Inventory, program: units.Program) -> sim_images.Image:
    """``program``'s image as the inventory names it, laid out as upstream's: the program
    at its path there (``/bin`` is a link to ``usr/bin``, as on Debian), what it loads."""
    name = units.image(inv, program)
    binaries = [program.host_binary]
    shared = sim_images.host_closure(shared_files(program.host_binary))
    # A link to another package's folder (Prometheus's web fonts) leads to an empty one.
    extra: list[tuple[str, str, str]] = [
        (p, "dir", "") if kind == "file" and os.path.isdir(value) else (p, kind, value)
        for p, (kind, value) in shared.items()
    ]
    if program.unit == units.IPMI_EXPORTER:
        tools = [SHELL, *FREEIPMI]  # no freeipmi.conf: FreeIPMI's defaults, as the tools ask
        extra += [(p, kind, value) for p, (kind, value) in sim_images.host_closure(tools).items()]
        binaries += [sim_images.host_closure([t])[t][1] for t in FREEIPMI if _elf(t)]
        binaries.append(str(Path(SHELL).resolve()))
    libraries = sorted(sim_images.shared_libraries(binaries))
    extra += [(p, kind, value) for p, (kind, value) in sim_images.host_closure(libraries).items()]
    extra += [(f"/{link}", "link", target) for link, target in sim_images.MERGED_USR]
    # /bin/prometheus through the /bin link; bird_exporter is at /app/bird_exporter.
    bin_link = program.image_binary.startswith("/bin/")
    inside = f"/usr{program.image_binary}" if bin_link else program.image_binary
    # In name order (ldd's answer is a set): the same inputs, the same stamp, so a second
    # lab finds the archives and their store already made.
    unique = {path: (path, kind, value) for path, kind, value in extra}
    return sim_images.Image(
        name, Path(program.host_binary), inside, (), tuple(unique[p] for p in sorted(unique))
    )


def _elf(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def build(inv: Inventory) -> list[sim_engine.Archive]:
    """The archive of every monitoring image the inventory names (cached by inputs)."""
    return [sim_engine.build(program_image(inv, p)) for p in units.PROGRAMS.values()]


def store(archives: list[sim_engine.Archive]) -> Path:
    """One read-only podman image store holding every archive, beside them: loaded once
    with this machine's podman, then listed by each node's storage.conf."""
    key = hashlib.sha256("".join(f"{a.image}\0{a.path}\n" for a in archives).encode())
    folder = sim_engine.image_dir() / f"monitoring-store-{key.hexdigest()[:24]}"
    done = folder / ".loaded"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    with tempfile.TemporaryDirectory() as run:
        base = [PODMAN, "--root", str(folder), "--runroot", run, "--storage-driver", "overlay",
                "--events-backend", "none"]  # fmt: skip
        for archive in archives:
            said = subprocess.run(
                [*base, "load", "-q", "-i", str(archive.path)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if said.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise LabctlError(f"podman load -i {archive.path} failed: {said.stderr.strip()}")
            listed = subprocess.run([*base, "image", "exists", archive.image], check=False)
            if listed.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise LabctlError(f"podman load -i {archive.path} did not give {archive.image}")
    done.write_text("".join(f"{a.image}\n" for a in archives))
    return folder
