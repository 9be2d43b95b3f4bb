"""``simkit serve``'s HTTP server: one threaded stdlib server on 127.0.0.1 for every endpoint.

=================================  ==========================================================
``GET /prometheus``, ``/metrics``  every simulated executor's counters (:mod:`.exposition`)
``GET /prometheus/<ns>/<pod>``     one pod's counters (pod names as ``kubernetes_pod_name``)
``GET /ready``, ``/live``          200, like the executor's kubelet probes
``GET /_serve/state``              JSON: sim time, current weights, per-predictor truth
data-plane paths                   :mod:`.dataplane` (predictions, feedback, health)
anything else                      404 ``404 page not found``, not counted
=================================  ==========================================================

One thread per connection (HTTP/1.1 keep-alive, so a Prometheus or a load tool reuses its
connection); a data-plane request blocks its thread until the simulated call completes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from simkit.loopback import HOST, LoopbackServer
from simkit.serve import exposition
from simkit.serve.dataplane import GO_TEXT, NOT_FOUND, DataPlane, Response
from simkit.serve.realtime import RealtimeWorld

_POD_PATH = re.compile(r"^/prometheus/(?P<ns>[^/]+)/(?P<pod>[^/]+)/?$")
MAX_BODY = 10 * 1024 * 1024


class ServeApp:
    """Everything the HTTP handlers need: the world in real time, the data plane, extra state."""

    def __init__(
        self, rt: RealtimeWorld, dataplane: DataPlane, kube_state: Callable[[], dict[str, str]] | None = None
    ) -> None:
        self.rt = rt
        self.dataplane = dataplane
        self.kube_state = kube_state

    def metrics(self, namespace: str | None = None, pod: str | None = None) -> Response:
        with self.rt.lock:
            predictors = [self.rt.world.predictors[k] for k in sorted(self.rt.world.predictors)]
            if pod is not None and not exposition.pod_exists(predictors, str(namespace), pod):
                return Response(404, NOT_FOUND, GO_TEXT)
            snap = exposition.snapshot(predictors, namespace, pod)
        return Response(200, exposition.render(snap).encode(), exposition.CONTENT_TYPE)

    def state(self) -> dict[str, Any]:
        with self.rt.lock:
            world = self.rt.world
            objects = []
            for kind, ns, name in world.store.keys():  # noqa: SIM118 - ObjectStore is not iterable
                if kind not in ("SeldonDeployment", "VirtualService"):
                    continue
                obj = world.store.get(kind, ns, name) or {}
                spec = obj.get("spec") or {}
                if kind == "SeldonDeployment":
                    weights = {str(p.get("name")): p.get("traffic", 0) for p in spec.get("predictors") or []}
                else:
                    http = (spec.get("http") or [{}])[0]
                    weights = {
                        str((r.get("destination") or {}).get("host")): r.get("weight")
                        for r in http.get("route") or []
                    }
                objects.append(
                    {
                        "kind": kind,
                        "namespace": ns,
                        "name": name,
                        "weights": weights,
                        "resourceVersion": (obj.get("metadata") or {}).get("resourceVersion"),
                    }
                )
            predictors = {
                key: {
                    "predictions": sim.truth.predictions,
                    "errors": sim.truth.errors,
                    "feedback": sim.truth.feedback,
                    "reward": sim.truth.reward,
                    "byCode": dict(sim.truth.by_code),
                }
                for key, sim in ((k, world.predictors[k]) for k in sorted(world.predictors))
            }
            now = world.now
        out: dict[str, Any] = {
            "simTime": now,
            "unixTime": self.rt.unix_of(now),
            "speed": self.rt.speed,
            "objects": objects,
            "predictors": predictors,
        }
        if self.kube_state is not None:
            out["kube"] = self.kube_state()
        return out

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        path = urlsplit(target).path
        if method == "GET":
            if path in ("/prometheus", "/metrics"):
                return self.metrics()
            m = _POD_PATH.match(path)
            if m is not None:
                return self.metrics(m["ns"], m["pod"])
            if path in ("/ready", "/live"):
                return Response(200, b"ok\n", GO_TEXT)
            if path == "/_serve/state":
                return Response(200, json.dumps(self.state(), indent=1, sort_keys=True).encode())
        answer = self.dataplane.handle(method, path, headers, body)
        return answer if answer is not None else Response(404, NOT_FOUND, GO_TEXT)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per scrape and prediction would drown the useful output

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(Response(413, b"request body too large\n", GO_TEXT))
            return
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.server.app.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug: answer 500 rather than drop the connection
            response = Response(500, f"simkit serve: internal error: {exc!r}\n".encode(), GO_TEXT)
        self._send(response)

    def _send(self, r: Response) -> None:
        self.send_response(r.status)
        if r.content_type:
            self.send_header("Content-Type", r.content_type)
        for name, value in r.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(r.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(r.body)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_PATCH = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: ServeApp


class HttpServer(LoopbackServer):
    """The server on 127.0.0.1:``port`` (0 = any free port), serving in a background thread."""

    def __init__(self, app: ServeApp, port: int = 0) -> None:
        server = _Server((HOST, port), _Handler)
        server.app = app
        super().__init__(server, thread_name="simkit-serve-http")
