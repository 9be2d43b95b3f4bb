"""The Seldon v1 prediction and feedback API of the simulated world (seldon-v1.md §2).

Paths (``VER`` is ``v1.0`` or ``v0.1``; ``ENDPOINT`` is ``predictions`` or ``feedback`` (POST), or
``health/status`` / ``status`` (GET, ``v1.0`` only)):

=====================================================  =============================================
``/seldon/<ns>/<sdep>/api/VER/ENDPOINT``                the ingress: split by the SeldonDeployment's
                                                        current traffic, the shadow gets a copy
``/vs/<ns>/<virtualservice>/api/VER/ENDPOINT``          an Istio VirtualService: split by its
                                                        ``http[0]`` route weights
``/direct/<ns>/<sdep>/<predictor>/api/VER/ENDPOINT``    one predictor, no split (what
                                                        ``<sdep>-<predictor>.<ns>:8000/api/...`` is)
``/service/<ns>/<service>/api/VER/ENDPOINT``            the same by Service name (``iris-baseline``)
=====================================================  =============================================

A call is injected into the simulation at the current sim time: it queues for the predictor's
workers like any simulated request, is recorded in the same histograms, gets its status code from
the predictor's error model, and the HTTP response is sent when the simulated executor answers
(sim time mapped to wall time at ``--speed``). Responses follow the real servers: sklearn-like
probabilities or an xgboost-like label (by ``graph.implementation``), the §2.4 error bodies, and a
``Seldon-Puid`` header (the request's, or one derived from the seed and a counter).

Not counted in the metrics, as in a cluster: unknown paths (404), unknown deployments (Istio's
404), a split with no weight (Envoy's 503), and requests rejected before the model is called here
(a body that is not JSON or has no iris rows: 400 with ``MICROSERVICE_BAD_DATA``; the real wrapper
would count that 400). Health checks answer 200 without touching the simulation.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from simkit.serve import models
from simkit.serve.realtime import Completion, RealtimeWorld
from simkit.sim.deployment import Router
from simkit.sim.engine import AnyPredictor, AnyWorld
from simkit.spec.streams import child_rng

_API = r"/api/(?P<ver>v1\.0|v0\.1)/(?P<endpoint>predictions|feedback|health/status|status)"
_ROUTES = (
    ("ingress", re.compile(r"^/seldon/(?P<ns>[^/]+)/(?P<name>[^/]+)" + _API + "$")),
    ("vs", re.compile(r"^/vs/(?P<ns>[^/]+)/(?P<name>[^/]+)" + _API + "$")),
    ("direct", re.compile(r"^/direct/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<predictor>[^/]+)" + _API + "$")),
    ("service", re.compile(r"^/service/(?P<ns>[^/]+)/(?P<name>[^/]+)" + _API + "$")),
)
JSON = "application/json"
GO_TEXT = "text/plain; charset=utf-8"  # error paths write the header before Content-Type
NOT_FOUND = b"404 page not found\n"  # gorilla/mux's text (and what a client sees from Istio)


@dataclass(frozen=True)
class Target:
    kind: str  # ingress | vs | direct | service
    namespace: str
    name: str
    predictor: str | None
    endpoint: str  # predictions | feedback | health


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] = field(default=())


def parse_path(path: str) -> Target | None:
    """The data-plane target of a URL path (query string already removed), or None."""
    for kind, pattern in _ROUTES:
        m = pattern.match(path)
        if m is None:
            continue
        endpoint = m["endpoint"]
        if endpoint in ("health/status", "status"):
            if m["ver"] != "v1.0":
                return None
            endpoint = "health"
        return Target(kind, m["ns"], m["name"], m.groupdict().get("predictor"), endpoint)
    return None


def error_body(code: int, info: str) -> bytes:
    """The Python wrapper's error shape (seldon-v1.md §2.4): 4xx bad data, otherwise internal."""
    reason = "MICROSERVICE_BAD_DATA" if 400 <= code < 500 else "MICROSERVICE_INTERNAL_ERROR"
    return json.dumps({"status": {"status": 1, "info": info, "code": -1, "reason": reason}}).encode()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Routed:
    """Where the driver sent a call: the main call's completion, and the model's identity."""

    call: Future[Completion] | None
    status: int  # 0 when routed; else 404 (no such target) or 503 (no weight anywhere)
    implementation: str | None = None
    request_path: Mapping[str, str] = field(default_factory=dict)


class DataPlane:
    """Answers data-plane requests by injecting them into a :class:`RealtimeWorld`."""

    def __init__(self, rt: RealtimeWorld, seed: int, timeout: float = 120.0) -> None:
        self.rt = rt
        self.seed = seed
        self.timeout = timeout
        self._routers: dict[str, Router] = {}  # driver thread only
        self._puid_lock = threading.Lock()
        self._puids = 0

    def next_puid(self) -> str:
        """A UUID4-shaped id, deterministic in (seed, request number)."""
        with self._puid_lock:
            self._puids += 1
            n = self._puids
        digest = hashlib.sha256(f"simkit-serve/{self.seed}/{n}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    # --- driver-thread side -------------------------------------------------------------------
    def _router(self, world: AnyWorld, kind: str, ns: str, name: str) -> Router[AnyPredictor]:
        key = f"{kind}:{ns}/{name}"
        r = self._routers.get(key)
        if r is None:
            r = self._routers[key] = Router(
                world.store, child_rng(world.seed, "serve-router", key), world.lookup, kind, ns, name
            )
        return r

    def _pick(self, world: AnyWorld, t: Target) -> tuple[int, AnyPredictor | None, list[AnyPredictor]]:
        if t.kind in ("ingress", "vs"):
            kind = "SeldonDeployment" if t.kind == "ingress" else "VirtualService"
            if world.store.get(kind, t.namespace, t.name) is None:
                return 404, None, []
            sim, shadows = self._router(world, kind, t.namespace, t.name).pick()
            return (503 if sim is None else 0), sim, list(shadows)
        key = (
            f"{t.namespace}/{t.name}/{t.predictor}"
            if t.kind == "direct"
            else f"@service:{t.namespace}/{t.name}"
        )
        sim = world.lookup(key)
        return (404 if sim is None else 0), sim, []

    @staticmethod
    def _identity(world: AnyWorld, sim: AnyPredictor) -> tuple[str | None, dict[str, str]]:
        ns, sdep, pname = sim.key.split("/")
        obj = world.store.get("SeldonDeployment", ns, sdep) or {}
        pred: dict[str, Any] = next(
            (p for p in (obj.get("spec") or {}).get("predictors") or [] if p.get("name") == pname), {}
        )
        graph = pred.get("graph") or {}
        ident = sim.pods[0].pod
        image = f"{ident.model_image}:{ident.model_version}" if ident.model_image else ""
        return graph.get("implementation"), {str(graph.get("name") or ident.model_name): image}

    def _route(self, t: Target, kind: str | None, reward: float | None) -> Routed:
        def job(world: AnyWorld) -> Routed:
            status, sim, shadows = self._pick(world, t)
            if sim is None:
                return Routed(None, status or 404)
            implementation, request_path = self._identity(world, sim)
            if kind is None:  # health: answered by the executor, nothing to simulate
                return Routed(None, 0, implementation, request_path)
            for shadow in shadows:
                self.rt.start_call(shadow, kind, reward)
            return Routed(self.rt.start_call(sim, kind, reward), 0, implementation, request_path)

        return self.rt.submit(job).result(timeout=self.timeout)

    # --- HTTP-thread side ---------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response | None:
        """The response for a data-plane request; None if the path is not a data-plane path."""
        target = parse_path(path)
        if target is None:
            return None
        wanted = "GET" if target.endpoint == "health" else "POST"
        if method != wanted:
            return Response(405, b"", None)
        puid = headers.get("seldon-puid") or self.next_puid()
        try:
            response = self._answer(target, body)
        except (CancelledError, FutureTimeout):
            response = Response(503, b"simkit serve: the simulation is not running\n", GO_TEXT)
        return Response(response.status, response.body, response.content_type, (("Seldon-Puid", puid),))

    def _answer(self, t: Target, body: bytes) -> Response:
        if t.endpoint == "health":
            routed = self._route(t, None, None)
            if routed.status:
                return _unrouted(routed.status)
            return Response(
                200,
                _dumps({"data": {"tensor": {"shape": [0]}}, "meta": {"requestPath": routed.request_path}}),
            )
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return Response(400, error_body(400, "Can't find JSON in data"), GO_TEXT)
        if t.endpoint == "feedback":
            reward = payload.get("reward")
            if reward is not None and (not isinstance(reward, int | float) or isinstance(reward, bool)):
                return Response(400, error_body(400, "reward must be a number"), GO_TEXT)
            return self._call(t, "feedback", float(reward) if reward is not None else None, payload)
        try:
            container, rows = models.input_rows(payload.get("data"))
        except models.BadInput as exc:
            return Response(400, error_body(400, str(exc)), GO_TEXT)
        payload = {**payload, "_container": container, "_rows": rows}
        return self._call(t, "predict", None, payload)

    def _call(self, t: Target, kind: str, reward: float | None, payload: dict[str, Any]) -> Response:
        routed = self._route(t, kind, reward)
        if routed.status or routed.call is None:
            return _unrouted(routed.status)
        done = routed.call.result(timeout=self.timeout)
        if done.code != "200":
            code = int(done.code)
            info = f"simulated error {done.code} from the error model of predictor {done.predictor}"
            return Response(code, error_body(code, info), GO_TEXT)
        meta: dict[str, Any] = {"requestPath": dict(routed.request_path)}
        req_meta = payload.get("meta")
        if isinstance(req_meta, dict) and req_meta.get("puid"):
            meta = {"puid": req_meta["puid"], **meta}
        if kind == "feedback":
            return Response(200, _dumps({"data": {"tensor": {"shape": [0]}}, "meta": meta}))
        data = models.predict(routed.implementation, payload["_container"], payload["_rows"])
        return Response(200, _dumps({"data": data, "meta": meta}))


def _unrouted(status: int) -> Response:
    if status == 503:
        return Response(503, b"no healthy upstream", GO_TEXT)
    return Response(404, NOT_FOUND, GO_TEXT)
