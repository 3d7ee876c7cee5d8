"""The boot service against real dnsmasq in namespaces: DHCP, TFTP, HTTP per MAC, reports.

Needs root (namespaces, dnsmasq). A booting NIC is played by busybox in a
second namespace: udhcpc with the DHCP options BIOS PXE, UEFI PXE and iPXE
send, tftp and wget. The install assets come from a local mirror the test
makes in Flatcar's layout, fetched into the cache by ``labctl boot fetch``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.boot import assets, service
from labctl.boot.state import BootDirs, read_report
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import boot as render
from labctl.render.ignition import data_url_text
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl
from tests.peers.bootnet import BUSYBOX, BootNet, boot_net
from tests.peers.gpg import gpg, no_agents_left, signer  # noqa: F401 (autouse fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and dnsmasq"),
]

FOHN_MAC = "9c:8e:99:1a:2b:01"
STRANGER_MAC = "52:54:00:12:34:99"
BOOT = "31.31.164.218"


IMAGE = b"IMAGE" * 3000
FLATCAR_VERSION = "3975.2.0"
# Flatcar's names, as its release directories publish them.
FLATCAR = {
    "kernel": "flatcar_production_pxe.vmlinuz",
    "initrd": "flatcar_production_pxe_image.cpio.gz",
    "image": "flatcar_production_image.bin.bz2",
}
IMAGE_NAME = FLATCAR["image"]
TOKEN_HEADER = "X-Labctl-Install-Token"


def make_mirror(root: Path, kernel: bytes, initrd: bytes, version: str = FLATCAR_VERSION) -> Path:
    """A release in Flatcar's layout: each file with its .DIGESTS (MD5 first, then SHA512),
    the disk image's own signature (a stand-in: nothing here has Flatcar's key) and
    ``version.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    files = (kernel, initrd, IMAGE)
    for name, data in zip(FLATCAR.values(), files, strict=True):
        (root / name).write_bytes(data)
        (root / f"{name}.DIGESTS").write_text(
            f"# MD5 HASH\n{hashlib.md5(data).hexdigest()}  {name}\n"
            f"# SHA512 HASH\n{hashlib.sha512(data).hexdigest()}  {name}\n"
        )
    (root / f"{IMAGE_NAME}.sig").write_bytes(b"SIGNATURE")
    (root / "version.txt").write_text(
        f"FLATCAR_VERSION={version}\nFLATCAR_VERSION_ID={version}\nFLATCAR_BUILD=3975\n"
    )
    return root


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """The reference inventory with its assets from a local mirror into a local cache."""
    mirror = make_mirror(tmp_path / "mirror", b"KERNEL" * 1000, b"INITRD" * 5000)
    text = REFERENCE.read_text().replace(
        "    dhcp: full\n",
        f"    dhcp: full\n    mirror: file://{mirror}\n    assets: cache\n    http_port: 18080\n",
    )
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(text)
    return inventory


def fetch(inventory: Path) -> subprocess.CompletedProcess[str]:
    return run_labctl("boot", "fetch", "-i", str(inventory), "-o", "json", cwd=inventory.parent)


def test_fetch_caches_verified_assets_and_refuses_a_wrong_checksum(lab: Path) -> None:
    first = fetch(lab)
    assert first.returncode == 0, first.stderr
    fetched = json.loads(first.stdout)
    assert {(f["role"], f["changed"]) for f in fetched} == {
        ("kernel", True),
        ("initrd", True),
        ("image", True),
        ("signature", True),
    }
    again = json.loads(fetch(lab).stdout)
    assert {f["changed"] for f in again} == {False}

    inventory = require_inventory(lab)
    release = assets.release_of(inventory, lab.parent, inventory.server("fohn"))
    assert release.path("kernel").read_bytes() == b"KERNEL" * 1000

    # The mirror now serves a file that is not what its digests say: refused, not cached.
    name = FLATCAR["initrd"]
    (lab.parent / "mirror" / name).write_bytes(b"TAMPERED")
    release.path("initrd").unlink()
    refused = fetch(lab)
    assert refused.returncode != 0
    assert "does not match the published" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not release.path("initrd").exists()


def test_a_changed_cache_file_is_never_served(lab: Path, tmp_path: Path) -> None:
    assert fetch(lab).returncode == 0
    inventory = require_inventory(lab)
    release = assets.release_of(inventory, lab.parent, inventory.server("fohn"))
    release.path("kernel").write_bytes(b"KERNEL" * 999 + b"evil!!")
    with pytest.raises(assets.AssetError, match="refusing to serve it"):
        service.start(inventory, lab, tmp_path / "state")
    assert service.running(tmp_path / "state") is None


@pytest.fixture
def served(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Inventory, BootNet, Path]]:
    assert fetch(lab).returncode == 0
    inventory = require_inventory(lab)
    # Relative, as `--state-dir .labctl` is: dnsmasq changes to / and must still find it.
    monkeypatch.chdir(tmp_path)
    state = Path("state")
    with boot_net(tmp_path, BOOT, 28) as net:
        service.start(inventory, lab, state, netns=net.server)
        try:
            yield inventory, net, state
        finally:
            service.stop(state)
            assert service.running(state) is None


def test_known_mac_gets_its_address_loader_script_and_config(
    served: tuple[Inventory, BootNet, Path],
) -> None:
    _inventory, net, state = served
    net.set_mac(FOHN_MAC)

    bios = net.dhcp()
    assert bios["ip"] == "31.31.164.220"  # fohn's own address, from the inventory
    assert bios["boot_file"] == "undionly.kpxe"
    assert bios["siaddr"] == BOOT
    uefi = net.dhcp("0x5d:0007")  # option 93: x86-64 UEFI
    assert uefi["boot_file"] == "ipxe.efi"
    ipxe = net.dhcp("175:010101")  # iPXE's own option: on to the chain script
    assert ipxe["boot_file"] == render.TFTP_SCRIPT

    got = net.workdir / "got"
    for name in (render.BIOS_LOADER, render.TFTP_SCRIPT):
        tftp = net.client_run(BUSYBOX, "tftp", "-g", "-r", name, "-l", str(got), BOOT)
        assert tftp.returncode == 0, tftp.stderr
        assert got.read_bytes() == (BootDirs.of(state).tftp / name).read_bytes()
    assert f"chain http://{BOOT}:18080/ipxe/${{net0/mac}}" in got.read_text()

    url = f"http://{BOOT}:18080"
    script = net.client_run(BUSYBOX, "wget", "-q", "-O-", f"{url}/ipxe/{FOHN_MAC}")
    assert "labctl.server=fohn" in script.stdout
    assert f"kernel {url}/kernel/{FOHN_MAC}" in script.stdout
    config = net.client_run(BUSYBOX, "wget", "-q", "-O-", f"{url}/ignition/{FOHN_MAC}")
    assert json.loads(config.stdout)["ignition"]["version"] == "3.3.0"
    kernel = net.client_run(BUSYBOX, "wget", "-q", "-O", str(got), f"{url}/kernel/{FOHN_MAC}")
    assert kernel.returncode == 0 and got.read_bytes() == b"KERNEL" * 1000
    # iPXE spells MACs in lower case with colons; upper case is the same NIC.
    upper = net.client_run(BUSYBOX, "wget", "-q", "-O-", f"{url}/ipxe/{FOHN_MAC.upper()}")
    assert "labctl.server=fohn" in upper.stdout


def test_unknown_mac_gets_nothing_and_is_logged(served: tuple[Inventory, BootNet, Path]) -> None:
    _, net, state = served
    net.set_mac(STRANGER_MAC)
    assert net.dhcp() == {}
    dirs = BootDirs.of(state)
    assert f"{STRANGER_MAC.lower()} ignored" in dirs.dnsmasq_log.read_text().lower()

    # A stranger with an address of its own still gets nothing over HTTP.
    net.set_address("31.31.164.219/28")

    url = f"http://{BOOT}:18080"
    for what in ("ipxe", "ignition", "kernel"):
        answer = net.client_run(BUSYBOX, "wget", "-q", "-O-", f"{url}/{what}/{STRANGER_MAC}")
        assert answer.returncode != 0 and answer.stdout == ""
    # The service writes a request's line once it has answered it: the last answer can
    # reach wget before its line reaches the log (seen on a loaded CI machine).
    deadline = time.monotonic() + 5
    while True:
        log = [json.loads(line) for line in dirs.requests.read_text().splitlines()]
        unknown = [r for r in log if r.get("note") == "unknown MAC: nothing served"]
        if len(unknown) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(unknown) == 3 and {r["status"] for r in unknown} == {404}, unknown


def test_installer_report_lands_in_the_state_directory(
    served: tuple[Inventory, BootNet, Path],
) -> None:
    _, net, state = served
    net.set_address("31.31.164.220/28")
    url = f"http://{BOOT}:18080/report/{FOHN_MAC}"
    body = json.dumps({"result": "failed", "message": "CRITICAL: files: op(1): no space left"})
    header = f"{TOKEN_HEADER}: {install_token(net)}"
    post = net.client_run(
        BUSYBOX, "wget", "-q", "-O-", "--header", header, "--post-data", body, url
    )
    assert post.returncode == 0, post.stderr
    report = read_report(BootDirs.of(state), "fohn")
    assert report is not None and not report.ok
    assert report.message == "CRITICAL: files: op(1): no space left"
    stranger = f"http://{BOOT}:18080/report/{STRANGER_MAC}"
    assert net.client_run(BUSYBOX, "wget", "-q", "--post-data", "result=ok", stranger).returncode


def install_token(net: BootNet, mac: str = FOHN_MAC) -> str:
    """The report token the installer config served for ``mac`` carries (as an installer
    reads it)."""
    config = json.loads(net.client_run(BUSYBOX, "wget", "-q", "-O-", f"{URL}/install/{mac}").stdout)
    found = [f for f in config["storage"]["files"] if f["path"] == "/etc/labctl/install-token"]
    assert len(found) == 1, "the installer config carries no install token"
    text = data_url_text(found[0]["contents"]["source"])
    assert found[0]["mode"] == 0o600 and text.startswith("LABCTL_INSTALL_TOKEN=")
    return text.strip().split("=", 1)[1]


URL = f"http://{BOOT}:18080"


def test_a_report_without_this_install_s_token_is_refused_and_changes_nothing(
    served: tuple[Inventory, BootNet, Path],
) -> None:
    """Anyone on the boot network could POST "ok" for a server whose install is still
    running (or failed): the os layer would then boot it from an empty disk."""
    _, net, state = served
    net.set_address("31.31.164.219/28")
    url = f"{URL}/report/{FOHN_MAC}"
    ok = json.dumps({"result": "ok", "message": "flatcar-install wrote /dev/sda"})
    dirs = BootDirs.of(state)
    guess = "ab" * 32
    for header in ([], ["--header", f"{TOKEN_HEADER}: {guess}"],
                   ["--header", f"{TOKEN_HEADER}: "]):  # fmt: skip
        post = net.client_run(BUSYBOX, "wget", "-S", "-O-", *header, "--post-data", ok, url)
        assert post.returncode != 0 and "403" in post.stderr, post.stderr
        assert read_report(dirs, "fohn") is None
    token = install_token(net)
    assert len(token) == 64 and token != install_token(net, "0c:c4:7a:5e:6f:02")
    # Another server's token is not this one's either.
    other = install_token(net, "0c:c4:7a:5e:6f:02")
    post = net.client_run(
        BUSYBOX, "wget", "-q", "-O-", "--header", f"{TOKEN_HEADER}: {other}",
        "--post-data", ok, url,
    )  # fmt: skip
    assert post.returncode != 0 and read_report(dirs, "fohn") is None
    log = [json.loads(line) for line in dirs.requests.read_text().splitlines()]
    refused = [r for r in log if r["status"] == 403]
    assert len(refused) == 4 and all("nothing kept" in r["note"] for r in refused)
    assert token not in dirs.requests.read_text()
    # With it, the report counts.
    post = net.client_run(
        BUSYBOX, "wget", "-q", "-O-", "--header", f"{TOKEN_HEADER}: {token}",
        "--post-data", ok, url,
    )  # fmt: skip
    assert post.returncode == 0, post.stderr
    report = read_report(dirs, "fohn")
    assert report is not None and report.ok


def test_flatcar_install_finds_the_version_s_image_where_its_b_option_looks(
    served: tuple[Inventory, BootNet, Path],
) -> None:
    """flatcar-install -b BASE -V VERSION checks BASE/VERSION/<image> and .sig with
    ``wget --spider`` (HEAD), then fetches both: from labctl's verified cache."""
    _, net, state = served
    net.set_address("31.31.164.219/28")
    config = json.loads(
        net.client_run(BUSYBOX, "wget", "-q", "-O-", f"{URL}/install/{FOHN_MAC}").stdout
    )
    unit = config["systemd"]["units"][0]["contents"]
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert len(exec_start.split()) == 4, f"no version and image source in {exec_start}"
    _, channel, version, base = exec_start.split()
    assert (channel, version) == ("beta", FLATCAR_VERSION)  # the cache's version.txt
    image = f"{base}/{version}/{IMAGE_NAME}"
    for url, data in ((image, IMAGE), (f"{image}.sig", b"SIGNATURE")):
        # GNU wget, as flatcar-install runs it: --spider sends HEAD.
        spider = net.client_run("wget", "--spider", "--quiet", url)
        assert spider.returncode == 0, spider.stderr
        got = net.client_run(BUSYBOX, "wget", "-q", "-O-", url)
        assert got.returncode == 0 and got.stdout.encode() == data
    other = net.client_run("wget", "--spider", "-q", f"{base}/3815.2.5/{IMAGE_NAME}")
    assert other.returncode != 0  # no other release is served
    log = [json.loads(line) for line in BootDirs.of(state).requests.read_text().splitlines()]
    assert [r["status"] for r in log if r["method"] == "HEAD"] == [200, 200, 404]


def test_fetch_refuses_a_mirror_of_another_version_than_os_version(lab: Path) -> None:
    """With os.version set, the release server's "current" is not good enough."""
    lab.write_text(
        lab.read_text().replace(
            "os: {distribution: flatcar, channel: beta}",
            "os: {distribution: flatcar, channel: beta, version: 3815.2.5}",
        )
    )
    refused = fetch(lab)
    assert refused.returncode != 0
    assert f"this is flatcar {FLATCAR_VERSION}, not os.version 3815.2.5" in refused.stderr
    assert "Traceback" not in refused.stderr
    inventory = require_inventory(lab)
    release = assets.release_of(inventory, lab.parent, inventory.server("fohn"))
    assert not release.path("image").exists()  # refused before the image was fetched


@pytest.mark.parametrize(
    "said", ["3975.2.0; reboot", "3975.2.0 -d /dev/sdb", "$(reboot)", "", "../../etc"]
)
def test_a_version_txt_that_is_no_version_is_refused(lab: Path, said: str) -> None:
    """Without os.version the mirror's version goes on the installer's command line."""
    (lab.parent / "mirror" / "version.txt").write_text(f"FLATCAR_VERSION={said}\n")
    refused = fetch(lab)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert ("is not a version" if said else "names no FLATCAR_VERSION") in refused.stderr
    inventory = require_inventory(lab)
    release = assets.release_of(inventory, lab.parent, inventory.server("fohn"))
    assert not (release.cache / assets.MANIFEST).exists()


def test_proxy_dhcp_configuration_is_accepted_by_dnsmasq(lab: Path, tmp_path: Path) -> None:
    lab.write_text(lab.read_text().replace("    dhcp: full\n", "    dhcp: proxy\n"))
    inventory = require_inventory(lab)
    dirs = BootDirs(tmp_path / "boot")
    conf = render.dnsmasq_conf(
        inventory, render.DnsmasqPaths(str(dirs.tftp), "/dev/null", "/dev/null", "/dev/null")
    )
    assert "dhcp-range=31.31.164.208,proxy,255.255.255.240" in conf
    assert "31.31.164.220" not in conf  # proxyDHCP hands out no addresses
    path = tmp_path / "dnsmasq.conf"
    path.write_text(conf)
    checked = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={path}"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_the_service_is_reused_only_for_the_same_inventory(
    served: tuple[Inventory, BootNet, Path], lab: Path
) -> None:
    inventory, net, state = served
    first = service.running(state)
    assert first is not None
    assert service.start(inventory, lab, state, netns=net.server) == first
    lab.write_text(lab.read_text().replace("0.se.pool.ntp.org", "2.se.pool.ntp.org"))
    edited = require_inventory(lab)
    second = service.start(edited, lab, state, netns=net.server)
    assert second.http != first.http
    net.set_address("31.31.164.220/28")
    url = f"http://{BOOT}:18080/ignition/{FOHN_MAC}"
    config = net.client_run(BUSYBOX, "wget", "-q", "-O-", url).stdout
    assert "2.se.pool.ntp.org" in config and "0.se.pool.ntp.org" not in config


def test_signed_digests_are_checked_with_the_keyring(lab: Path, tmp_path: Path) -> None:
    publisher, keyring = signer(tmp_path, "publisher")
    stranger, _ = signer(tmp_path, "stranger")
    mirror = tmp_path / "mirror"
    for name in FLATCAR.values():
        digests = mirror / f"{name}.DIGESTS"
        gpg(publisher, "--detach-sign", "--output", f"{digests}.sig", str(digests))
    image = mirror / IMAGE_NAME
    gpg(publisher, "--detach-sign", "--yes", "--output", f"{image}.sig", str(image))
    signed = run_labctl("boot", "fetch", "-i", str(lab), "--keyring", str(keyring), cwd=lab.parent)
    assert signed.returncode == 0, signed.stderr

    # Digests signed by someone else: refused, whatever the hashes say.
    name = FLATCAR["kernel"]
    digests = mirror / f"{name}.DIGESTS"
    gpg(stranger, "--detach-sign", "--output", f"{digests}.sig", str(digests))
    refused = run_labctl("boot", "fetch", "-i", str(lab), "--keyring", str(keyring), cwd=lab.parent)
    assert refused.returncode != 0
    assert "signature of the digests does not verify" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_serve_in_the_background_then_status_and_stop(lab: Path, tmp_path: Path) -> None:
    assert fetch(lab).returncode == 0
    state = tmp_path / "state"
    common = ("-i", str(lab), "--state-dir", str(state))
    with boot_net(tmp_path, BOOT, 28) as net:
        try:
            up = run_labctl(
                "boot", "serve", "--background", "--netns", net.server, "-o", "json", *common
            )
            assert up.returncode == 0, up.stderr
            assert json.loads(up.stdout)["url"] == f"http://{BOOT}:18080"
            status = run_labctl("boot", "status", "-o", "json", *common)
            assert json.loads(status.stdout)["running"] is True
            stop = run_labctl("boot", "stop", "--state-dir", str(state))
            assert stop.stdout.strip() == "stopped"
            assert service.running(state) is None
        finally:
            service.stop(state)


def test_a_service_with_a_lifetime_stops_itself(lab: Path, tmp_path: Path) -> None:
    """The os layer's run may end early (a failed install): its service does not linger."""
    assert fetch(lab).returncode == 0
    inventory = require_inventory(lab)
    state = tmp_path / "state"
    with boot_net(tmp_path, BOOT, 28) as net:
        try:
            running = service.start(inventory, lab, state, netns=net.server, lifetime=2)
            assert service.running(state) == running
            deadline = time.monotonic() + 15
            while service.running(state) is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert service.running(state) is None
            assert not Path(f"/proc/{running.dnsmasq}").exists() or (
                "Z" in Path(f"/proc/{running.dnsmasq}/stat").read_text().split(")")[1][:3]
            )
        finally:
            service.stop(state)
