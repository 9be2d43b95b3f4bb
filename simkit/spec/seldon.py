"""SeldonDeployment (machinelearning.seldon.io/v1) and Istio VirtualService, as the sim needs them.

Only the fields that shape routing and metrics are typed; everything else a user's manifest
carries (componentSpecs, explainers, ...) is kept untouched, because manifests must stay
byte-for-byte what ``kubectl apply`` would take. The traffic rules are the validating webhook's
(seldon-v1.md §3.2): with more than one non-shadow predictor the traffic must sum to exactly 100,
a single predictor may have 0 or 100, at most one shadow, unique names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from simkit.spec.documents import Document, validate

SELDON_GROUP = "machinelearning.seldon.io"
ISTIO_GROUP = "networking.istio.io"
SELDON_VERSIONS = ("machinelearning.seldon.io/v1", "machinelearning.seldon.io/v1alpha2", "machinelearning.seldon.io/v1alpha3")
ISTIO_VERSIONS = ("networking.istio.io/v1beta1", "networking.istio.io/v1alpha3", "networking.istio.io/v1")

# Prepackaged server -> image the defaulting webhook adds (seldon-v1.md §1.3); the tag is the
# operator version, which the scenario may override.
SERVER_IMAGES = {
    "SKLEARN_SERVER": "seldonio/sklearnserver",
    "XGBOOST_SERVER": "seldonio/xgboostserver",
    "MLFLOW_SERVER": "seldonio/mlflowserver",
    "TENSORFLOW_SERVER": "tensorflow/serving",
    "TRITON_SERVER": "nvcr.io/nvidia/tritonserver",
    "HUGGINGFACE_SERVER": "seldonio/huggingfaceserver",
}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Graph(_Lenient):
    name: str
    implementation: str | None = None
    modelUri: str | None = None
    type: str | None = None
    children: list[Graph] = Field(default_factory=list)


class Predictor(_Lenient):
    name: str
    graph: Graph
    traffic: int = 0
    shadow: bool = False
    replicas: int | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    componentSpecs: list[dict[str, Any]] = Field(default_factory=list)

    def replica_count(self) -> int:
        if self.replicas is not None:
            return self.replicas
        for cs in self.componentSpecs:
            if isinstance(cs.get("replicas"), int):
                return int(cs["replicas"])
        return 1

    def model_image(self, default_tag: str) -> tuple[str, str]:
        """(model_image, model_version) labels of the client histogram for the graph's node."""
        for cs in self.componentSpecs:
            for c in (cs.get("spec") or {}).get("containers") or []:
                if c.get("name") == self.graph.name and c.get("image"):
                    image, _, tag = str(c["image"]).partition(":")
                    return image, tag
        image = SERVER_IMAGES.get(self.graph.implementation or "", "")
        return image, default_tag if image else ""


class SeldonDeploymentSpec(_Lenient):
    predictors: list[Predictor] = Field(min_length=1)
    protocol: str | None = None


class Metadata(_Lenient):
    name: str
    namespace: str | None = None


class SeldonDeployment(_Lenient):
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: SeldonDeploymentSpec


def check_traffic(predictors: list[Mapping[str, Any]]) -> str | None:
    """The webhook's traffic rules on raw predictor dicts; an error message or None."""
    names = [p.get("name") for p in predictors]
    if len(set(names)) != len(names):
        return "duplicate predictor names"
    shadows = [p for p in predictors if p.get("shadow")]
    if len(shadows) > 1:
        return "Multiple shadows are not allowed"
    live = [p for p in predictors if not p.get("shadow")]
    if not live:
        return "a shadow cannot be the only predictor"
    for p in predictors:
        t = p.get("traffic", 0)
        if not isinstance(t, int) or isinstance(t, bool) or t < 0 or t > 100:
            return f"traffic of predictor {p.get('name')!r} must be an integer in [0, 100]"
    total = sum(int(p.get("traffic", 0) or 0) for p in live)
    if len(live) > 1 and total != 100:
        return f"Traffic must sum to 100 for multiple predictors (got {total})"
    if len(live) == 1 and total not in (0, 100):
        return f"traffic of a single predictor must be 0 or 100 (got {total})"
    return None


def parse_seldon_deployment(doc: Document) -> SeldonDeployment:
    if doc.api_version not in SELDON_VERSIONS:
        raise doc.error("apiVersion", f"unsupported apiVersion {doc.api_version!r} for SeldonDeployment")
    sdep = validate(SeldonDeployment, doc.raw, doc.where)
    problem = check_traffic(doc.raw["spec"]["predictors"])
    if problem:
        raise doc.error("spec.predictors[*].traffic", problem)
    return sdep


class Destination(_Lenient):
    host: str
    subset: str | None = None


class RouteDestination(_Lenient):
    destination: Destination
    weight: int | None = None


class HTTPRoute(_Lenient):
    route: list[RouteDestination] = Field(default_factory=list)


class VirtualServiceSpec(_Lenient):
    hosts: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)


class VirtualService(_Lenient):
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: VirtualServiceSpec


def parse_virtual_service(doc: Document) -> VirtualService:
    if doc.api_version not in ISTIO_VERSIONS:
        raise doc.error("apiVersion", f"unsupported apiVersion {doc.api_version!r} for VirtualService")
    vs = validate(VirtualService, doc.raw, doc.where)
    if not vs.spec.http or not vs.spec.http[0].route:
        raise doc.error("spec.http[0].route", "a VirtualService the sim routes by needs at least one http route")
    problem = check_route_weights(doc.raw["spec"]["http"][0]["route"])
    if problem:
        raise doc.error("spec.http[0].route[*].weight", problem)
    return vs


def check_route_weights(routes: list[Mapping[str, Any]]) -> str | None:
    """Istio's rule: with several destinations, weights must sum to 100 (one may omit it only alone)."""
    weights = [r.get("weight") for r in routes]
    if len(routes) == 1:
        w = weights[0]
        return None if w in (None, 100, 0) else f"a single destination must have weight 100 (got {w})"
    for w in weights:
        if not isinstance(w, int) or isinstance(w, bool) or w < 0 or w > 100:
            return f"every destination needs an integer weight in [0, 100] (got {w!r})"
    total = sum(int(w or 0) for w in weights)
    return None if total == 100 else f"route weights must sum to 100 (got {total})"


def parse_host(host: str, default_namespace: str) -> tuple[str, str]:
    """``iris-default.ns-baseline.svc.cluster.local`` -> (namespace, service name)."""
    parts = host.split(".")
    if len(parts) >= 2:
        return parts[1], parts[0]
    return default_namespace, parts[0]

