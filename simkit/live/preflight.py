"""What ``simkit live`` proves before it writes anything: Prometheus is a Prometheus, and the
metric windows can hold data.

Both failures used to surface only as metrics that are unavailable in every iteration while the
run went on moving traffic: a ``--prometheus-url`` that answers 404 (or is some other server), and
``rate(...[${elapsedTime}s])`` windows shorter than the scrape interval (the README's
``--interval-override 1s`` under a 15-s scrape). The first is refused; for the second, a run whose
windows never reach one scrape interval is refused, and iterations whose windows are shorter than
two (a rate needs two samples) are named in a warning before the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import yaml

from simkit.control import Prepared
from simkit.errors import BackendError, SpecError
from simkit.metrics.template import elapsed_time_text
from simkit.spec.quantity import parse_duration

# a range or subquery selector's window: [5m], [${elapsedTime}s], [1h:5m]
_WINDOW = re.compile(r"\[([^\]:\[]+)(?::[^\]]*)?\]")


def preflight_prometheus(client: httpx.Client, prepared: Prepared, override: str | None) -> float | None:
    """Prove each distinct Prometheus is one before anything is written: ``vector(1)`` must come
    back as a Prometheus answer (an unreachable URL, a 404 or another server is bad input).
    Returns the smallest scrape interval their configurations declare (None if none says)."""
    bases = {override} if override else set()
    if not override:
        for _, metric in prepared.metrics:
            url = metric.spec.url_template
            if url and not metric.spec.secret:
                parts = urlsplit(url)
                bases.add(f"{parts.scheme}://{parts.netloc}")
    intervals: list[float] = []
    for base in sorted(b for b in bases if b):
        root = base.rstrip("/")
        try:
            response = client.get(f"{root}/api/v1/query", params={"query": "vector(1)"})
        except httpx.HTTPError as exc:
            raise BackendError(
                f"Prometheus at {base} is unreachable ({type(exc).__name__}: {exc}); check --prometheus-url"
            ) from None
        if not _answers_like_prometheus(response):
            raise BackendError(
                f"{base} is not a Prometheus: the query vector(1) at {root}/api/v1/query answered "
                f"HTTP {response.status_code} {_snippet(response)}; check --prometheus-url"
            )
        intervals += scrape_intervals(client, root)
    return min(intervals) if intervals else None


def _answers_like_prometheus(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    data = body.get("data") if isinstance(body, dict) else None
    return (
        response.status_code == 200
        and body.get("status") == "success"
        and isinstance(data, dict)
        and data.get("resultType") in ("vector", "scalar")
    )


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def scrape_intervals(client: httpx.Client, root: str) -> list[float]:
    """Scrape intervals in the server's configuration (global and per job); [] if it does not say."""
    try:
        response = client.get(f"{root}/api/v1/status/config")
        config = yaml.safe_load(response.json()["data"]["yaml"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return []
    if not isinstance(config, dict):
        return []
    found = []
    default = (config.get("global") or {}).get("scrape_interval", "1m")
    for job in config.get("scrape_configs") or [{}]:
        if isinstance(job, dict):
            try:
                found.append(parse_duration(job.get("scrape_interval", default)))
            except ValueError:
                continue
    return found


def windows(prepared: Prepared, elapsed: int) -> dict[str, float]:
    """Per metric, the shortest range window its query has at ``elapsedTime`` = ``elapsed``."""
    out: dict[str, float] = {}
    for ref, metric in prepared.metrics:
        texts = [p.value for p in metric.spec.params] + ([metric.spec.body] if metric.spec.body else [])
        for text in texts:
            for raw in _WINDOW.findall(str(text).replace("${elapsedTime}", elapsed_time_text(elapsed))):
                try:
                    seconds = parse_duration(raw.strip())
                except ValueError:
                    continue  # not a literal duration (a template we cannot expand): not judged
                out[ref] = min(seconds, out.get(ref, seconds))
    return out


def check_windows(prepared: Prepared, scrape: float | None, say: Callable[[str], None]) -> None:
    """Refuse a run whose metric windows never reach one scrape interval; warn about the
    iterations whose windows are shorter than two."""
    if scrape is None or not prepared.metrics:
        return
    plan = prepared.plan
    elapsed = [max(1, int((i - 1) * plan.interval_seconds)) for i in range(1, plan.iterations + 1)]
    last = windows(prepared, elapsed[-1])
    never = sorted(ref for ref, w in last.items() if w < scrape)
    if never:
        raise SpecError.from_cli(
            "--interval-override / spec.duration",
            f"metric {never[0]} queries a window of at most {last[never[0]]:g}s "
            f"in this run ({plan.iterations} iterations every {plan.interval_seconds:g}s), shorter than the "
            f"Prometheus scrape interval ({scrape:g}s): every value would be unavailable; use a longer interval "
            "or more iterations",
        )
    short = [
        i for i, e in enumerate(elapsed, 1) if any(w < 2 * scrape for w in windows(prepared, e).values())
    ]
    if short:
        which = (
            f"{short[0]}"
            if len(short) == 1
            else f"{short[0]}-{short[-1]}"
            if short == list(range(short[0], short[-1] + 1))
            else ", ".join(map(str, short))
        )
        say(
            f"warning: in iteration{'s' if len(short) > 1 else ''} {which} some metric windows are shorter than two "
            f"scrape intervals ({2 * scrape:g}s); rates there may be unavailable"
        )
