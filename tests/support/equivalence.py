"""Are the two engines the same world? Statistics over seeds, per series group and scrape window.

Both engines run one scenario with the same traffic split: the manifests' weights until ``split_at``,
then the Experiment's versions share the traffic equally (one JSON patch through each version's
``weightObjRef``, applied to the world's object store at the same sim time in both engines), so
every predictor serves and a weight change at an exact time is part of what is compared.

From the scraped TSDB (what PromQL and therefore every policy sees), per seed:

- per window (between two scrapes) and per (predictor, histogram family, service): the increments
  of ``_count``, of error ``_count`` (code != 200) and of ``_sum``, and of the feedback counters;
- pooled over the run: requests, error fraction, mean latency, the client histogram's cumulative
  bucket fractions at 10/25/50/100/250 ms, and feedback per prediction.

:func:`compare` runs, for every statistic, Welch's two-sample t-test (a difference of means) and
the Brown–Forsythe test (a difference of spread: an engine that draws too little noise fails it),
and applies Bonferroni over *all* tests of the family, so the family-wise level is ``alpha``.
Statistics that are deterministic in both engines (uniform arrivals) must be equal.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from simkit.prepare import prepare
from simkit.sim.engine import AnyWorld, make_world
from simkit.sim.executor_metrics import FEEDBACK_TOTAL, REWARD_TOTAL
from simkit.spec.bundle import Bundle

LE_FRACTIONS = ("0.01", "0.025", "0.05", "0.1", "0.25")
Stats = dict[str, np.ndarray]  # statistic name -> values per seed (pooled) or per seed x window


@dataclass(frozen=True)
class Sample:
    windowed: dict[str, np.ndarray]  # name -> (seeds, windows)
    pooled: dict[str, np.ndarray]  # name -> (seeds,)


def equal_split(world: AnyWorld, bundle: Bundle) -> None:
    """Give every version of the Experiment an equal share (largest remainder), by JSON patch."""
    prepared = prepare(bundle.experiment_document(), bundle.documents)
    refs = prepared.refs
    n = len(refs)
    shares = [100 // n + (1 if i < 100 % n else 0) for i in range(n)]
    ops: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    for ref, share in zip(refs, shares, strict=True):
        ops[(ref.obj.kind, ref.obj.namespace, ref.obj.name)].append(
            {"op": "add", "path": ref.pointer, "value": share}
        )
    for (kind, ns, name), patch in ops.items():  # one patch per object: admission checks the sum
        world.store.patch(kind, ns, name, patch, source="equivalence")


def _group(labels: dict[str, str]) -> str:
    fam = "server" if "server" in labels["__name__"] else "client"
    return f"{labels.get('predictor_name', '?')}/{fam}/{labels.get('service', '?')}"


def observe(world: AnyWorld, begin: float, end: float) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-window increments and pooled totals of one finished world (scrapes in ``(begin, end]``)."""
    interval = world.bundle.scenario.spec.prometheus.scrapeInterval
    offset = world.bundle.scenario.spec.prometheus.scrapeOffset
    first = math.ceil((begin - offset) / interval)
    grid = world.epoch + offset + interval * np.arange(first, math.floor((end - offset) / interval) + 1)
    windowed: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(grid) - 1))
    totals: dict[str, float] = defaultdict(float)
    for series in world.tsdb:
        labels = series.label_dict()
        name = labels["__name__"]
        t, v = series.arrays()
        # the cumulative value at each grid time (0 before the series appears)
        idx = np.searchsorted(t, grid + 1e-6, side="right") - 1
        cum = np.where(idx >= 0, v[np.maximum(idx, 0)], 0.0)
        inc = np.diff(cum)
        if name in (FEEDBACK_TOTAL, REWARD_TOTAL):
            key = f"{labels['predictor_name']}/{'feedback' if name == FEEDBACK_TOTAL else 'reward'}"
            windowed[key] += inc
            totals[key] += inc.sum()
            continue
        group = _group(labels)
        if name.endswith("_count"):
            windowed[f"{group}/count"] += inc
            totals[f"{group}/count"] += inc.sum()
            # all predictors together: the arrivals themselves, before the split adds its noise
            everyone = "all/" + group.split("/", 1)[1]
            windowed[f"{everyone}/count"] += inc
            if labels.get("code") != "200":
                windowed[f"{group}/errors"] += inc
                totals[f"{group}/errors"] += inc.sum()
        elif name.endswith("_sum"):
            windowed[f"{group}/sum"] += inc
            totals[f"{group}/sum"] += inc.sum()
        elif name.endswith("_bucket") and labels.get("le") in LE_FRACTIONS and "client" in name:
            totals[f"{group}/le{labels['le']}"] += inc.sum()
    pooled: dict[str, float] = {}
    for key, value in totals.items():
        if key.endswith("/count"):
            group = key[: -len("/count")]
            pooled[key] = value
            if value > 0:
                pooled[f"{group}/error-fraction"] = totals.get(f"{group}/errors", 0.0) / value
                pooled[f"{group}/mean"] = totals.get(f"{group}/sum", 0.0) / value
                for le in LE_FRACTIONS:
                    if f"{group}/le{le}" in totals:
                        pooled[f"{group}/frac{le}"] = totals[f"{group}/le{le}"] / value
    for key, value in totals.items():
        if key.endswith("/feedback"):
            pred = key.split("/")[0]
            preds = totals.get(f"{pred}/server/predictions/count", 0.0)
            if preds > 0:
                pooled[f"{pred}/feedback-per-prediction"] = value / preds
    return dict(windowed), pooled


def collect(
    bundle: Bundle,
    engine: str,
    seeds: Sequence[int],
    duration: float,
    split_at: float = 0.0,
    mutate: Callable[[AnyWorld], None] | None = None,
) -> Sample:
    """Run ``engine`` for every seed and stack the statistics (a statistic missing in a run is 0)."""
    runs = []
    for seed in seeds:
        world, choice = make_world(bundle, seed, engine)
        assert choice.name == engine
        if mutate is not None:
            mutate(world)
        world.run_until(split_at)
        equal_split(world, bundle)
        world.run_until(duration)
        runs.append(observe(world, split_at, duration))
    wkeys = sorted({k for w, _ in runs for k in w})
    pkeys = sorted({k for _, p in runs for k in p})
    width = max((len(next(iter(w.values()))) for w, _ in runs if w), default=0)
    windowed = {k: np.stack([w.get(k, np.zeros(width)) for w, _ in runs]) for k in wkeys}
    pooled = {k: np.asarray([p.get(k, np.nan) for _, p in runs]) for k in pkeys}
    return Sample(windowed, pooled)


@dataclass(frozen=True)
class Comparison:
    name: str
    p: float
    detail: str


def _pair(name: str, a: np.ndarray, b: np.ndarray) -> list[Comparison]:
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return []
    sa, sb = float(np.std(a)), float(np.std(b))
    scale = max(abs(float(np.mean(a))), abs(float(np.mean(b))), 1e-12)
    if sa <= 1e-12 * scale and sb <= 1e-12 * scale:
        same = abs(float(np.mean(a)) - float(np.mean(b))) <= 1e-9 * scale
        return [
            Comparison(f"{name} (deterministic)", 1.0 if same else 0.0, f"{np.mean(a):g} vs {np.mean(b):g}")
        ]
    out = [
        Comparison(
            f"{name} mean",
            float(stats.ttest_ind(a, b, equal_var=False).pvalue),
            f"{np.mean(a):.6g} vs {np.mean(b):.6g}",
        )
    ]
    if sa > 0 or sb > 0:
        out.append(
            Comparison(
                f"{name} spread",
                float(stats.levene(a, b, center="median").pvalue),
                f"sd {sa:.4g} vs {sb:.4g}",
            )
        )
    return out


def comparisons(a: Sample, b: Sample, label: str = "") -> list[Comparison]:
    """Every two-sample test between samples ``a`` and ``b`` (not yet corrected)."""
    out: list[Comparison] = []
    for key in sorted(set(a.windowed) | set(b.windowed)):
        wa, wb = a.windowed.get(key), b.windowed.get(key)
        # a rare series (an error on a feedback call) may appear in one engine's runs only: it is
        # then zero in every run of the other, which the tests below judge like any other value
        if wa is None:
            wa = np.zeros((len(next(iter(a.windowed.values()))), wb.shape[1])) if a.windowed else None
        if wb is None:
            wb = (
                np.zeros((len(next(iter(b.windowed.values()))), wa.shape[1]))
                if b.windowed and wa is not None
                else None
            )
        if wa is None or wb is None:
            out.append(Comparison(f"{label}{key}: no runs to compare", 0.0, ""))
            continue
        for w in range(min(wa.shape[1], wb.shape[1])):
            out += _pair(f"{label}{key}[window {w}]", wa[:, w], wb[:, w])
    for key in sorted(set(a.pooled) & set(b.pooled)):
        out += _pair(f"{label}{key} pooled", a.pooled[key], b.pooled[key])
    return out


def failures(tests: Sequence[Comparison], alpha: float, family: int | None = None) -> list[Comparison]:
    """Tests rejected at family-wise level ``alpha`` (Bonferroni over ``family`` tests)."""
    m = family if family is not None else len(tests)
    return [t for t in tests if t.p * max(m, 1) < alpha]
