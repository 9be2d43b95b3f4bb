"""The Iter8 ``Metric`` resource (``iter8.tools/v2alpha2``), typed and checked at load time.

A Metric describes one HTTP query against a metrics backend (usually Prometheus): a URL, query
parameters and an optional JSON body, all templated per version, plus a ``jq`` expression that
extracts one number from the JSON answer (iter8-v2.md §3). The same object drives the simulated
and the live world, so everything that can be checked before the first request is checked here:

* ``spec`` is strict, as the CRD's structural schema is: an unknown field is an error;
* ``jqExpression`` must compile with the ``jq`` package (Iter8 would only fail at query time,
  once per iteration, silently turning every value into None);
* ``urlTemplate`` and ``jqExpression`` are required unless the metric is mocked (``mock``) or a
  builtin (``provider: iter8``), exactly the cases where the Iter8 docs say they may be omitted;
* ``mock[].level`` is a Kubernetes quantity (``20``, ``"0.5"``, ``200m``) and is parsed here;
* ``secret`` and ``sampleSize`` are references of the form ``name`` or ``namespace/name``.

Defaults are the CRD's kubebuilder defaults: ``type: Gauge``, ``method: GET``. The POST body is
only known to be JSON after templating, so that check happens when a value is fetched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import jq
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

from simkit.errors import Location, SpecError
from simkit.spec.documents import Document, validate
from simkit.spec.quantity import parse_quantity

API_VERSION = "iter8.tools/v2alpha2"
KIND = "Metric"
BUILTIN_PROVIDER = "iter8"

# `name` or `namespace/name`, each part non-empty and without further slashes or blanks.
_REFERENCE = re.compile(r"^[^/\s]+(/[^/\s]+)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_quantity(value: Any) -> float:
    return parse_quantity(value)


Quantity = Annotated[float, BeforeValidator(_as_quantity)]


class NamedValue(_Strict):
    """A ``{name, value}`` pair: a query parameter or a header template."""

    name: str = Field(min_length=1)
    value: str


class NamedLevel(_Strict):
    """A mock level for one version: the rate of a Counter or the mean of a Gauge."""

    name: str = Field(min_length=1)
    level: Quantity


@functools.lru_cache(maxsize=512)
def compile_jq(expression: str) -> Any:
    """Compile a jq program once (the fetcher runs it every iteration for every version)."""
    return jq.compile(expression)


def jq_compile_message(exc: Exception) -> str:
    """jq's multi-line compile error as one line (``jq: error: ... line 1, column 14``)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    if first.startswith("jq: error: "):
        first = first[len("jq: error: ") :]
    return first.rstrip(":").rstrip()


class MetricSpec(_Strict):
    """``spec`` of a Metric; field names and defaults follow etc3's ``metric_types.go``."""

    description: str | None = None
    units: str | None = None
    provider: str | None = None
    params: tuple[NamedValue, ...] = ()
    body: str | None = None
    type: Literal["Counter", "Gauge"] = "Gauge"
    method: Literal["GET", "POST"] = "GET"
    auth_type: Literal["Basic", "Bearer", "APIKey"] | None = Field(default=None, alias="authType")
    sample_size: str | None = Field(default=None, alias="sampleSize")
    secret: str | None = None
    header_templates: tuple[NamedValue, ...] = Field(default=(), alias="headerTemplates")
    jq_expression: str | None = Field(default=None, alias="jqExpression")
    url_template: str | None = Field(default=None, alias="urlTemplate")
    mock: tuple[NamedLevel, ...] | None = None

    @field_validator("sample_size", "secret")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and not _REFERENCE.match(value):
            raise ValueError(f"expected 'name' or 'namespace/name', found {value!r}")
        return value

    @field_validator("jq_expression")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_jq(value)
            except ValueError as exc:
                raise ValueError(
                    f"jq expression {value!r} does not compile: {jq_compile_message(exc)}"
                ) from None
        return value

    @property
    def is_builtin(self) -> bool:
        return self.provider == BUILTIN_PROVIDER

    @property
    def is_mocked(self) -> bool:
        # Iter8 tests `mock is not None`: an empty list still means "mocked" (and gives None).
        return self.mock is not None


class ObjectMeta(BaseModel):
    """Kubernetes metadata: name and namespace are typed, everything else is kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    namespace: str | None = None


class Metric(_Strict):
    """One Metric object. ``where`` remembers the file and document it came from."""

    api_version: Literal["iter8.tools/v2alpha2"] = Field(alias="apiVersion")
    kind: Literal["Metric"]
    metadata: ObjectMeta
    spec: MetricSpec

    _where: Location = PrivateAttr(default_factory=lambda: Location("<memory>"))

    @property
    def where(self) -> Location:
        return self._where

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    def key(self, default_namespace: str) -> str:
        """``namespace/name``, using ``default_namespace`` when the manifest names none."""
        return f"{self.metadata.namespace or default_namespace}/{self.metadata.name}"

    def error(self, field: str | None, message: str) -> SpecError:
        return SpecError(self._where, field, message)


def _check_cross_fields(metric: Metric) -> None:
    """Rules that involve several fields, each reported against the field a user must edit."""
    spec = metric.spec
    needs_http = not (spec.is_mocked or spec.is_builtin)
    if needs_http and not spec.url_template:
        raise metric.error(
            "spec.urlTemplate",
            "required unless the metric is mocked (spec.mock) or builtin (provider: iter8)",
        )
    if needs_http and spec.jq_expression is None:
        raise metric.error(
            "spec.jqExpression",
            "required unless the metric is mocked (spec.mock) or builtin (provider: iter8)",
        )
    if spec.auth_type == "Basic" and spec.secret is None and not spec.is_mocked:
        # analytics fails every query with "basic auth requires a secret"; say it once, now.
        raise metric.error("spec.secret", "required when authType is Basic (it holds username and password)")
    if spec.mock:
        seen: set[str] = set()
        for i, level in enumerate(spec.mock):
            if level.name in seen:
                raise metric.error(f"spec.mock[{i}].name", f"duplicate version {level.name!r}")
            seen.add(level.name)


def parse_metric(raw: Mapping[str, Any], where: Location) -> Metric:
    """Validate one Metric document given as a plain mapping; errors are one SpecError line."""
    metric = validate(Metric, dict(raw), where)
    metric._where = where
    _check_cross_fields(metric)
    return metric


def is_metric_document(doc: Document) -> bool:
    return doc.kind == KIND and doc.api_version.startswith("iter8.tools/")


def load_metric(doc: Document) -> Metric:
    """Type a parsed YAML document that should be an Iter8 Metric."""
    if doc.kind != KIND:
        raise doc.error("kind", f"expected {KIND}, found {doc.kind or 'nothing'}")
    if doc.api_version != API_VERSION:
        raise doc.error("apiVersion", f"expected {API_VERSION}, found {doc.api_version or 'nothing'}")
    return parse_metric(doc.raw, doc.where)


def load_metrics(docs: Iterable[Document]) -> list[Metric]:
    """Every Metric among ``docs`` (other kinds, such as the seed's Namespace, are skipped)."""
    return [load_metric(doc) for doc in docs if is_metric_document(doc)]
