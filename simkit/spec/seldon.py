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
from simkit.spec.pointers import INT32

SELDON_GROUP = "machinelearning.seldon.io"
ISTIO_GROUP = "networking.istio.io"
SELDON_VERSIONS = (
    "machinelearning.seldon.io/v1",
    "machinelearning.seldon.io/v1alpha2",
    "machinelearning.seldon.io/v1alpha3",
)
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
    traffic: int | None = None
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


def check_traffic(predictors: Any) -> str | None:
    """Seldon v1's validating webhook (``checkTraffic``/``validateShadow``, seldon-v1.md §3.2) plus
    the CRD schema (``traffic`` is an int32); the webhook's message, or None when admissible.

    The one rule for every writer: manifests the sim loads, the sim's object store, and the
    Kubernetes API fake's webhook all call this. As in the cluster, an omitted or ``null``
    ``traffic`` is 0 (the API server prunes the null, Go decodes the rest as 0), and the webhook
    checks only the sum of non-shadow traffic, so ``[-5, 105]`` is admitted (the sim's router
    gives a non-positive weight no traffic)."""
    if not isinstance(predictors, list):
        return "spec.predictors: Required value"
    names: set[str] = set()
    shadows = total = normal = 0
    for p in predictors:
        if not isinstance(p, Mapping):
            return "predictors must be objects"
        name = str(p.get("name", ""))
        if name in names:
            return f"Duplicate predictor name: {name}"
        names.add(name)
        traffic = p.get("traffic")
        traffic = 0 if traffic is None else traffic
        if not isinstance(traffic, int) or isinstance(traffic, bool) or not INT32[0] <= traffic <= INT32[1]:
            return f"Traffic of predictor {name} must be an int32, got {traffic!r}"
        if p.get("shadow"):
            shadows += 1
            if not 0 <= traffic <= 100:
                return "Shadow traffic must be between 0 and 100"
            continue
        normal += 1
        total += traffic
    if shadows > 1:
        return "Multiple shadows are not allowed"
    if shadows and normal == 0:
        return "Shadow can not exist alone"
    if normal > 1 and total != 100:
        return f"Traffic must sum to 100 for multiple predictors (got {total})"
    if normal == 1 and total not in (0, 100):
        return f"Traffic must be 100 for a single predictor when set (got {total})"
    return None


def admission_problem(obj: Mapping[str, Any]) -> str | None:
    """What a cluster's admission says about a SeldonDeployment or a VirtualService (None =
    accepted); other kinds have no rules here."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    if kind == "SeldonDeployment":
        return check_traffic(spec.get("predictors"))
    if kind == "VirtualService":
        http = spec.get("http") or []
        if (
            isinstance(http, list)
            and http
            and isinstance(http[0], Mapping)
            and isinstance(http[0].get("route"), list)
        ):
            return check_route_weights(http[0]["route"])
    return None


def parse_seldon_deployment(doc: Document) -> SeldonDeployment:
    if doc.api_version not in SELDON_VERSIONS:
        raise doc.error("apiVersion", f"unsupported apiVersion {doc.api_version!r} for SeldonDeployment")
    sdep = validate(SeldonDeployment, doc.raw, doc.where)
    problem = check_traffic(doc.raw["spec"]["predictors"])  # the cluster's admission, shared with the fake
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
        raise doc.error(
            "spec.http[0].route", "a VirtualService the sim routes by needs at least one http route"
        )
    problem = check_route_weights(doc.raw["spec"]["http"][0]["route"])
    if problem:
        raise doc.error("spec.http[0].route[*].weight", problem)
    return vs


def check_route_weights(routes: list[Mapping[str, Any]]) -> str | None:
    """Istio's rule: with several destinations, weights (omitted = 0) must sum to 100."""
    weights = [r.get("weight") if isinstance(r, Mapping) else "not an object" for r in routes]
    if len(routes) == 1:
        w = weights[0]
        return None if w in (None, 100, 0) else f"a single destination must have weight 100 (got {w})"
    ints: list[int] = []
    for w in (0 if w is None else w for w in weights):  # an omitted weight is 0 in Istio's API
        if not isinstance(w, int) or isinstance(w, bool) or w < 0 or w > 100:
            return f"every destination needs an integer weight in [0, 100] (got {w!r})"
        ints.append(w)
    total = sum(ints)
    return None if total == 100 else f"route weights must sum to 100 (got {total})"


def parse_host(host: str, default_namespace: str) -> tuple[str, str]:
    """``iris-default.ns-baseline.svc.cluster.local`` -> (namespace, service name)."""
    parts = host.split(".")
    if len(parts) >= 2:
        return parts[1], parts[0]
    return default_namespace, parts[0]
