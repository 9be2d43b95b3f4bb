"""Fetching one metric value for one version: template, HTTP request, jq (iter8-v2.md §3).

This is the only place simkit reads a metric, in the simulation and live alike. The injected
``httpx.Client`` decides which world answers: its transport is the in-process Prometheus API over
simulated series, or the real network. Nothing else here does I/O, and secrets come through an
injected callable, so the same Metric YAML behaves the same in both worlds.

The semantics are iter8-analytics v2.1.6 ``get_metric_value``, including its leniencies:

* params go in the URL query string for GET and POST; a ``body`` is templated, parsed with
  ``json.loads`` and sent as JSON (Iter8 sends it whatever the method);
* the HTTP status is not checked, but the answer must be JSON;
* ``jq.first()`` must give a number that is not NaN (``"NaN" | tonumber`` and an empty result
  both fail), and a bool is not a number;
* any failure gives ``value=None`` plus a message that starts with Iter8's own
  "Error from metrics backend for metric: <m> and version: <v>" and adds the concrete reason.
  Nothing is raised for a backend problem: a missing value is data (it fails the objective).

Iter8 (v2.1.7) also sends ``verify=False``; TLS settings belong to whoever builds the client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from simkit.metrics.mock import mock_value
from simkit.metrics.template import (
    render_body,
    render_headers,
    render_params,
    render_url,
    split_reference,
    version_arguments,
)
from simkit.spec.metric import Metric, compile_jq, jq_compile_message
from simkit.tsdb.store import round_ms

SecretReader = Callable[[str, str], Mapping[str, str] | None]

DEFAULT_TIMEOUT = 5.0
# A plain secret name lives where Iter8 is installed (reference/metrics.md: "iter8-system").
DEFAULT_SECRET_NAMESPACE = "iter8-system"


@dataclass(frozen=True)
class MetricValue:
    """One fetched value. ``value`` is None exactly when ``message`` says why."""

    value: float | None
    message: str | None
    url: str
    query: str | None
    raw: Any


def iter8_error_text(metric_name: str, version: str, *, faithful_spacing: bool = False) -> str:
    """The error line iter8-analytics adds to ``aggregatedMetrics.message``.

    Its f-string is continued with a backslash inside the literal, so the real text carries 29
    spaces before "and version"; ``faithful_spacing=True`` reproduces that for byte-level diffs.
    """
    gap = " " * 29 if faithful_spacing else " "
    return f"Error from metrics backend for metric: {metric_name}{gap}and version: {version}"


def override_base_url(url: str, base: str) -> str:
    """Replace scheme and host (and port) of ``url`` by ``base``'s; keep path, query, fragment.

    A path in ``base`` (a Prometheus behind a prefix, ``http://host/prom``) is put in front of the
    URL's path. This is how ``--prometheus-url`` points in-cluster Metric URLs at a local server.
    """
    target = urlsplit(url)
    new = urlsplit(base if "//" in base else f"http://{base}")
    path = new.path.rstrip("/") + target.path
    return urlunsplit((new.scheme or target.scheme, new.netloc, path, target.query, target.fragment))


class _Failure(Exception):
    """Internal: a reason why this value is None (never leaves this module)."""

    def __init__(self, reason: str, url: str | None = None) -> None:
        super().__init__(reason)
        self.url = url  # the full request URL once the request was built


class MetricFetcher:
    """Fetch metric values through one ``httpx.Client``.

    ``secrets(namespace, name)`` returns a secret's decoded data (None or KeyError when it does
    not exist); ``rng`` draws mock Gauge values (a fixed seed 0 when not given, never the global
    state); ``url_override`` replaces scheme and host of every ``urlTemplate``.
    """

    def __init__(
        self,
        client: httpx.Client,
        secrets: SecretReader | None = None,
        rng: np.random.Generator | None = None,
        url_override: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        secret_namespace: str = DEFAULT_SECRET_NAMESPACE,
    ) -> None:
        self.client = client
        self.secrets = secrets
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.url_override = url_override
        self.timeout = timeout
        self.secret_namespace = secret_namespace

    def fetch(
        self,
        metric: Metric,
        version: str,
        variables: Mapping[str, str],
        elapsed_seconds: float,
        *,
        name: str | None = None,
        at: float | None = None,
    ) -> MetricValue:
        """The value of ``metric`` for ``version``; ``name`` is the reference as written in the
        Experiment (the key of ``status.metrics``), used in messages; default ``ns/name``. With
        ``at`` (the loop's iteration instant), the request carries it as Prometheus' ``time``
        parameter, to the ms (unless the Metric sets one): iter8-analytics sends none, so a real
        Prometheus evaluates when the request arrives, and a replay of the recorded series at the
        journaled instant would differ by the query latency. The in-process API's default is that
        same ms-rounded clock, so simulated values do not change."""
        label = name or (f"{metric.namespace}/{metric.name}" if metric.namespace else metric.name)
        spec = metric.spec
        if spec.is_mocked:
            value, reason = mock_value(spec, version, elapsed_seconds, self.rng)
            return self._result(label, version, value, reason, "", None, None)
        if spec.is_builtin:
            reason = (
                "builtin metrics (provider: iter8) come from Fortio histograms, which simkit does not produce"
            )
            return self._result(label, version, None, reason, "", None, None)

        args = version_arguments(version, variables, elapsed_seconds)
        params = render_params(spec, args)
        if at is not None and "time" not in params:
            params = {**params, "time": f"{round_ms(at):.3f}"}
        query = params.get("query")
        url = spec.url_template or ""
        try:
            secret = self._secret(metric)
            url = render_url(spec, secret)
            if self.url_override:
                url = override_base_url(url, self.url_override)
            headers = render_headers(spec, secret)
            auth = self._basic_auth(metric, secret)
            body = self._body(metric, args)
            if query is None and body is not None:
                query = json.dumps(body, sort_keys=True)
            response, url = self._send(metric, url, params, headers, auth, body)
        except _Failure as failure:
            return self._result(label, version, None, str(failure), failure.url or url, query, None)
        raw, value, reason = _extract(metric, response)
        return self._result(label, version, value, reason, url, query, raw)

    # -- steps, in the order analytics runs them: url, params, headers, basic auth, body ------

    def _secret(self, metric: Metric) -> Mapping[str, str] | None:
        ref = metric.spec.secret
        if ref is None:
            return None
        namespace, name = split_reference(ref, self.secret_namespace)
        if self.secrets is None:
            raise _Failure(f"secret {namespace}/{name} is needed but no secret reader is configured")
        try:
            data = self.secrets(namespace, name)
        except KeyError:
            data = None
        if data is None:
            raise _Failure(f"secret {namespace}/{name} not found")
        return data

    def _basic_auth(self, metric: Metric, secret: Mapping[str, str] | None) -> httpx.BasicAuth | None:
        if metric.spec.auth_type != "Basic":
            return None
        if secret is None:
            raise _Failure("basic auth requires a secret")
        if "username" not in secret or "password" not in secret:
            raise _Failure("username and password keys missing in secret data")
        return httpx.BasicAuth(secret["username"], secret["password"])

    def _body(self, metric: Metric, args: Mapping[str, str]) -> Any:
        text = render_body(metric.spec, args)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise _Failure(f"spec.body is not valid JSON after templating: {exc}") from None

    def _send(
        self,
        metric: Metric,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        auth: httpx.BasicAuth | None,
        body: Any,
    ) -> tuple[httpx.Response, str]:
        if params:
            # httpx's own encoding of the parameters, done once: handing httpx the params makes it
            # parse the (long) query string twice; the URL sent is the same string either way
            url = f"{url}{'&' if '?' in url else '?'}{httpx.QueryParams(params)}"
        try:
            request = self.client.build_request(
                metric.spec.method,
                url,
                headers=headers or None,
                json=body,
                timeout=self.timeout,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise _Failure(f"cannot build a request for {url!r}: {exc}") from None
        sent_url = str(request.url)
        target = sent_url.split("?", 1)[0]  # the query is reported separately; keep messages short
        try:
            return self.client.send(request, auth=auth), sent_url
        except httpx.TimeoutException:
            raise _Failure(f"request to {target} timed out after {self.timeout:g} s", sent_url) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise _Failure(f"request to {target} failed: {type(exc).__name__}: {exc}", sent_url) from None

    @staticmethod
    def _result(
        label: str,
        version: str,
        value: float | None,
        reason: str | None,
        url: str,
        query: str | None,
        raw: Any,
    ) -> MetricValue:
        message = None if reason is None else f"{iter8_error_text(label, version)}: {reason}"
        return MetricValue(value=value, message=message, url=url, query=query, raw=raw)


def _extract(metric: Metric, response: httpx.Response) -> tuple[Any, float | None, str | None]:
    """(raw JSON, value, reason) from an HTTP answer, applying the Metric's jq expression."""
    status = f"HTTP {response.status_code}"
    try:
        raw = json.loads(response.content)
    except ValueError:
        snippet = response.content[:80].decode("utf-8", "replace")
        return response.text, None, f"response ({status}) is not JSON: {snippet!r}"
    expression = metric.spec.jq_expression
    if expression is None:
        return raw, None, "no jqExpression is specified in the metric"
    context = _backend_context(response, raw)
    try:
        result = compile_jq(expression).input_value(raw).first()
    except StopIteration:
        return raw, None, f"jq expression {expression!r} produced no output{context}"
    except ValueError as exc:
        return raw, None, f"jq expression {expression!r} failed: {jq_compile_message(exc)}{context}"
    if isinstance(result, bool) or not isinstance(result, int | float):
        # jq turns NaN into null on output, so Prometheus' "NaN" arrives here as None.
        shown = "null (NaN or missing)" if result is None else json.dumps(result)[:80]
        return raw, None, f"jq expression {expression!r} gave {shown}, not a number{context}"
    if math.isnan(result):
        return raw, None, f"jq expression {expression!r} gave NaN{context}"
    return raw, float(result), None


def _backend_context(response: httpx.Response, raw: Any) -> str:
    """A hint for error messages: a non-2xx status and Prometheus' own error text, if any."""
    parts: list[str] = []
    if not 200 <= response.status_code < 300:
        parts.append(f"HTTP {response.status_code}")
    if isinstance(raw, dict) and raw.get("status") == "error":
        parts.append(f"backend error {raw.get('errorType', '?')}: {raw.get('error', '')}".rstrip())
    return f" ({'; '.join(parts)})" if parts else ""
