"""Following a Kubernetes API: the simulated routers take their weights from the cluster's objects.

With ``--kube-url``, ``simkit serve`` polls the SeldonDeployments and VirtualServices of its scenario
(``GET /apis/<group>/<version>/namespaces/<ns>/<plural>/<name>``) every ``interval`` seconds and,
whenever an object's ``metadata.resourceVersion`` changes, replaces the world's copy in its object
store (in the driver thread, so the next simulated or HTTP request is routed by it). This is how
``simkit live`` patching the API (the fake in :mod:`simkit.live.kubefake`, or a real cluster)
moves the simulated traffic. Polling rather than watching: it needs nothing but plain GETs,
survives API restarts without bookkeeping, and 250 ms is far below any experiment's interval.

An object the API does not have keeps the scenario's copy (logged once); an unreachable API is
logged once per outage; an object the sim's admission rejects (traffic not summing to 100) is
logged and skipped, as a real webhook would have refused it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from simkit.serve.realtime import RealtimeWorld
from simkit.sim.engine import AnyWorld
from simkit.sim.objects import PatchError
from simkit.spec.bundle import Bundle

DEFAULT_INTERVAL = 0.25
SELDON_PATHS = ("machinelearning.seldon.io/v1",)
ISTIO_VERSIONS = ("networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Followed:
    """One object to follow and the API paths to try for it, in order."""

    kind: str
    namespace: str
    name: str
    paths: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _paths(api_versions: Sequence[str], plural: str, namespace: str, name: str) -> tuple[str, ...]:
    return tuple(f"/apis/{v}/namespaces/{namespace}/{plural}/{name}" for v in dict.fromkeys(api_versions))


def followed_objects(bundle: Bundle) -> list[Followed]:
    """The scenario's SeldonDeployments and VirtualServices, with the manifest's apiVersion first."""
    out: list[Followed] = []
    for (ns, name), (sdep, _) in sorted(bundle.seldon.items()):
        out.append(
            Followed(
                "SeldonDeployment",
                ns,
                name,
                _paths((sdep.apiVersion, *SELDON_PATHS), "seldondeployments", ns, name),
            )
        )
    for (ns, name), (vs, _) in sorted(bundle.virtual_services.items()):
        out.append(
            Followed(
                "VirtualService",
                ns,
                name,
                _paths((vs.apiVersion, *ISTIO_VERSIONS), "virtualservices", ns, name),
            )
        )
    return out


class KubeFollower:
    """A thread that polls the API and applies changed objects to the world's object store."""

    def __init__(
        self,
        rt: RealtimeWorld,
        base_url: str,
        objects: Sequence[Followed],
        interval: float = DEFAULT_INTERVAL,
        log: Log = print,
        timeout: float = 2.0,
    ) -> None:
        self.rt = rt
        self.objects = list(objects)
        self.interval = interval
        self.log = log
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.versions: dict[str, str] = {}  # label -> last applied resourceVersion
        self.state: dict[str, str] = {label: "pending" for label in (o.label for o in self.objects)}
        self._said: set[str] = set()
        self.applied = 0

    def snapshot_state(self) -> dict[str, str]:
        """What is being followed and how (for ``/_serve/state``)."""
        return dict(self.state)

    def start(self) -> KubeFollower:
        self.poll_once()  # the first answer is in before the server listens
        self._thread = threading.Thread(target=self._run, name="simkit-serve-kube", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._client.close()

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.log(message)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()

    def poll_once(self) -> None:
        """One GET per followed object; changed ones are applied in the driver thread."""
        for obj in self.objects:
            if self._stop.is_set():
                return
            try:
                found = self._fetch(obj)
            except httpx.HTTPError as exc:
                self.state[obj.label] = "unreachable"
                self._say_once(
                    "unreachable",
                    f"kube API {self._client.base_url} unreachable ({exc}); keeping current weights",
                )
                continue
            self._said.discard("unreachable")
            if found is None:
                self.state[obj.label] = "missing"
                self._say_once(
                    f"missing:{obj.label}",
                    f"{obj.label} not found in the kube API; keeping the scenario's copy",
                )
                continue
            self._said.discard(f"missing:{obj.label}")
            version = str((found.get("metadata") or {}).get("resourceVersion", ""))
            if self.versions.get(obj.label) == version and version:
                continue
            self._apply(obj, found, version)

    def _fetch(self, obj: Followed) -> dict[str, Any] | None:
        for path in obj.paths:
            response = self._client.get(path)
            if response.status_code == 404:
                continue
            response.raise_for_status()
            body = response.json()
            if isinstance(body, dict):
                return body
        return None

    def _apply(self, obj: Followed, found: dict[str, Any], version: str) -> None:
        doc = {**found, "kind": found.get("kind") or obj.kind}

        def job(world: AnyWorld) -> None:
            world.store.apply(doc, source=f"kube:{version}")

        try:
            self.rt.submit(job).result(timeout=10)
        except PatchError as exc:
            self._say_once(
                f"rejected:{obj.label}:{version}", f"{obj.label} resourceVersion {version} not applied: {exc}"
            )
            self.versions[obj.label] = version
            return
        except Exception:  # the driver stopped (cancelled) or is stuck: try again next poll
            return
        self.versions[obj.label] = version
        self.state[obj.label] = f"following (resourceVersion {version})"
        self.applied += 1
        self.log(f"{obj.label}: applied resourceVersion {version} from the kube API")
