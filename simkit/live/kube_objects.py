"""Reading and patching Kubernetes objects by apiVersion/kind through the official client.

Live mode addresses objects the way a manifest does (``machinelearning.seldon.io/v1``,
``SeldonDeployment``), while the client wants group/version/plural. Known kinds come from a
built-in table; anything else is looked up once through API discovery. Every request carries a
timeout, and every failure becomes one :class:`~simkit.errors.BackendError` line that names the
object (``SeldonDeployment ns-production/iris not found (weightObjRef of version iris-v2)``),
never a client traceback.

JSON patches are sent with ``_content_type="application/json-patch+json"``: the client (33 and
37) otherwise labels a list body as a merge patch, which a real apiserver rejects
(``live-infra.md`` §2).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes
import urllib3
from kubernetes.client import ApiClient, ApiException

from simkit.errors import BackendError, ConflictError
from simkit.ports import ObjectRef

DEFAULT_TIMEOUT = 10.0
JSON_PATCH = "application/json-patch+json"

# (group, kind) -> plural, for the kinds simkit meets; others go through discovery
KNOWN_PLURALS: dict[tuple[str, str], str] = {
    ("machinelearning.seldon.io", "SeldonDeployment"): "seldondeployments",
    ("networking.istio.io", "VirtualService"): "virtualservices",
    ("networking.istio.io", "DestinationRule"): "destinationrules",
    ("iter8.tools", "Experiment"): "experiments",
    ("iter8.tools", "Metric"): "metrics",
    ("serving.kserve.io", "InferenceService"): "inferenceservices",
    ("serving.kubeflow.org", "InferenceService"): "inferenceservices",
    ("split.smi-spec.io", "TrafficSplit"): "trafficsplits",
    ("", "ConfigMap"): "configmaps",
    ("", "Secret"): "secrets",
    ("", "Service"): "services",
}


class NotFound(BackendError):
    """The object (or its kind) does not exist in the cluster."""


def load_kube_client(kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient for a kubeconfig (default: $KUBECONFIG, then ~/.kube/config; in a pod, the
    service account). A missing or invalid kubeconfig is one BackendError line."""
    from kubernetes import config

    cfg = kubernetes.client.Configuration()
    default_path = os.path.expanduser("~/.kube/config")
    if (
        kubeconfig is None
        and not os.environ.get("KUBECONFIG")
        and not os.path.exists(default_path)
        and os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException as exc:
            raise BackendError(f"in-cluster Kubernetes configuration: {exc}") from None
        return ApiClient(cfg)
    where = kubeconfig or os.environ.get("KUBECONFIG") or default_path
    paths = [p for p in where.split(os.pathsep) if p]
    if not any(os.path.isfile(os.path.expanduser(p)) for p in paths):
        hint = "" if kubeconfig else " (pass --kubeconfig or set KUBECONFIG)"
        raise BackendError(f"kubeconfig {where} not found{hint}")
    try:
        config.load_kube_config(
            config_file=os.path.expanduser(where) if kubeconfig else where,
            context=context,
            client_configuration=cfg,
            persist_config=False,
        )
    except config.ConfigException as exc:
        raise BackendError(f"kubeconfig {where}: {_one_line(str(exc))}") from None
    except Exception as exc:  # malformed YAML or structure: the loader raises whatever it meets
        raise BackendError(f"kubeconfig {where} is not a valid kubeconfig: {_one_line(str(exc))}") from None
    return ApiClient(cfg)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _status_message(exc: ApiException) -> str:
    """The apiserver's Status message, or the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return _one_line(str(body["message"]))
    except ValueError:
        pass
    return _one_line(str(exc.reason or "no reason given"))


def _transport_reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    for known in ("Connection refused", "timed out", "Name or service not known", "Connection reset"):
        if known.lower() in text.lower():
            return known.lower()
    return _one_line(text.rsplit(": ", 1)[-1])


class KubeObjects:
    """Objects as plain dicts, addressed by :class:`ObjectRef`; errors are BackendError lines."""

    def __init__(
        self, api_client: ApiClient, default_namespace: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.api_client = api_client
        self.default_namespace = default_namespace
        self.timeout = timeout
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._plurals: dict[tuple[str, str, str], str] = {}

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def ref(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> ObjectRef:
        return ObjectRef(api_version, kind, namespace or self.default_namespace, name)

    def _with_namespace(self, obj: ObjectRef) -> ObjectRef:
        return (
            obj if obj.namespace else ObjectRef(obj.api_version, obj.kind, self.default_namespace, obj.name)
        )

    # ------------------------------------------------------------ addressing
    def plural(self, obj: ObjectRef, purpose: str = "") -> tuple[str, str, str]:
        """(group, version, plural) for an object's apiVersion/kind; discovery for unknown kinds."""
        group, _, version = obj.api_version.rpartition("/")
        known = KNOWN_PLURALS.get((group, obj.kind))
        if known is not None:
            return group, version, known
        cache_key = (group, version, obj.kind)
        if cache_key not in self._plurals:
            try:
                if group:
                    listing = self._custom.get_api_resources(group, version, _request_timeout=self.timeout)
                else:
                    listing = self._core.get_api_resources(_request_timeout=self.timeout)
            except ApiException as exc:
                if exc.status == 404:
                    raise NotFound(
                        f"the cluster serves no apiVersion {obj.api_version}{_for(purpose)}"
                    ) from None
                raise self._error(exc, obj, purpose, "discover") from None
            except urllib3.exceptions.HTTPError as exc:
                raise self._unreachable(exc) from None
            for res in listing.resources or []:
                if "/" not in res.name:
                    self._plurals[(group, version, res.kind)] = res.name
            if cache_key not in self._plurals:
                raise NotFound(f"the cluster serves no kind {obj.kind} in {obj.api_version}{_for(purpose)}")
        return group, version, self._plurals[cache_key]

    # ------------------------------------------------------------ requests
    def _unreachable(self, exc: Exception) -> BackendError:
        return BackendError(f"cannot reach the Kubernetes API at {self.host}: {_transport_reason(exc)}")

    def _error(self, exc: ApiException, obj: ObjectRef, purpose: str, verb: str) -> BackendError:
        msg = _status_message(exc)
        if exc.status == 404:
            return NotFound(f"{obj} not found{_for(purpose)}")
        if exc.status == 409:
            return ConflictError(f"{obj}: conflict (HTTP 409) on {verb}{_for(purpose)}: {msg}")
        if exc.status in (401, 403):
            return BackendError(f"{obj}: not allowed to {verb} (HTTP {exc.status}){_for(purpose)}: {msg}")
        if exc.status == 422:
            return BackendError(f"{obj} rejected the {verb} (HTTP 422){_for(purpose)}: {msg}")
        return BackendError(f"{obj}: {verb} failed (HTTP {exc.status}){_for(purpose)}: {msg}")

    def _raw(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        """A request on a core (``/api/v1``) path, which CustomObjectsApi cannot address."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = self.api_client.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.api_client.call_api(*request, _request_timeout=self.timeout)
        response.read()
        return self.api_client.response_deserialize(response, {"200": "object", "201": "object"}).data

    def get(self, obj: ObjectRef, purpose: str = "") -> dict[str, Any]:
        """The object as a dict; NotFound/BackendError naming it (and ``purpose``) otherwise."""
        obj = self._with_namespace(obj)
        group, version, plural = self.plural(obj, purpose)
        try:
            if group:
                out = self._custom.get_namespaced_custom_object(
                    group, version, obj.namespace, plural, obj.name, _request_timeout=self.timeout
                )
            else:
                out = self._raw("GET", f"/api/{version}/namespaces/{obj.namespace}/{plural}/{obj.name}")
        except ApiException as exc:
            raise self._error(exc, obj, purpose, "read") from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from None
        if not isinstance(out, dict):
            raise BackendError(
                f"{obj}: the Kubernetes API answered with a {type(out).__name__}, not an object"
            )
        return out

    def json_patch(
        self, obj: ObjectRef, ops: Sequence[Mapping[str, Any]], purpose: str = ""
    ) -> dict[str, Any]:
        """Send one RFC 6902 patch. A 409 raises ConflictError (the caller retries)."""
        obj = self._with_namespace(obj)
        group, version, plural = self.plural(obj, purpose)
        body = [dict(op) for op in ops]
        try:
            if group:
                out = self._custom.patch_namespaced_custom_object(
                    group,
                    version,
                    obj.namespace,
                    plural,
                    obj.name,
                    body,
                    _content_type=JSON_PATCH,
                    _request_timeout=self.timeout,
                )
            else:
                out = self._raw(
                    "PATCH",
                    f"/api/{version}/namespaces/{obj.namespace}/{plural}/{obj.name}",
                    body,
                    JSON_PATCH,
                )
        except ApiException as exc:
            raise self._error(exc, obj, purpose, "patch") from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from None
        return out if isinstance(out, dict) else {}

    # ------------------------------------------------------------ helpers for `simkit live`
    def read_experiment(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.get(
            self.ref("iter8.tools/v2alpha2", "Experiment", name, namespace), "the experiment to run"
        )

    def read_metric(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.get(
            self.ref("iter8.tools/v2alpha2", "Metric", name, namespace), "a metric of the experiment"
        )

    def write_experiment_status(self, name: str, namespace: str, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the Experiment's status subresource, as etc3 does, so that
        ``kubectl get experiment -o yaml | simkit describe -`` (or iter8ctl) shows the live run."""
        obj = self.ref("iter8.tools/v2alpha2", "Experiment", name, namespace)
        group, version, plural = self.plural(obj, "the experiment's status")
        try:
            self._custom.patch_namespaced_custom_object_status(
                group,
                version,
                obj.namespace,
                plural,
                obj.name,
                {"status": dict(status)},
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            raise self._error(exc, obj, "the experiment's status", "patch") from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from None

    def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, base64-decoded to text (Metric ``authType``/``secret`` credentials)."""
        obj = ObjectRef("v1", "Secret", namespace or self.default_namespace, name)
        try:
            secret = self._core.read_namespaced_secret(obj.name, obj.namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            raise self._error(exc, obj, "a metric's credentials", "read") from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from None
        out: dict[str, str] = {}
        for key, value in sorted((secret.data or {}).items()):
            try:
                out[key] = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BackendError(f"{obj}: key {key!r} is not base64-encoded UTF-8 text") from None
        return out


def _for(purpose: str) -> str:
    return f" ({purpose})" if purpose else ""
