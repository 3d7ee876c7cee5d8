"""The install assets (kernel, initrd, rootfs) in a local cache, fetched once and verified.

Each distribution publishes its own way, and each is followed as published:

* Flatcar: next to each file a ``.DIGESTS`` file (``# SHA512 HASH`` followed by
  ``<hex>  <name>`` lines), signed as a whole (``.DIGESTS.sig``). Besides the PXE
  kernel and initrd, the disk image the installer writes
  (``flatcar_production_image.bin.bz2``) and its own signature (``.sig``, which
  ``flatcar-install`` checks with Flatcar's key on the node), and ``version.txt``,
  whose ``FLATCAR_VERSION`` is the release: the installer is told to install
  exactly that version from this cache, never what the release server says later.
* Fedora CoreOS: stream metadata, ``<stream>.json``, whose
  ``architectures.x86_64.artifacts.metal.formats.pxe`` names the kernel, initramfs
  and rootfs, each with its ``location``, ``sha256`` and detached ``signature``
  (a relative location is taken relative to the stream file, so a mirror can
  rewrite them).

``fetch`` downloads each file, and only one whose hash matches the published one
is renamed into the cache, with a manifest recording its SHA-512 (and, for
Fedora CoreOS, the published SHA-256). ``verify`` rehashes the cache against
that manifest before anything is served, so a file changed on disk since (or a
cache someone edited) is refused, never handed to a node. With a keyring the
publisher's signatures are checked too (``gpgv``): Flatcar's over the digests,
Fedora CoreOS's over each file itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from labctl.errors import LabctlError
from labctl.files import atomic_writer, write_atomic
from labctl.inventory.model import Inventory, Server

# The roles of the two files and each distribution's published names.
FLATCAR_FILES = {
    "kernel": "flatcar_production_pxe.vmlinuz",
    "initrd": "flatcar_production_pxe_image.cpio.gz",
    "image": "flatcar_production_image.bin.bz2",
}
FLATCAR_IMAGE = FLATCAR_FILES["image"]
# The image's detached signature, cached beside it (role "signature") for
# flatcar-install to check on the node.
FLATCAR_SIGNATURE = "signature"
VERSION_FILE = "version.txt"
# Cache role -> the stream metadata's name for it under formats.pxe.
FCOS_ARTIFACTS = {"kernel": "kernel", "initrd": "initramfs", "rootfs": "rootfs"}
FCOS_ARCH = "x86_64"
ROLES = {
    "flatcar": (*FLATCAR_FILES, FLATCAR_SIGNATURE),
    "fedora-coreos": tuple(FCOS_ARTIFACTS),
}
DEFAULT_MIRRORS = {
    # {version}: os.version, or "current" when the inventory names none.
    "flatcar": "https://{channel}.release.flatcar-linux.net/amd64-usr/{version}",
    # Where <stream>.json lives; the artifacts' own locations are absolute.
    "fedora-coreos": "https://builds.coreos.fedoraproject.org/streams",
}
MANIFEST = "manifest.json"
CHUNK = 1 << 20


class AssetError(LabctlError):
    """An asset that is missing, could not be fetched, or does not match its checksum."""


@dataclass(frozen=True)
class Release:
    """One distribution, channel and version (``os.version``, or None for the channel's
    current one): where it comes from and where it is cached."""

    distribution: str
    channel: str
    mirror: str
    cache: Path
    version: str | None = None

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.channel}" + (f" {self.version}" if self.version else "")

    def path(self, role: str) -> Path:
        return self.cache / role


def releases(inventory: Inventory, base_dir: Path) -> list[Release]:
    """The releases the inventory's servers install, each once, in inventory order."""
    boot = inventory.lab.boot
    root = Path(boot.assets if boot else ".labctl/boot-assets")
    root = root if root.is_absolute() else base_dir / root
    found: dict[tuple[str, str, str | None], Release] = {}
    for server in inventory.servers:
        key = (server.os.distribution, server.os.channel, server.os.version)
        if key in found:
            continue
        template = (boot.mirror if boot else None) or DEFAULT_MIRRORS.get(server.os.distribution)
        if template is None:
            raise AssetError(
                f"{server.os.distribution}: labctl knows no release server for it; "
                "set lab.boot.mirror to a mirror in Flatcar's or Fedora CoreOS's layout"
            )
        version = key[2]
        mirror = template.format(
            distribution=key[0], channel=key[1], version=version or "current"
        ).rstrip("/")
        cache = root / key[0] / (f"{key[1]}@{version}" if version else key[1])
        found[key] = Release(key[0], key[1], mirror, cache, version)
    return list(found.values())


def release_of(inventory: Inventory, base_dir: Path, server: Server) -> Release:
    wanted = (server.os.distribution, server.os.channel, server.os.version)
    for release in releases(inventory, base_dir):
        if (release.distribution, release.channel, release.version) == wanted:
            return release
    raise AssertionError(server.name)  # releases() covers every server


def parse_digests(text: str, name: str) -> str | None:
    """The SHA-512 that a ``.DIGESTS`` file gives for ``name``; None if it gives none."""
    in_sha512 = False
    for line in text.splitlines():
        if line.startswith("#"):
            in_sha512 = line.strip().upper() == "# SHA512 HASH"
            continue
        parts = line.split()
        if in_sha512 and len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0].lower()
    return None


def sha512_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open(url: str, timeout: float) -> object:
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AssetError(f"cannot fetch {url}: {reason}") from None


def _read(url: str, timeout: float) -> bytes:
    with _open(url, timeout) as response:  # type: ignore[attr-defined]
        data: bytes = response.read()
        return data


def _download(url: str, dest: Path, timeout: float) -> dict[str, str]:
    """Stream ``url`` into ``dest`` atomically; its SHA-512 and SHA-256."""
    digests = {"sha512": hashlib.sha512(), "sha256": hashlib.sha256()}
    with _open(url, timeout) as response, atomic_writer(dest) as out:  # type: ignore[attr-defined]
        while chunk := response.read(CHUNK):
            for digest in digests.values():
                digest.update(chunk)
            out.write(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _gpgv(signature: bytes, data: Path, keyring: Path, what: str) -> None:
    """``signature`` (detached) over the file ``data`` by a key in ``keyring``, or refuse."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise AssetError("gpgv is not installed (Debian package gpgv); cannot check signatures")
    sig = data.with_name(f".{data.name}.sig")
    sig.write_bytes(signature)
    try:
        result = subprocess.run(
            [gpgv, "--keyring", str(keyring), str(sig), str(data)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        sig.unlink(missing_ok=True)
    if result.returncode != 0:
        raise AssetError(f"the signature of {what} does not verify: {result.stderr.strip()}")


def _check_signature(digests: bytes, signature: bytes, keyring: Path, where: Path) -> None:
    data = where / ".digests"
    data.write_bytes(digests)
    try:
        _gpgv(signature, data, keyring, "the digests")
    finally:
        data.unlink(missing_ok=True)


@dataclass(frozen=True)
class Fetched:
    release: str
    role: str
    name: str
    sha512: str
    changed: bool


def fetch(release: Release, *, keyring: Path | None = None, timeout: float = 60.0) -> list[Fetched]:
    """Each asset of ``release`` in the cache, verified against the published hash
    (Flatcar's SHA-512 here; Fedora CoreOS's SHA-256 in ``_fetch_fcos``).

    A file already cached with the published hash is kept. A download whose hash
    differs is thrown away and the release refused, naming both hashes.
    """
    if release.distribution == "fedora-coreos":
        return _fetch_fcos(release, keyring=keyring, timeout=timeout)
    if release.distribution != "flatcar":
        raise AssetError(f"{release.label}: labctl knows no release layout for it")
    release.cache.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(release)
    # The version first: a mirror that serves another release is refused before the
    # image (hundreds of MB) is downloaded.
    version = flatcar_version(_read(f"{release.mirror}/{VERSION_FILE}", timeout), release)
    check_version(release, version, f"{release.mirror}/{VERSION_FILE}")
    results = []
    for role, name in FLATCAR_FILES.items():
        url = f"{release.mirror}/{name}"
        digests = _read(f"{url}.DIGESTS", timeout)
        if keyring is not None:
            signature = _read(f"{url}.DIGESTS.sig", timeout)
            _check_signature(digests, signature, keyring, release.cache)
        want = parse_digests(digests.decode(errors="replace"), name)
        if want is None:
            raise AssetError(f"{url}.DIGESTS gives no SHA512 hash for {name}")
        dest = release.path(role)
        recorded = manifest.get(role, {})
        if dest.exists() and recorded.get("sha512") == want and sha512_of(dest) == want:
            results.append(Fetched(release.label, role, name, want, False))
            continue
        partial = dest.with_name(f".{role}.download")
        got = _download(url, partial, timeout)["sha512"]
        if got != want:
            partial.unlink(missing_ok=True)
            raise AssetError(
                f"{url}: SHA-512 {got[:16]}... does not match the published {want[:16]}...; "
                "the file was not cached"
            )
        partial.replace(dest)
        manifest[role] = {"name": name, "url": url, "sha512": want, "fetched": time.time()}
        results.append(Fetched(release.label, role, name, want, True))
    # The image's own signature: flatcar-install checks it on the node with Flatcar's
    # key; with a keyring it is checked here too.
    url = f"{release.mirror}/{FLATCAR_IMAGE}.sig"
    signature = _read(url, timeout)
    if keyring is not None:
        _gpgv(signature, release.path("image"), keyring, FLATCAR_IMAGE)
    sig_path = release.path(FLATCAR_SIGNATURE)
    changed = not sig_path.exists() or sig_path.read_bytes() != signature
    if changed:
        write_atomic(sig_path, signature)
    sig_sha512 = hashlib.sha512(signature).hexdigest()
    manifest[FLATCAR_SIGNATURE] = {"name": f"{FLATCAR_IMAGE}.sig", "url": url, "sha512": sig_sha512}
    results.append(
        Fetched(release.label, FLATCAR_SIGNATURE, f"{FLATCAR_IMAGE}.sig", sig_sha512, changed)
    )
    manifest["release"] = {"version": version}
    write_atomic(release.cache / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return results


# What os.version may hold (the inventory schema's pattern): the version goes on the
# installer's command line and into a URL, so a mirror's word is held to it too.
VERSION_PATTERN = re.compile(r"[0-9][0-9A-Za-z.+_-]*")


def flatcar_version(text: bytes, release: Release) -> str:
    """``FLATCAR_VERSION`` from a release directory's ``version.txt``."""
    for line in text.decode(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "FLATCAR_VERSION" and value.strip():
            version = value.strip()
            if not VERSION_PATTERN.fullmatch(version):
                raise AssetError(
                    f"{release.mirror}/{VERSION_FILE}: FLATCAR_VERSION {version[:60]!r} is not "
                    "a version (digits, letters, . + _ -); refusing the release"
                )
            return version
    raise AssetError(f"{release.mirror}/{VERSION_FILE} names no FLATCAR_VERSION")


def check_version(release: Release, version: str, where: str) -> None:
    """Refuse a release other than the inventory's ``os.version`` (when it names one)."""
    if release.version is not None and version != release.version:
        raise AssetError(
            f"{where}: this is {release.distribution} {version}, not os.version "
            f"{release.version}; point lab.boot.mirror at that release "
            "({version} in it is filled in with os.version)"
        )


def cached_version(release: Release) -> str | None:
    """The release the cache holds, as recorded when it was fetched."""
    manifest = load_manifest(release)
    entry = manifest.get("release") or manifest.get("kernel") or {}
    found = entry.get("version") or entry.get("release")
    return str(found) if found else None


@dataclass(frozen=True)
class Artifact:
    """One file the stream metadata publishes: absolute URL, SHA-256, signature URL."""

    url: str
    sha256: str
    signature: str


def stream_artifacts(stream: Any, stream_url: str, channel: str) -> tuple[str, dict[str, Artifact]]:
    """``(release, {role: Artifact})`` for the x86_64 metal PXE files of a stream document.

    Raises AssetError naming what is missing or wrong: a mirror that serves another
    stream, or a document of another shape, is refused before anything is fetched.
    """
    where = stream_url

    def step(node: Any, key: str, path: str) -> Any:
        if not isinstance(node, dict) or key not in node:
            raise AssetError(f"{where}: the stream metadata has no {path}")
        return node[key]

    if not isinstance(stream, dict):
        raise AssetError(f"{where}: not stream metadata (a JSON object was expected)")
    if stream.get("stream") != channel:
        raise AssetError(
            f"{where}: this is the stream {stream.get('stream')!r}, not {channel!r}; refusing it"
        )
    walked: list[str] = []
    node: Any = stream
    release = ""
    for key in ("architectures", FCOS_ARCH, "artifacts", "metal", "formats", "pxe"):
        walked.append(key)
        node = step(node, key, ".".join(walked))
        if key == "metal" and isinstance(node, dict):
            release = str(node.get("release", ""))
    pxe, path = node, ".".join(walked[:4])
    found = {}
    for role, key in FCOS_ARTIFACTS.items():
        at = f"{path}.formats.pxe.{key}"
        entry = step(pxe, key, at)
        fields = {}
        for field in ("location", "sha256", "signature"):
            value = step(entry, field, f"{at}.{field}")
            if not isinstance(value, str) or not value:
                raise AssetError(f"{where}: {at}.{field} is not a string")
            fields[field] = value
        sha256 = fields["sha256"].lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise AssetError(f"{where}: {at}.sha256 is not a SHA-256 ({fields['sha256']!r})")
        found[role] = Artifact(
            urljoin(stream_url, fields["location"]),
            sha256,
            urljoin(stream_url, fields["signature"]),
        )
    return release, found


def _fetch_fcos(release: Release, *, keyring: Path | None, timeout: float) -> list[Fetched]:
    """Fedora CoreOS: the stream metadata, then each PXE file checked against its SHA-256
    (and, with a keyring, its own detached signature)."""
    stream_url = f"{release.mirror}/{release.channel}.json"
    raw = _read(stream_url, timeout)
    try:
        stream = json.loads(raw)
    except ValueError as exc:
        raise AssetError(f"{stream_url}: not JSON stream metadata ({exc})") from None
    version, artifacts = stream_artifacts(stream, stream_url, release.channel)
    check_version(release, version, f"{stream_url} (metal.release)")
    release.cache.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(release)
    results = []
    for role, artifact in artifacts.items():
        name = artifact.url.rsplit("/", 1)[-1]
        dest = release.path(role)
        recorded = manifest.get(role, {})
        if (
            dest.exists()
            and recorded.get("sha256") == artifact.sha256
            and sha512_of(dest) == recorded.get("sha512")
        ):
            if keyring is not None:  # cached without a keyring once: check it now
                _gpgv(_read(artifact.signature, timeout), dest, keyring, name)
            results.append(Fetched(release.label, role, name, str(recorded["sha512"]), False))
            continue
        partial = dest.with_name(f".{role}.download")
        got = _download(artifact.url, partial, timeout)
        if got["sha256"] != artifact.sha256:
            partial.unlink(missing_ok=True)
            raise AssetError(
                f"{artifact.url}: SHA-256 {got['sha256'][:16]}... does not match the "
                f"published {artifact.sha256[:16]}...; the file was not cached"
            )
        if keyring is not None:
            try:
                _gpgv(_read(artifact.signature, timeout), partial, keyring, name)
            except AssetError:
                partial.unlink(missing_ok=True)
                raise
        partial.replace(dest)
        manifest[role] = {
            "name": name,
            "url": artifact.url,
            "sha256": artifact.sha256,
            "sha512": got["sha512"],
            "release": version,
            "fetched": time.time(),
        }
        results.append(Fetched(release.label, role, name, got["sha512"], True))
    write_atomic(release.cache / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return results


def load_manifest(release: Release) -> dict[str, dict[str, object]]:
    path = release.cache / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AssetError(f"{path}: not a manifest labctl wrote ({exc})") from None
    return data if isinstance(data, dict) else {}


def verify(release: Release) -> dict[str, Path]:
    """The cached files of ``release`` by role, each rehashed against the manifest.

    Raises AssetError (naming ``labctl boot fetch``) for a missing or altered file.
    """
    manifest = load_manifest(release)
    found = {}
    for role in ROLES.get(release.distribution, tuple(FLATCAR_FILES)):
        path = release.path(role)
        entry = manifest.get(role)
        if entry is None or not path.exists():
            raise AssetError(
                f"{release.label}: no verified {role} in {release.cache}; run labctl boot fetch"
            )
        got = sha512_of(path)
        if got != entry.get("sha512"):
            raise AssetError(
                f"{path}: SHA-512 {got[:16]}... is not the {str(entry.get('sha512'))[:16]}... "
                "recorded when it was fetched; refusing to serve it (labctl boot fetch again)"
            )
        found[role] = path
    cached = cached_version(release)
    if release.version is not None and cached != release.version:
        raise AssetError(
            f"{release.cache}: holds {release.distribution} {cached or 'an unknown release'}, "
            f"not os.version {release.version}; run labctl boot fetch"
        )
    return found
