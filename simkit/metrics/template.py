"""Templating of a Metric's URL, params, body and headers, exactly as iter8-analytics does it.

iter8-analytics interpolates with Python's ``string.Template.safe_substitute`` (iter8-v2.md §3):
``$x`` and ``${x}`` both work, an unknown placeholder stays as written, ``$$`` becomes ``$``, and a
lone ``$`` that starts no identifier is left alone. Using the same standard-library class keeps
every corner of that behaviour (identifier rules, ``$name-suffix`` splitting at the hyphen)
byte-identical.

Which data feeds which part is the subtle bit, and it is reproduced here:

* params and body: ``name`` = version name, then the version's variables, then ``elapsedTime``
  (later entries override earlier ones, so a variable called ``elapsedTime`` is ignored);
* URL: only when the Metric has a ``secret``, and then only with the secret's data;
* headers: only when ``authType`` is Bearer or APIKey **and** a secret is set, with the secret's
  data (Basic auth instead sends the secret's ``username``/``password``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from string import Template

from simkit.spec.metric import MetricSpec

# Header templates are interpolated with secret data only for these auth types.
HEADER_AUTH_TYPES = ("Bearer", "APIKey")


def substitute(template: str, mapping: Mapping[str, str]) -> str:
    """``string.Template(template).safe_substitute(mapping)``: never raises, unknowns stay."""
    return Template(template).safe_substitute(mapping)


def elapsed_time_text(elapsed_seconds: float) -> str:
    """``elapsedTime`` as Iter8 writes it: whole seconds, at least 1 (analytics v2.1.6)."""
    if math.isnan(elapsed_seconds):
        return "1"
    return str(max(1, int(elapsed_seconds)))


def version_arguments(version: str, variables: Mapping[str, str], elapsed_seconds: float) -> dict[str, str]:
    """The substitution map for params and body, built in Iter8's order."""
    args: dict[str, str] = {"name": version}
    for key, value in variables.items():
        args[key] = str(value)
    args["elapsedTime"] = elapsed_time_text(elapsed_seconds)
    return args


def render_params(spec: MetricSpec, args: Mapping[str, str]) -> dict[str, str]:
    """Query parameters after templating; a repeated name keeps its last value, like a dict."""
    params: dict[str, str] = {}
    for param in spec.params:
        params[param.name] = substitute(param.value, args)
    return params


def render_body(spec: MetricSpec, args: Mapping[str, str]) -> str | None:
    """The body text after templating (still to be parsed as JSON), or None without a body."""
    if spec.body is None:
        return None
    return substitute(spec.body, args)


def render_url(spec: MetricSpec, secret_data: Mapping[str, str] | None) -> str:
    """The URL: the template as is, or interpolated with secret data when a secret is set."""
    template = spec.url_template or ""
    if spec.secret is None or secret_data is None:
        return template
    return substitute(template, secret_data)


def render_headers(spec: MetricSpec, secret_data: Mapping[str, str] | None) -> dict[str, str]:
    """Headers from ``headerTemplates``; interpolated only for Bearer/APIKey with a secret."""
    headers: dict[str, str] = {}
    for header in spec.header_templates:
        headers[header.name] = header.value
    if spec.auth_type in HEADER_AUTH_TYPES and spec.secret is not None and secret_data is not None:
        headers = {key: substitute(value, secret_data) for key, value in headers.items()}
    return headers


def secret_needed(spec: MetricSpec) -> bool:
    """Whether a fetch must read the secret (URL templating, header templating or Basic auth)."""
    return spec.secret is not None


def split_reference(reference: str, default_namespace: str) -> tuple[str, str]:
    """``ns/name`` -> (ns, name); a plain ``name`` -> (default_namespace, name)."""
    namespace, sep, name = reference.partition("/")
    if not sep:
        return default_namespace, reference
    return namespace, name
