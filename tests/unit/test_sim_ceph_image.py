"""The Ceph image made from Debian's Ceph packages: which packages, which files, the archive.

The package closure is read from this machine's dpkg records and the file list checked
against ldd of the programs the units start; the archive is read back as podman reads
it (index, manifest, config, layer digest). ``tests/e2e/test_ceph_lab.py`` runs the
image under each node's podman.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from labctl.errors import LabctlError
from labctl.sim import ceph_image
from labctl.sim import images as sim_images

STATUS = "\n".join(
    [
        "ceph-mon\t16.2.15\tii \tceph-base (= 16.2.15), libc6 (>= 2.34), awk\t\t",
        "ceph-base\t16.2.15\tii \tlibc6, python3:any | python3-minimal\t\t",
        "libc6\t2.36\tii \t\tlibgcc-s1\t",
        "libgcc-s1\t12.2\tii \t\t\t",
        "python3\t3.11.2\tii \tpython3.11\t\t",
        "python3.11\t3.11.2\tii \t\t\t",
        "mawk\t1.3.4\tii \t\t\tawk",
        "gawk\t5.2\trc \t\t\tawk",  # removed, its configuration left: not installed
        "ceph-doc\t16.2.15\tii \tceph-mon\t\t",  # not depended on
    ]
)


def test_the_closure_follows_depends_pre_depends_alternatives_and_provides() -> None:
    packages = ceph_image.parse_status(STATUS)
    assert "gawk" not in packages
    names = [p.name for p in ceph_image.closure(packages, ["ceph-mon"])]
    # python3:any -> python3 (the first alternative installed), awk -> mawk (provides),
    # libgcc-s1 through libc6's Pre-Depends; ceph-doc depends on ceph-mon, not the reverse.
    assert names == ["ceph-base", "ceph-mon", "libc6", "libgcc-s1", "mawk", "python3", "python3.11"]


def test_a_seed_that_is_not_installed_is_a_sentence() -> None:
    packages = ceph_image.parse_status(STATUS)
    with pytest.raises(LabctlError, match="needs Debian's ceph-osd, which is not installed"):
        ceph_image.closure(packages, ["ceph-osd"])


def test_documentation_is_left_out_and_everything_else_kept() -> None:
    assert not ceph_image.kept("/usr/share/doc/ceph-mon/copyright")
    assert not ceph_image.kept("/usr/share/man/man8/ceph-mon.8.gz")
    assert not ceph_image.kept("/usr/share/locale/de/LC_MESSAGES/libc.mo")
    assert ceph_image.kept("/usr/bin/ceph-mon")
    assert ceph_image.kept("/usr/share/ceph/mgr/balancer/module.py")
    assert ceph_image.kept("/usr/lib/x86_64-linux-gnu/ceph/erasure-code/libec_jerasure.so")


@pytest.fixture(scope="module")
def machine_entries() -> tuple[list[str], dict[str, tuple[str, str]]]:
    """This machine's Ceph packages' file list and the image's entries made of it."""
    packages = ceph_image.closure(ceph_image.installed(), ceph_image.SEEDS)
    files = ceph_image.package_files(packages)
    return files, ceph_image.entries(files)


def test_the_image_holds_every_program_the_units_start_and_what_they_load(
    machine_entries: tuple[list[str], dict[str, tuple[str, str]]],
) -> None:
    files, entries = machine_entries
    for program in ceph_image.PROGRAMS:
        assert entries[program.lstrip("/")][0] == "file", program
    # The ceph CLI's interpreter and the Python modules it and the mgr import.
    assert entries["usr/bin/python3"][0] == "link"
    assert entries["usr/lib/python3/dist-packages/ceph_argparse.py"][0] == "file"
    assert any(p.startswith("usr/lib/python3/dist-packages/rados") for p in entries)
    assert entries["usr/share/ceph/mgr/balancer/module.py"][0] == "file"
    # Ceph's dlopened plugins (ldd of the daemons does not name them).
    assert any(p.startswith("usr/lib/x86_64-linux-gnu/ceph/erasure-code/") for p in entries)
    # Every library ldd says the programs, plugins and Python bindings load is there.
    elves = ceph_image.elf_files(files)
    assert "/usr/bin/ceph-osd" in elves and len(elves) > len(ceph_image.PROGRAMS)
    assert ceph_image.missing_libraries(entries, elves) == []
    assert not any(p.startswith("usr/share/doc/") for p in entries)
    assert entries["etc/passwd"] == ("data", ceph_image.PASSWD)
    # Debian 12's merged /usr, as the image's own links.
    assert entries["lib64"] == ("link", "usr/lib64")


def test_a_library_missing_from_the_list_is_found() -> None:
    entries = ceph_image.entries(["/usr/bin/monmaptool"])
    missing = ceph_image.missing_libraries(entries, ["/usr/bin/monmaptool"])
    assert any("libceph-common" in p for p in missing)


def test_the_archive_is_an_oci_image_podman_can_load(tmp_path: Path) -> None:
    found = ceph_image.entries(["/usr/bin/monmaptool"])
    name = "quay.io/ceph/ceph:v16.2.15"
    dest = tmp_path / "ceph.tar"
    ceph_image.write_archive(name, found, dest)
    with tarfile.open(dest) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert member is not None
            data = member.read()
            assert hashlib.sha256(data).hexdigest() == digest.split(":", 1)[1]
            return data

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        entry = index["manifests"][0]
        assert entry["annotations"]["io.containerd.image.name"] == name
        manifest = json.loads(blob(entry["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layer = blob(manifest["layers"][0]["digest"])
    assert manifest["layers"][0]["size"] == len(layer)
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    layer_path = tmp_path / "layer.tar"
    layer_path.write_bytes(layer)
    with tarfile.open(layer_path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr/bin/monmaptool"].isfile() and members["usr/bin/monmaptool"].mode & 0o111
    assert members["lib"].issym() and members["lib"].linkname == "usr/lib"
    assert members["tmp"].mode == 0o1777 and members["var/lib/ceph"].isdir()
    # The same inputs give the same bytes (the same image id on every node).
    again = tmp_path / "again.tar"
    ceph_image.write_archive(name, found, again)
    assert again.read_bytes() == dest.read_bytes()


def test_the_stamp_changes_with_a_package_version() -> None:
    packages = ceph_image.closure(ceph_image.parse_status(STATUS), ["ceph-mon"])
    name = "quay.io/ceph/ceph:v16.2.15"
    newer = [
        ceph_image.Package(p.name, "16.2.16", p.depends, p.provides) if p.name == "ceph-mon" else p
        for p in packages
    ]
    assert ceph_image.stamp(name, packages) == ceph_image.stamp(name, list(packages))
    assert ceph_image.stamp(name, packages) != ceph_image.stamp(name, newer)
    assert ceph_image.stamp(name, packages) != ceph_image.stamp("ceph:other", packages)


def test_a_ceph_node_reads_the_shared_store_and_loads_nothing_itself(tmp_path: Path) -> None:
    from labctl.sim import engine

    engine.prepare(tmp_path / "node", "/node", [], ("/cache/ceph/store",))
    conf = (tmp_path / "node" / "podman" / "storage.conf").read_text()
    assert conf.endswith('[storage.options]\nadditionalimagestores = ["/cache/ceph/store"]\n')
    assert 'graphroot = "/node/podman/storage"' in conf
    assert engine.boot_images(tmp_path / "node") == ""
    engine.prepare(tmp_path / "other", "/node", [])
    assert (
        "additionalimagestores" not in (tmp_path / "other" / "podman" / "storage.conf").read_text()
    )


def test_the_image_holds_the_release_its_tag_names_or_is_refused() -> None:
    """This machine's release comes from its packages, another Debian suite's from a root
    of that suite, any other is a sentence naming what can be made (never this machine's
    Ceph under another release's tag)."""
    assert ceph_image.wanted("quay.io/ceph/ceph:v18.2.7", "16.2.15") == "18.2.7"
    assert ceph_image.wanted("registry.lab.example/ceph/ceph:latest", "16.2.15") == "16.2.15"
    assert ceph_image.suite("16.2.15", "16.2.15") is None
    assert ceph_image.suite(None, "16.2.15") is None
    assert ceph_image.suite("18.2.7", "16.2.15") == "trixie"
    with pytest.raises(LabctlError) as refused:
        ceph_image.suite("17.2.7", "16.2.15")
    assert str(refused.value) == (
        "the simulated lab makes the Ceph image from Debian's Ceph packages, and no Debian "
        "suite it knows ships Ceph 17.2.7: this machine can make 16.2.15 (this machine's, "
        "Debian bookworm) or 18.2.7 (Debian trixie); set cluster.ceph.version (and the tag "
        "of cluster.ceph.image) to one of those"
    )
    assert ceph_image.upstream("18.2.7+ds-1+deb13u1") == "18.2.7"
    assert ceph_image.upstream("2:16.2.15+ds-0+deb12u1") == "16.2.15"
    assert ceph_image.upstream("16.2.15-1") == "16.2.15"


def test_files_in_another_root_are_read_there_and_its_links_followed_there(
    tmp_path: Path,
) -> None:
    """A root's merged /usr, an absolute link and a dangling one: the paths are the
    image's, the files read under the root, an absolute target followed in the root
    (not on this machine), a dangling link kept as the link alone."""
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib").mkdir()
    (root / "etc/alt").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "usr/bin/python3.13").write_text("")
    (root / "etc/alt/python3").symlink_to("/usr/bin/python3.13")
    (root / "usr/bin/python3").symlink_to("/etc/alt/python3")
    (root / "etc/modules.conf").symlink_to("modules")
    found = sim_images.host_closure(["/bin/python3", "/etc/modules.conf"], str(root))
    assert found == {
        "/bin": ("link", "usr/bin"),
        "/usr/bin/python3": ("link", "/etc/alt/python3"),
        "/etc/alt/python3": ("link", "/usr/bin/python3.13"),
        "/usr/bin/python3.13": ("file", f"{root}/usr/bin/python3.13"),
        "/etc/modules.conf": ("link", "modules"),
    }
    assert ceph_image.under(str(root), "/var/lib/dpkg") == f"{root}/var/lib/dpkg"
    assert ceph_image.under(ceph_image.HOST, "/var/lib/dpkg") == "/var/lib/dpkg"
    entries = ceph_image.entries(["/usr/bin/python3.13"], str(root))
    assert entries["usr/bin/python3.13"] == ("file", f"{root}/usr/bin/python3.13")
    assert entries["etc/passwd"] == ("data", ceph_image.PASSWD)
    assert "ceph:x:167:167:" in ceph_image.PASSWD


def test_the_debian_root_is_made_under_the_image_cache_from_a_mirror_one_may_name(
    tmp_path: Path,
) -> None:
    from labctl.sim import debian_root

    root = debian_root.root_path(tmp_path, "trixie", "ceph")
    assert root == tmp_path / "roots" / "debian-trixie-ceph"
    assert debian_root.mirror({}) == "http://deb.debian.org/debian"
    assert debian_root.mirror({debian_root.MIRROR_VARIABLE: "http://m.lab/debian"}) == (
        "http://m.lab/debian"
    )
    said = debian_root.announcement(root, "trixie", ["ceph-mon", "ceph-osd"], "http://m/d")
    assert said.startswith(
        f"making a Debian trixie root with ceph-mon, ceph-osd (debootstrap and apt from "
        f"http://m/d) at {root}: about 70 s"
    )
    root.parent.mkdir(parents=True)
    debian_root.timing_path(root).write_text("59\n")
    assert debian_root.announcement(root, "trixie", ["ceph-mon"], "m").endswith(
        ": it took 59 s last time"
    )
