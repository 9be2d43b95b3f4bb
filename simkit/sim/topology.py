"""What both engines build the same way: the epoch, when the world begins, each predictor's pods,
service names, and the scrape schedule. Keeping it here is what makes the two engines write the
same series names, labels and timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from simkit.errors import SpecError
from simkit.sim.executor_metrics import PodIdentity
from simkit.sim.objects import ObjectStore
from simkit.spec.bundle import Bundle
from simkit.spec.scenario import Behaviour
from simkit.spec.seldon import Predictor, parse_host

T = TypeVar("T")


def parse_epoch(text: str, bundle: Bundle) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SpecError(bundle.scenario_doc.where, "spec.start", f"not an RFC 3339 time: {text!r}") from None


def world_begin(bundle: Bundle) -> float:
    """The first sim time anything happens: the earliest load start or event, and never after 0."""
    spec = bundle.scenario.spec
    return min([ld.start for ld in spec.load] + [ev.at for ev in spec.events] + [0.0])


@dataclass(frozen=True)
class PredictorSetup:
    key: str
    behaviour: Behaviour  # replicas filled in from the manifest when the scenario leaves it unset
    pods: list[PodIdentity]
    service: str  # ns/<sdep>-<predictor>, the Kubernetes Service a VirtualService routes to


def predictor_setup(
    bundle: Bundle, store: ObjectStore, key: str, behaviour: Behaviour | None = None
) -> PredictorSetup | None:
    """The pods of predictor ``ns/sdep/predictor`` as the manifests (or the live object) define it;
    None when neither knows the predictor."""
    ns, name, pname = key.split("/")
    entry = bundle.seldon.get((ns, name))
    obj = store.get("SeldonDeployment", ns, name) or {}
    raw_pred = next(
        (p for p in (obj.get("spec") or {}).get("predictors") or [] if p.get("name") == pname), None
    )
    if raw_pred is None and entry is None:
        return None
    if raw_pred is not None:
        pred = Predictor.model_validate(raw_pred)
    else:
        assert entry is not None
        found = next((p for p in entry[0].spec.predictors if p.name == pname), None)
        if found is None:
            return None
        pred = found
    b = behaviour or bundle.behaviour(key)
    image, version = pred.model_image(b.modelVersion)
    targets = tuple(sorted(bundle.scenario.spec.prometheus.targetLabels.items()))
    replicas = b.replicas if b.replicas is not None else pred.replica_count()
    pods = [
        PodIdentity(
            ns, name, pname, pred.annotations.get("version", ""), pred.graph.name, image, version, r, targets
        )
        for r in range(max(replicas, 1))
    ]
    return PredictorSetup(key, b.model_copy(update={"replicas": replicas}), pods, f"{ns}/{name}-{pname}")


def predictor_key(bundle: Bundle, services: dict[str, str], key: str) -> str | None:
    """``ns/sdep/predictor`` for a lookup key: that key itself, or ``@service:ns/svc``'s predictor."""
    if key.startswith("@service:"):
        return service_predictor(bundle, services, key[len("@service:") :])
    return key


def service_predictor(bundle: Bundle, services: dict[str, str], svc: str) -> str | None:
    """The predictor key behind Kubernetes Service ``ns/name`` (``<sdep>-<predictor>``)."""
    real = services.get(svc)
    if real is not None:
        return real
    ns, _, service = svc.partition("/")
    for (sns, sname), _ in bundle.seldon.items():
        if sns == ns and service.startswith(sname + "-"):
            real = f"{ns}/{sname}/{service[len(sname) + 1 :]}"
    return real


def scrape_times(bundle: Bundle, begin: float) -> Iterator[float]:
    """Scrape instants ``offset + k * interval`` (sim time), the first at or after ``begin``."""
    prom = bundle.scenario.spec.prometheus
    k = math.ceil((begin - prom.scrapeOffset) / prom.scrapeInterval)
    while True:
        yield prom.scrapeOffset + k * prom.scrapeInterval
        k += 1


def grown_pods(pods: list[PodIdentity], n: int) -> list[PodIdentity]:
    """``pods`` extended to ``n`` replicas (a scale-up event adds pods with the next indices)."""
    out = list(pods)
    while len(out) < n:
        out.append(PodIdentity(**{**out[0].__dict__, "replica": len(out)}))
    return out


def routes(
    obj: Mapping[str, Any] | None, kind: str, namespace: str, name: str, lookup: Callable[[str], T | None]
) -> tuple[list[tuple[float, T]], list[T]]:
    """The weighted targets (weight > 0, in order) and the shadows of a router object.

    ``kind`` is ``SeldonDeployment`` (predictors' ``traffic``, shadows mirrored, a lone predictor
    with traffic unset gets everything) or ``VirtualService`` (``http[0].route`` weights, a lone
    route without a weight gets everything). Both engines route with this one rule.
    """
    weighted: list[tuple[float, T]] = []
    shadows: list[T] = []
    spec = (obj or {}).get("spec") or {}
    if kind == "SeldonDeployment":
        for p in spec.get("predictors") or []:
            target = lookup(f"{namespace}/{name}/{p.get('name')}")
            if target is None:
                continue
            if p.get("shadow"):
                shadows.append(target)
            else:
                weighted.append((float(p.get("traffic") or 0), target))
        if len(weighted) == 1 and weighted[0][0] == 0:
            weighted = [(100.0, weighted[0][1])]
    else:
        http = spec.get("http") or [{}]
        route = http[0].get("route") or []
        for r in route:
            ns, svc = parse_host(str((r.get("destination") or {}).get("host", "")), namespace)
            target = lookup(f"@service:{ns}/{svc}")
            if target is not None:
                weight = r.get("weight")
                weighted.append((100.0 if weight is None and len(route) == 1 else float(weight or 0), target))
    return [(w, t) for w, t in weighted if w > 0], shadows
