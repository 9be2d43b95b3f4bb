"""What the Kubernetes API fake knows about resources: types, Status errors, admission, selectors.

Kept apart from the store (``kube_fakestore``) so that the rules a real cluster would enforce
(Status bodies the official client decodes, selector syntax) read in one place; admission
(Seldon's traffic webhook) is :func:`simkit.spec.seldon.admission_problem`, shared with the sim. Only the behaviour simkit's live mode and its tests rely on is modelled; everything else
answers the way kube-apiserver would for a CRD without a schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    """One API resource (a CRD or a core type) the fake serves."""

    group: str  # "" for the core group
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    custom: bool = True  # custom resources have no strategic merge patch (415), core types do

    @property
    def group_resource(self) -> str:
        """``seldondeployments.machinelearning.seldon.io`` (``secrets`` for core), as in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def discovery_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        return entry


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", ("v1",), "namespaces", "Namespace", namespaced=False, short_names=("ns",), custom=False),
    ResourceType("", ("v1",), "secrets", "Secret", custom=False),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", short_names=("cm",), custom=False),
    ResourceType("batch", ("v1",), "jobs", "Job", custom=False),
    ResourceType(
        "machinelearning.seldon.io",
        ("v1", "v1alpha2", "v1alpha3"),
        "seldondeployments",
        "SeldonDeployment",
        short_names=("sdep",),
    ),
    ResourceType(
        "networking.istio.io",
        ("v1beta1", "v1alpha3"),
        "virtualservices",
        "VirtualService",
        short_names=("vs",),
    ),
    ResourceType(
        "networking.istio.io",
        ("v1beta1", "v1alpha3"),
        "destinationrules",
        "DestinationRule",
        short_names=("dr",),
    ),
    ResourceType("iter8.tools", ("v2alpha2",), "experiments", "Experiment"),
    ResourceType("iter8.tools", ("v2alpha2",), "metrics", "Metric"),
)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake received (tests assert on these: "no PATCH was sent")."""

    method: str
    path: str
    query: str = ""
    content_type: str = ""


class FakeApiError(Exception):
    """An API failure, rendered as a Kubernetes ``Status`` body with the same HTTP code."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": rtype.group, "kind": rtype.plural}


def not_found(rtype: ResourceType, name: str) -> FakeApiError:
    return FakeApiError(404, "NotFound", f'{rtype.group_resource} "{name}" not found', _details(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> FakeApiError:
    return FakeApiError(
        409, "AlreadyExists", f'{rtype.group_resource} "{name}" already exists', _details(rtype, name)
    )


def conflict(rtype: ResourceType, name: str) -> FakeApiError:
    return FakeApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(rtype, name),
    )


def bad_request(message: str) -> FakeApiError:
    return FakeApiError(400, "BadRequest", message)


def invalid(
    rtype: ResourceType,
    name: str,
    field: str,
    message: str,
    *,
    group_label: str | None = None,
    webhook: str | None = None,
) -> FakeApiError:
    """422 Invalid as a validating webhook returns it (``group_label`` keeps Seldon's typo)."""
    group = group_label if group_label is not None else rtype.group
    text = f'{rtype.kind}.{group} "{name}" is invalid: {field}: Invalid value: {message}'
    if webhook:
        text = f'admission webhook "{webhook}" denied the request: {text}'
    return FakeApiError(
        422,
        "Invalid",
        text,
        {
            "name": name,
            "group": group,
            "kind": rtype.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        },
    )


def _gv_path(t: ResourceType, version: str) -> str:
    return "api/v1" if not t.group else f"apis/{t.group}/{version}"


def openapi_v3(types: list[ResourceType], path: list[str]) -> dict[str, Any] | None:
    """``/openapi/v3`` (the index) and ``/openapi/v3/api/v1``, ``/openapi/v3/apis/G/V`` (one
    group version): what ``kubectl apply`` reads before it writes; None for other paths.

    Every kind gets the schema of a CRD without one (an object that keeps unknown fields): the
    fake validates no field. Its PATCH operations list no ``fieldValidation`` parameter, so
    kubectl knows the server does no field validation (true) and validates on its side, with the
    schemas of ``/openapi/v2`` (:data:`OPENAPI_V2_PROTOBUF`: none)."""
    gvs = sorted({_gv_path(t, v) for t in types for v in t.versions})
    if path == []:
        return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash=simkit"} for gv in gvs}}
    gv = "/".join(path)
    if gv not in gvs:
        return None
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for t in types:
        for v in t.versions:
            if _gv_path(t, v) != gv:
                continue
            gvk = {"group": t.group, "version": v, "kind": t.kind}
            prefix = ".".join(reversed(t.group.split("."))) if t.group else "io.k8s.api.core"
            schemas[f"{prefix}.{v}.{t.kind}"] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-group-version-kind": [gvk],
            }
            scope = "/namespaces/{namespace}" if t.namespaced else ""
            paths[f"/{gv}{scope}/{t.plural}/{{name}}"] = {
                "patch": {
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [{"name": "dryRun", "in": "query", "schema": {"type": "string"}}],
                }
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (simkit fake)", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _protobuf_string(field: int, text: str) -> bytes:
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


# An OpenAPI v2 document (gnostic ``openapi_v2.Document``, which kubectl reads as protobuf) with
# ``swagger: "2.0"``, an ``info`` and no definitions: kubectl's client-side validation then finds no
# schema for any kind and checks nothing, which is what the fake enforces.
_INFO = _protobuf_string(1, "Kubernetes (simkit fake)") + _protobuf_string(2, "v1.31.0")
OPENAPI_V2_PROTOBUF = _protobuf_string(1, "2.0") + bytes([2 << 3 | 2, len(_INFO)]) + _INFO
OPENAPI_V2_MIME = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # as kube-apiserver answers


def _parse_requirements(selector: str, what: str) -> list[tuple[str, str, str | None]]:
    """``a=b,c!=d,e,!f`` -> [(key, op, value)] with op in ``=``, ``!=``, ``exists``, ``!exists``."""
    out: list[tuple[str, str, str | None]] = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        if "!=" in part:
            key, value = part.split("!=", 1)
            out.append((key.strip(), "!=", value.strip()))
        elif "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            out.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            out.append((part[1:].strip(), "!exists", None))
        elif " in " in part or " notin " in part or "(" in part:
            raise bad_request(
                f"unsupported {what} {part!r} (the simkit fake supports =, ==, != and existence)"
            )
        else:
            out.append((part, "exists", None))
    return out


def _matches(values: Mapping[str, str], reqs: list[tuple[str, str, str | None]]) -> bool:
    for key, op, value in reqs:
        present = key in values
        if (op == "=" and values.get(key) != value) or (op == "!=" and values.get(key) == value):
            return False
        if (op == "exists" and not present) or (op == "!exists" and present):
            return False
    return True


class Selector:
    """Label and field selectors of list/watch requests (equality-based; fields: name/namespace)."""

    def __init__(self, labels: str | None = None, fields: str | None = None) -> None:
        self._labels = _parse_requirements(labels or "", "label selector")
        self._fields = _parse_requirements(fields or "", "field selector")
        for key, _, _ in self._fields:
            if key not in ("metadata.name", "metadata.namespace"):
                raise bad_request(f'field label not supported: "{key}"')

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        fields = {
            "metadata.name": str(meta.get("name", "")),
            "metadata.namespace": str(meta.get("namespace", "")),
        }
        return _matches(labels, self._labels) and _matches(fields, self._fields)
