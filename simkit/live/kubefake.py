"""A Kubernetes API fake that speaks real HTTP on 127.0.0.1, for live-mode tests and rehearsals.

No kube-apiserver can be installed on the development machines (``live-infra.md`` §2), so live
mode is exercised against this fake through the official ``kubernetes`` client, and
``kubectl --validate=false`` works against it for smoke checks. It is self-contained (stdlib
``http.server`` plus :mod:`simkit.live.kube_fakestore`): discovery, namespaced CRUD, List kinds,
JSON/merge patches chosen by Content-Type, resourceVersion conflicts, Seldon's traffic webhook
(422) and streamed watches honouring ``timeoutSeconds``.

In-process::

    with KubeFake() as fake:
        fake.cluster.load(docs)
        cfg = kubernetes.client.Configuration(host=fake.url)

As a process (``--port 0`` picks a free port; ``--port-file`` receives it once listening)::

    python -m simkit.live.kubefake --port 0 --port-file PORT --load manifests.yaml

Admin endpoints for a fake running as a process: ``GET/DELETE /_fake/requests`` (the recorded
requests; clear them) and ``POST /_fake/faults`` with ``{"kind", "namespace", "name", "count",
"status"}`` (make the next writes to one object fail).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simkit.errors import SimkitError
from simkit.files import write_text_atomic
from simkit.live.kube_fakerules import (
    OPENAPI_V2_MIME,
    OPENAPI_V2_PROTOBUF,
    FakeApiError,
    RequestRecord,
    ResourceType,
    Selector,
    bad_request,
    openapi_v3,
)
from simkit.live.kube_fakestore import FakeCluster
from simkit.loopback import HOST, LoopbackServer

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+simkit-fake",
    "gitCommit": "simkit",
    "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z",
    "goVersion": "go1.22",
    "compiler": "gc",
    "platform": "linux/amd64",
}
DEFAULT_WATCH_TIMEOUT = 1800.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base class
        pass  # quiet: tests count requests through FakeCluster instead

    # ------------------------------------------------------------ plumbing
    def _send(self, code: int, body: Any) -> None:
        self._send_bytes(code, json.dumps(body).encode(), "application/json")

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        cluster = self.server.cluster
        cluster.record(
            RequestRecord(self.command, split.path, split.query, self.headers.get("Content-Type", ""))
        )
        try:
            if split.path.startswith("/_fake/"):
                self._admin(split.path, query)
            elif not self._discovery(split.path):
                self._resource(split.path.rstrip("/").split("/")[1:], query)
        except FakeApiError as exc:
            self._send(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake: answer like an apiserver would, keep serving
            self._send(
                500, FakeApiError(500, "InternalError", f"simkit fake: {type(exc).__name__}: {exc}").status()
            )

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    # ------------------------------------------------------------ discovery
    def _discovery(self, path: str) -> bool:
        types = self.server.cluster.types()
        groups: dict[str, list[str]] = {}
        for t in types:
            if t.group:
                versions = groups.setdefault(t.group, [])
                versions.extend(v for v in t.versions if v not in versions)

        def group_doc(name: str) -> dict[str, Any]:
            vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in groups[name]]
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": name,
                "versions": vs,
                "preferredVersion": vs[0],
            }

        def resources(group: str, version: str) -> dict[str, Any]:
            entries = []
            for t in types:
                if t.group == group and version in t.versions:
                    entries.append(t.discovery_entry())
                    entries.append(
                        {
                            "name": f"{t.plural}/status",
                            "singularName": "",
                            "namespaced": t.namespaced,
                            "kind": t.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": entries,
            }

        parts = path.strip("/").split("/") if path.strip("/") else []
        if self.command != "GET":
            return False
        if parts in (["version"], ["healthz"], ["livez"], ["readyz"]):
            self._send(200, SERVER_VERSION if parts == ["version"] else "ok")
        elif parts[:2] == ["openapi", "v3"] and (doc := openapi_v3(types, parts[2:])) is not None:
            self._send(200, doc)
        elif parts == ["openapi", "v2"]:
            self._send_bytes(200, OPENAPI_V2_PROTOBUF, OPENAPI_V2_MIME)
        elif parts == ["api"]:
            self._send(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {
                            "clientCIDR": "0.0.0.0/0",
                            "serverAddress": f"127.0.0.1:{self.server.server_address[1]}",
                        }
                    ],
                },
            )
        elif parts == ["api", "v1"]:
            self._send(200, resources("", "v1"))
        elif parts == ["apis"]:
            self._send(
                200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(g) for g in groups]}
            )
        elif len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            self._send(200, group_doc(parts[1]))
        elif len(parts) == 3 and parts[0] == "apis" and parts[1] in groups and parts[2] in groups[parts[1]]:
            self._send(200, resources(parts[1], parts[2]))
        else:
            return False
        return True

    # ------------------------------------------------------------ resources
    def _resource(self, parts: list[str], query: Mapping[str, str]) -> None:
        cluster = self.server.cluster
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise FakeApiError(404, "NotFound", "the server could not find the requested resource")
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and cluster.resource_type(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        rtype = cluster.resource_type(group, version, rest[0]) if rest else None
        if rtype is None or len(rest) > 3 or (len(rest) == 3 and rest[2] != "status"):
            raise FakeApiError(404, "NotFound", "the server could not find the requested resource")
        if rtype.namespaced and namespace is None and len(rest) > 1:
            raise FakeApiError(404, "NotFound", f"{rtype.plural} must be addressed inside a namespace")
        ns = namespace or ""
        name = rest[1] if len(rest) > 1 else None
        status_only = len(rest) == 3
        dry_run = query.get("dryRun") == "All"
        method = self.command
        if name is None:
            if method == "GET":
                selector = Selector(query.get("labelSelector"), query.get("fieldSelector"))
                if query.get("watch", "").lower() in ("true", "1"):
                    self._watch(rtype, namespace, selector, query, version)
                    return
                items, rv = cluster.list_objects(rtype, namespace, selector, version)
                self._send(
                    200,
                    {
                        "apiVersion": rtype.api_version(version),
                        "kind": f"{rtype.kind}List",
                        "metadata": {"resourceVersion": str(rv)},
                        "items": items,
                    },
                )
            elif method == "POST":
                self._send(201, cluster.create(rtype, ns, self._body(), dry_run=dry_run))
            else:
                raise FakeApiError(
                    405, "MethodNotAllowed", f"the server does not allow {method} on a collection"
                )
            return
        if method == "GET":
            self._send(200, cluster.get(rtype, ns, name, version))
        elif method == "PUT":
            self._send(
                200, cluster.replace(rtype, ns, name, self._body(), status_only=status_only, dry_run=dry_run)
            )
        elif method == "PATCH":
            ctype = self.headers.get("Content-Type", "")
            self._send(
                200,
                cluster.patch(rtype, ns, name, ctype, self._body(), status_only=status_only, dry_run=dry_run),
            )
        elif method == "DELETE":
            self._body()  # DeleteOptions are accepted and ignored
            self._send(200, cluster.delete(rtype, ns, name, dry_run=dry_run))
        else:
            raise FakeApiError(405, "MethodNotAllowed", f"the server does not allow {method} on an object")

    def _watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        selector: Selector,
        query: Mapping[str, str],
        version: str,
    ) -> None:
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds {query.get('timeoutSeconds')!r}") from None
        events: Iterator[dict[str, Any]] = self.server.cluster.watch(
            rtype, namespace, selector, query.get("resourceVersion"), timeout, version
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json;stream=watch")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for event in events:
                self._chunk(json.dumps(event).encode() + b"\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # ------------------------------------------------------------ admin
    def _admin(self, path: str, query: Mapping[str, str]) -> None:
        cluster = self.server.cluster
        if path == "/_fake/requests" and self.command == "GET":
            self._send(200, [r.__dict__ for r in cluster.requests])
        elif path == "/_fake/requests" and self.command == "DELETE":
            cluster.clear_requests()
            self._send(200, {"cleared": True})
        elif path == "/_fake/faults" and self.command == "POST":
            body = self._body()
            if not isinstance(body, dict) or not {"kind", "namespace", "name"} <= body.keys():
                raise bad_request("POST /_fake/faults wants {kind, namespace, name, count, status}")
            try:
                cluster.fail_next(
                    str(body["kind"]),
                    str(body["namespace"]),
                    str(body["name"]),
                    int(body.get("count", 1)),
                    int(body.get("status", 409)),
                )
            except KeyError as exc:
                raise bad_request(str(exc)) from None
            self._send(200, {"armed": True})
        else:
            raise FakeApiError(404, "NotFound", f"no admin endpoint {self.command} {path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cluster: FakeCluster

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conn_lock:
            (self._connections.add if open_ else self._connections.discard)(conn)

    def drop_connections(self) -> None:
        """Shut open (keep-alive) connections so no client keeps talking to a stopped fake."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class KubeFake(LoopbackServer):
    """The fake as a context manager: serves on 127.0.0.1 in a background thread."""

    def __init__(self, port: int = 0, cluster: FakeCluster | None = None) -> None:
        self.cluster = cluster or FakeCluster()
        server = _Server((HOST, port))
        server.cluster = self.cluster
        super().__init__(server, thread_name="kubefake:{port}")
        self._fake = server

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop accepting, end open watches, close the socket. Idempotent."""
        self.cluster.close()
        super().stop()
        self._fake.drop_connections()


def kubeconfig_text(url: str, namespace: str = "default") -> str:
    """A kubeconfig pointing at the fake (token auth; the fake accepts anything)."""
    return (
        f'apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: "{url}"}}\n'
        f"users:\n- name: fake\n  user: {{token: simkit-fake}}\ncontexts:\n- name: fake\n"
        f"  context: {{cluster: fake, user: fake, namespace: {namespace}}}\ncurrent-context: fake\n"
    )


def load_manifest_files(cluster: FakeCluster, paths: Iterable[str]) -> list[str]:
    """Load multi-document YAML files into the fake; a problem is one SpecError/BackendError line."""
    from simkit.errors import Location, SpecError
    from simkit.spec.documents import load_yaml_documents

    loaded: list[str] = []
    for path in paths:
        for doc in load_yaml_documents(path):
            try:
                loaded.extend(cluster.load([doc.raw]))
            except FakeApiError as exc:
                raise SpecError(doc.where, None, exc.message) from None
            except Exception as exc:  # a malformed manifest (e.g. metadata not a mapping)
                raise SpecError(Location(path), None, f"cannot load: {exc}") from None
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simkit.live.kubefake", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--port-file", default=None, help="write the chosen port here once listening")
    parser.add_argument("--kubeconfig-file", default=None, help="write a kubeconfig for the fake here")
    parser.add_argument("--load", nargs="*", default=[], metavar="FILE", help="manifest files to create")
    args = parser.parse_args(argv)
    try:
        fake = KubeFake(args.port)
        loaded = load_manifest_files(fake.cluster, args.load)
    except SimkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2

    def on_term(signum: int, frame: object) -> None:
        fake.cluster.close()  # end open watches
        threading.Thread(target=fake._server.shutdown, daemon=True).start()  # not from serve_forever's thread

    signal.signal(signal.SIGTERM, on_term)
    for line in loaded:
        print(f"loaded {line}")
    if args.kubeconfig_file:
        write_text_atomic(args.kubeconfig_file, kubeconfig_text(fake.url))
    if args.port_file:
        write_text_atomic(args.port_file, f"{fake.port}\n")
    print(f"Kubernetes API fake listening on {fake.url}", flush=True)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
