"""The boot service's HTTP endpoint: each known MAC its script, files and config; others nothing.

Everything a server is answered with is rendered once at start from the
inventory (``render/boot.py``, ``render/ignition.py``) and the verified asset
cache, so a request is a dictionary look-up. A request for a MAC the inventory
does not list gets 404 and a log line, never another server's config. An
installer POSTs its result to ``/report/<mac>``; the report lands in the state
directory for the os layer to read. Every answer is one JSON line in the
request log, with how long it took.

A report counts only with this install's token: minted here at start, per
server (random, kept in memory only, never written), carried in that server's
installer Ignition and sent back in the ``X-Labctl-Install-Token`` header. A
report without it, or with another, is refused (403, compared in constant time)
and changes nothing, so nobody on the boot network can end an install with a
false "ok". Flatcar's installer fetches its image in the release layout
``flatcar-install -b`` expects: ``/flatcar/<mac>/<version>/<image>`` and its
``.sig``, from the verified cache (HEAD too: it checks both with
``wget --spider`` first). Each server's Ignition carries its SSH host key
(``labctl.boot.hostkeys``), read from the state directory at start.

Run as ``python -m labctl.boot.http INVENTORY STATE_DIR`` (``service.py`` does).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

from labctl.boot import assets, hostkeys
from labctl.boot.state import BootDirs, Report, write_report
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import boot as render
from labctl.render import ignition

MAX_REPORT = 64 * 1024


@dataclass(frozen=True)
class Answers:
    """What each path is answered with: bytes rendered at start, or a cached file."""

    texts: dict[str, bytes]
    files: dict[str, Path]
    macs: dict[str, str]  # MAC -> server name
    tokens: dict[str, str]  # server name -> its install's report token


def answers(inventory: Inventory, base_dir: Path, state_dir: Path) -> Answers:
    texts: dict[str, bytes] = {}
    files: dict[str, Path] = {}
    macs: dict[str, str] = {}
    tokens: dict[str, str] = {}
    verified: dict[str, dict[str, Path]] = {}
    for mac, server in render.servers_by_mac(inventory).items():
        macs[mac] = server.name
        tokens[server.name] = secrets.token_hex(32)
        key = hostkeys.load(state_dir, server.name)
        planted = (key.private, key.public) if key is not None else None
        release = assets.release_of(inventory, base_dir, server)
        if release.label not in verified:
            verified[release.label] = assets.verify(release)
        version = server.os.version or assets.cached_version(release) or "current"
        texts[f"/ipxe/{mac}"] = render.ipxe_script(inventory, server).encode()
        texts[f"/ignition/{mac}"] = ignition.config_text(inventory, server, planted).encode()
        texts[f"/install/{mac}"] = render.installer_config_text(
            inventory, server, version=version, token=tokens[server.name]
        ).encode()
        for role, path in verified[release.label].items():
            files[f"/{role}/{mac}"] = path
        if release.distribution == "flatcar":
            # Where flatcar-install -b BASE -V VERSION looks: BASE/VERSION/<image>[.sig].
            where = f"/flatcar/{mac}/{version}/{assets.FLATCAR_IMAGE}"
            files[where] = verified[release.label]["image"]
            files[f"{where}.sig"] = verified[release.label][assets.FLATCAR_SIGNATURE]
    return Answers(texts, files, macs, tokens)


class BootHandler(BaseHTTPRequestHandler):
    server_version = "labctl-boot"
    answers: Answers
    dirs: BootDirs
    log_lock = threading.Lock()

    def _log(self, status: int, started: float, size: int, note: str = "") -> None:
        record = {
            "time": round(time.time(), 3),
            "client": self.client_address[0],
            "method": self.command,
            "path": unquote(self.path),
            "status": status,
            "bytes": size,
            "seconds": round(time.monotonic() - started, 6),
        }
        if note:
            record["note"] = note
        with self.log_lock, self.dirs.requests.open("a") as log:
            log.write(json.dumps(record) + "\n")

    def do_HEAD(self) -> None:
        self.do_GET(body=False)

    def do_GET(self, body: bool = True) -> None:
        started = time.monotonic()
        # iPXE percent-encodes what it expands into a URL: ${net0/mac} comes as 9c%3A8e...
        path = unquote(self.path.split("?", 1)[0])
        prefix, _, mac = path.rpartition("/")
        key = f"{prefix}/{render.normal_mac(mac)}"
        text = self.answers.texts.get(key)
        file = self.answers.files.get(key) or self.answers.files.get(path)
        if text is None and file is None:
            self.send_error(404)
            known = render.normal_mac(mac) in self.answers.macs or path.startswith("/flatcar/")
            self._log(404, started, 0, "" if known else "unknown MAC: nothing served")
            return
        body_size = len(text) if text is not None else file.stat().st_size  # type: ignore[union-attr]
        self.send_response(200)
        self.send_header("Content-Length", str(body_size))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not body:
            self._log(200, started, 0, "HEAD")
            return
        if text is not None:
            self.wfile.write(text)
        else:
            with file.open("rb") as handle:  # type: ignore[union-attr]
                while chunk := handle.read(1 << 20):
                    self.wfile.write(chunk)
        self._log(200, started, body_size)

    def do_POST(self) -> None:
        started = time.monotonic()
        prefix, _, mac = unquote(self.path.split("?", 1)[0]).rpartition("/")
        server = self.answers.macs.get(render.normal_mac(mac))
        if prefix != "/report" or server is None:
            self.send_error(404)
            self._log(404, started, 0, "report from an unknown MAC ignored")
            return
        try:
            length = min(max(0, int(self.headers.get("Content-Length") or 0)), MAX_REPORT)
        except ValueError:
            self.send_error(400)
            self._log(400, started, 0, "a report with no usable Content-Length")
            return
        body = self.rfile.read(length).decode(errors="replace")
        given = self.headers.get(render.TOKEN_HEADER, "").strip().encode()
        if not hmac.compare_digest(given, self.answers.tokens[server].encode()):
            self.send_error(403)
            why = "without its install token" if not given else "with a wrong install token"
            self._log(403, started, length, f"report for {server} {why}: refused, nothing kept")
            return
        result, message = parse_report(body)
        write_report(
            self.dirs, Report(server, result, message, time.time(), self.client_address[0])
        )
        self.send_response(204)
        self.end_headers()
        self._log(204, started, length, f"{server} reported {result}")

    def log_message(self, format: str, *args: object) -> None:
        pass  # every answer goes to the request log instead


def parse_report(body: str) -> tuple[str, str]:
    """``(result, message)`` from JSON or a form body; anything but ``ok`` is a failure."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        data = {k: v[0] for k, v in parse_qs(body).items()}
    result = "ok" if str(data.get("result", "")).strip() == "ok" else "failed"
    message = str(data.get("message", "")).strip()
    if result == "failed" and not message:
        message = f"the installer reported: {body.strip()[:500] or 'nothing'}"
    return result, message


def _expire(state_dir: Path, until: float) -> None:
    """At ``until``, stop this state directory's dnsmasq and this process."""
    from labctl.boot.service import stop_dnsmasq

    time.sleep(max(0.0, until - time.time()))
    stop_dnsmasq(state_dir)
    os._exit(0)


def serve(inventory_path: Path, state_dir: Path, until: float = 0.0) -> None:
    inventory = require_inventory(inventory_path)
    boot = render.boot_settings(inventory)
    dirs = BootDirs.of(state_dir)
    dirs.reports.mkdir(parents=True, exist_ok=True)
    handler = type(
        "Handler",
        (BootHandler,),
        {"answers": answers(inventory, inventory_path.parent, state_dir), "dirs": dirs},
    )
    httpd = ThreadingHTTPServer((boot.address, boot.http_port), handler)
    httpd.daemon_threads = True
    if until:
        threading.Thread(target=_expire, args=(state_dir, until), daemon=True).start()
    print(f"labctl boot: HTTP on {boot.address}:{boot.http_port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
