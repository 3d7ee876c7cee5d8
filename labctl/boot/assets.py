"""The install assets (kernel, initrd) in a local cache, fetched once and verified.

A release server publishes, next to each file, a ``.DIGESTS`` file (Flatcar's
format: ``# SHA512 HASH`` followed by ``<hex>  <name>`` lines). ``fetch``
downloads both, and only a file whose SHA-512 matches the published one is
renamed into the cache, with a manifest recording the hash. ``verify`` rehashes
the cache against that manifest before anything is served, so a file changed
on disk since (or a cache someone edited) is refused, never handed to a node.
With a keyring, the ``.DIGESTS.sig`` signature is checked too (``gpgv``), so
the hashes themselves are the publisher's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError
from labctl.files import atomic_writer, write_atomic
from labctl.inventory.model import Inventory, Server

# The roles of the two files and each distribution's published names.
FLATCAR_FILES = {
    "kernel": "flatcar_production_pxe.vmlinuz",
    "initrd": "flatcar_production_pxe_image.cpio.gz",
}
DEFAULT_MIRRORS = {
    "flatcar": "https://{channel}.release.flatcar-linux.net/amd64-usr/current",
}
MANIFEST = "manifest.json"
CHUNK = 1 << 20


class AssetError(LabctlError):
    """An asset that is missing, could not be fetched, or does not match its checksum."""


@dataclass(frozen=True)
class Release:
    """One distribution and channel: where it comes from and where it is cached."""

    distribution: str
    channel: str
    mirror: str
    cache: Path

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.channel}"

    def path(self, role: str) -> Path:
        return self.cache / role


def releases(inventory: Inventory, base_dir: Path) -> list[Release]:
    """The releases the inventory's servers install, each once, in inventory order."""
    boot = inventory.lab.boot
    root = Path(boot.assets if boot else ".labctl/boot-assets")
    root = root if root.is_absolute() else base_dir / root
    found: dict[tuple[str, str], Release] = {}
    for server in inventory.servers:
        key = (server.os.distribution, server.os.channel)
        if key in found:
            continue
        template = (boot.mirror if boot else None) or DEFAULT_MIRRORS.get(server.os.distribution)
        if template is None:
            raise AssetError(
                f"{server.os.distribution}: labctl knows no release server for it; "
                "set lab.boot.mirror to a mirror in Flatcar's layout"
            )
        mirror = template.format(distribution=key[0], channel=key[1]).rstrip("/")
        found[key] = Release(key[0], key[1], mirror, root / key[0] / key[1])
    return list(found.values())


def release_of(inventory: Inventory, base_dir: Path, server: Server) -> Release:
    for release in releases(inventory, base_dir):
        if (release.distribution, release.channel) == (server.os.distribution, server.os.channel):
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


def _download(url: str, dest: Path, timeout: float) -> str:
    """Stream ``url`` into ``dest`` atomically; its SHA-512."""
    digest = hashlib.sha512()
    with _open(url, timeout) as response, atomic_writer(dest) as out:  # type: ignore[attr-defined]
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _check_signature(digests: bytes, signature: bytes, keyring: Path, where: Path) -> None:
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise AssetError("gpgv is not installed (Debian package gpgv); cannot check signatures")
    data, sig = where / ".digests", where / ".digests.sig"
    data.write_bytes(digests)
    sig.write_bytes(signature)
    try:
        result = subprocess.run(
            [gpgv, "--keyring", str(keyring), str(sig), str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        data.unlink(missing_ok=True)
        sig.unlink(missing_ok=True)
    if result.returncode != 0:
        raise AssetError(f"the signature of the digests does not verify: {result.stderr.strip()}")


@dataclass(frozen=True)
class Fetched:
    release: str
    role: str
    name: str
    sha512: str
    changed: bool


def fetch(release: Release, *, keyring: Path | None = None, timeout: float = 60.0) -> list[Fetched]:
    """Each asset of ``release`` in the cache, verified against the published SHA-512.

    A file already cached with the published hash is kept. A download whose hash
    differs is thrown away and the release refused, naming both hashes.
    """
    if release.distribution != "flatcar":
        raise AssetError(
            f"{release.label}: only Flatcar's release layout is fetched by this version"
        )
    release.cache.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(release)
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
        got = _download(url, partial, timeout)
        if got != want:
            partial.unlink(missing_ok=True)
            raise AssetError(
                f"{url}: SHA-512 {got[:16]}... does not match the published {want[:16]}...; "
                "the file was not cached"
            )
        partial.replace(dest)
        manifest[role] = {"name": name, "url": url, "sha512": want, "fetched": time.time()}
        results.append(Fetched(release.label, role, name, want, True))
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
    for role in FLATCAR_FILES:
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
    return found
