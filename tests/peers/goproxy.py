"""A Go module proxy on loopback that answers for a few modules' versions only.

labctl asks the module proxy which Kubernetes versions it serves before it builds one
(``labctl/kubernetes/builder.py``). The proxy protocol is a public spec (GOPROXY:
``<module>/@v/list``, one version a line; ``<module>/@v/VERSION.info``, JSON); this
server answers those two with the versions a test chooses and 404 for everything
else, as a proxy does for what it lacks, so a test can run offline and go itself,
pointed here, can only use what this machine's module cache already holds. A fake
*proxy*, not a fake labctl peer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(
    versions: str, unlisted: tuple[str, ...] = (), modules: tuple[str, ...] = ("k8s.io/kubernetes",)
) -> Iterator[tuple[str, list[str]]]:
    """The proxy's URL and the paths it was asked, while it serves ``versions`` (its
    list) and ``unlisted`` (served, as their ``.info`` says, but not in the list), of
    each of ``modules``."""
    served = {*versions.split(), *unlisted}
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            module, _, name = self.path.lstrip("/").partition("/@v/")
            if module not in modules:
                name = ""
            if name == "list":
                body = versions.encode()
            elif name.endswith(".info") and name.removesuffix(".info") in served:
                version = name.removesuffix(".info")
                body = f'{{"Version":"{version}","Time":"2026-01-01T00:00:00Z"}}'.encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
