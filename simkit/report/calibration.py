"""The calibrated scenario folder and its report (``simkit calibrate FILE --out DIR``).

Writes ``scenario.yaml`` (a ``simkit/v1alpha1`` Scenario following :mod:`simkit.spec.scenario`),
the recorded manifests (Experiment and Metrics byte for byte; a SeldonDeployment with the recorded
traffic split, synthesised from the series' labels when the recording did not hold one), a
``load-trace.txt`` when the load was not stationary, and the report: ``report.md`` (recorded vs
simulated per-version request rate, error rate, p50/p95/p99, feedback rate, with relative
differences, a chi-square two-sample test and the Kolmogorov distance of the latency buckets)
and ``calibration.png``. The comparison simulates the new scenario over the recorded time span,
through ``simkit.sim``'s public ``simulate`` (this module is CLI glue, like ``report``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simkit.errors import DataError
from simkit.files import atomic_path
from simkit.prepare import prepare
from simkit.records import rfc3339
from simkit.replay.calibrate import (
    CLIENT,
    PREDICT,
    QUANTILES,
    Calibration,
    VersionStats,
    fit,
    version_stats,
    weight_index,
)
from simkit.replay.recording import Recording
from simkit.replay.selectors import metric_selectors
from simkit.report.run import write_text
from simkit.spec.rounding import largest_remainder
from simkit.tsdb import TSDB, Matcher

LEAD = 60.0  # seconds of load before the experiment starts (the seed uses 30)
TOLERANCE = 0.05


def _num(x: float) -> float:
    return float(f"{x:.6g}")


def _sdep_docs(recording: Recording, cal: Calibration, prepared: Any) -> tuple[dict[str, str], list[str]]:
    """File name -> YAML text for every manifest, and the manifest list, with traffic patched."""
    refs = {r.version: r for r in prepared.refs}
    groups: dict[tuple[str, str], list[Any]] = {}
    for f in cal.versions:
        groups.setdefault((f.identity.namespace, f.identity.deployment), []).append(f)
    weights: dict[tuple[str, str, str], int] = {}
    for key, fits in groups.items():
        split = largest_remainder({f.version: f.share * 100 for f in fits})
        for f in fits:
            weights[(*key, f.identity.predictor)] = split[f.version]
    files: dict[str, str] = {}
    names: list[str] = []
    covered: set[tuple[str, str]] = set()
    for m in recording.header.manifests:
        docs = list(yaml.safe_load_all(m.text))
        changed = False
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "SeldonDeployment":
                meta = d.get("metadata") or {}
                key = (str(meta.get("namespace") or prepared.experiment.namespace), str(meta.get("name")))
                for p in (d.get("spec") or {}).get("predictors") or []:
                    w = weights.get((key[0], key[1], p.get("name")))
                    if w is not None:
                        p["traffic"], changed = w, True
                covered.add(key)
        files[m.name] = yaml.safe_dump_all(docs, sort_keys=False) if changed else m.text
        names.append(m.name)
    for (ns, name), fits in sorted(groups.items()):
        if (ns, name) in covered:
            continue
        slots: dict[int, dict[str, Any]] = {}
        extra = []
        for f in fits:
            pred = {"name": f.identity.predictor, "traffic": weights[(ns, name, f.identity.predictor)],
                    "graph": {"name": "classifier", "implementation": "SKLEARN_SERVER"}}
            ref = refs.get(f.version)
            k = weight_index(ref.pointer) if ref is not None and ref.obj.kind == "SeldonDeployment" else None
            if k is None or k in slots:
                extra.append(pred)
            else:
                slots[k] = pred
        if slots and sorted(slots) != list(range(len(slots))):
            raise DataError(f"calibrate: the weightObjRef fieldPaths of {ns}/{name} skip predictor indexes {sorted(slots)}")
        sdep = {"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"predictors": [slots[k] for k in sorted(slots)] + extra}}
        fname = f"seldondeployment-{name}.yaml"
        files[fname] = yaml.safe_dump(sdep, sort_keys=False)
        names.append(fname)
    return files, names


def scenario_document(recording: Recording, cal: Calibration, manifests: list[str], trace: str | None) -> dict[str, Any]:
    epoch = math.ceil(cal.start) + LEAD
    lead = _num(epoch - cal.start)
    predictors: dict[str, Any] = {}
    loads: list[dict[str, Any]] = []
    ingress: dict[str, float] = {}
    for f in cal.versions:
        behaviour: dict[str, Any] = {"concurrency": 4}
        if sum(f.counts) > 0:
            behaviour["latency"] = {"distribution": "empirical",
                                    "histogram": {"bounds": [_num(b) for b in f.bounds], "counts": [_num(c) for c in f.counts]}}
        if f.errors:
            behaviour["errors"] = {"codes": {c: _num(r) for c, r in f.errors.items()}}
        predictors[f.identity.key] = behaviour
        sdep = f"{f.identity.namespace}/{f.identity.deployment}"
        ingress[sdep] = ingress.get(sdep, 0.0) + f.predictions / cal.duration
    for sdep, qps in sorted(ingress.items()):
        load: dict[str, Any] = {"name": f"requests-{sdep.replace('/', '-')}", "to": f"ingress:{sdep}", "start": -lead}
        load.update({"pattern": "trace", "file": trace} if trace and len(ingress) == 1 else {"qps": _num(qps), "pattern": "poisson"})
        loads.append(load)
    for f in cal.versions:
        if f.feedback_qps > 0:
            loads.append({"name": f"{f.identity.predictor}-feedback", "to": f"feedback:{f.identity.key}",
                          "qps": _num(f.feedback_qps), "pattern": "poisson", "start": -lead,
                          "payload": {"reward": _num(f.reward)}})
    return {
        "apiVersion": "simkit/v1alpha1", "kind": "Scenario",
        "metadata": {"name": f"{recording.header.experiment}-calibrated",
                     "description": f"calibrated by simkit calibrate from {recording.path.name} "
                                    f"({rfc3339(cal.start)} to {rfc3339(cal.end)}, source {recording.header.source})"},
        "spec": {"manifests": manifests, "experiment": recording.header.experiment, "start": rfc3339(epoch), "seed": 1,
                 "prometheus": {"scrapeInterval": _num(cal.step), "executorOverhead": _num(cal.overhead)},
                 "predictors": predictors, "load": loads},
    }


def trace_lines(cal: Calibration) -> str:
    """Arrival offsets (seconds from the load's start), spread evenly inside each interval."""
    out = ["# recorded load shape: predictions per scrape interval, spread evenly"]
    for lo, hi, n in cal.window_counts:
        k = int(round(n))
        out += [f"{lo - cal.start + (i + 0.5) * (hi - lo) / k:.4f}" for i in range(k)] if k else []
    return "\n".join(out) + "\n"


def calibrate_folder(recording: Recording, out: Path, seed: int = 1, compare: bool = True) -> list[str]:
    """Fit, write the scenario folder, and (with ``compare``) simulate it and write the report."""
    prepared = prepare(recording.experiment_document(), recording.documents())
    found = metric_selectors(prepared)
    cal = fit(recording, found, prepared.plan.versions)
    files, manifests = _sdep_docs(recording, cal, prepared)
    trace = None if cal.stationary else "load-trace.txt"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        write_text(out / name, text)
    if trace:
        write_text(out / trace, trace_lines(cal))
    doc = scenario_document(recording, cal, manifests, trace)
    header = "# Written by simkit calibrate: per-version generators fitted from a recording (see report.md).\n"
    write_text(out / "scenario.yaml", header + yaml.safe_dump(doc, sort_keys=False))
    from simkit.spec.bundle import load_scenario

    load_scenario(out)  # what simkit run will read must validate
    lines = [f"wrote scenario {out} ({len(cal.versions)} versions, total {cal.total_qps:.3g} req/s, "
             f"{'stationary Poisson load' if cal.stationary else 'load shape kept as ' + str(trace)}, "
             f"dispersion {cal.dispersion:.2f})"]
    if compare:
        from simkit.sim.world import simulate

        world = simulate(str(out), cal.duration, seed)
        rows, ok = comparison(recording.db, world.tsdb, cal)
        gof = [latency_fit(recording.db, world.tsdb, f.identity.matchers, cal.start, cal.end) for f in cal.versions]
        write_text(out / "report.md", report_markdown(cal, rows, gof))
        plot_calibration(recording.db, world.tsdb, cal, out / "calibration.png")
        lines.append(f"compared with {cal.duration:g}s simulated: {'all within' if ok else 'NOT all within'} "
                     f"{TOLERANCE:.0%}; see {out / 'report.md'}")
    return lines


def _pairs(rec: VersionStats, sim: VersionStats) -> list[tuple[str, float | None, float | None]]:
    out = [("request rate (1/s)", rec.rate, sim.rate), ("error rate", rec.error_rate, sim.error_rate)]
    out += [(f"p{int(q * 100)} latency (s)", rec.quantiles[q], sim.quantiles[q]) for q in QUANTILES]
    out.append(("feedback rate (1/s)", rec.feedback_rate, sim.feedback_rate))
    return out


def comparison(recorded: TSDB, simulated: TSDB, cal: Calibration) -> tuple[list[list[str]], bool]:
    rows, ok = [], True
    for f in cal.versions:
        rec = version_stats(recorded, f.identity, cal.start, cal.end)
        sim = version_stats(simulated, f.identity, cal.start, cal.end)
        for what, a, b in _pairs(rec, sim):
            rel = None if a is None or b is None or a == 0 else abs(b - a) / abs(a)
            good = rel is not None and rel <= TOLERANCE or (a in (None, 0) and b in (None, 0))
            ok = ok and good
            rows.append([f.version, what, "-" if a is None else f"{a:.5g}", "-" if b is None else f"{b:.5g}",
                         "-" if rel is None else f"{rel:.2%}", "yes" if good else "NO"])
    return rows, ok


def _buckets(db: TSDB, matchers: tuple[Matcher, ...], lo: float, hi: float) -> tuple[list[float], np.ndarray]:
    from simkit.replay.calibrate import _inc

    by_le: dict[float, float] = {}
    for s in db.select([Matcher("__name__", "=", f"{CLIENT}_bucket"), *matchers]):
        if dict(s.labels).get("service", "") in PREDICT:
            le = dict(s.labels)["le"]
            key = math.inf if le == "+Inf" else float(le)
            by_le[key] = by_le.get(key, 0.0) + _inc(s, lo, hi)
    les = sorted(by_le)
    cum = np.array([by_le[k] for k in les])
    return les, np.diff(np.concatenate(([0.0], cum))).clip(min=0)


def latency_fit(recorded: TSDB, simulated: TSDB, matchers: tuple[Matcher, ...], lo: float, hi: float) -> dict[str, float]:
    """Two-sample chi-square over non-empty buckets, and the Kolmogorov distance of bucket CDFs."""
    from scipy.stats import chi2_contingency

    _, a = _buckets(recorded, matchers, lo, hi)
    _, b = _buckets(simulated, matchers, lo, hi)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    keep = (a + b) > 0
    if a.sum() <= 0 or b.sum() <= 0 or keep.sum() < 2:
        return {"chi2": math.nan, "p": math.nan, "ks": math.nan}
    chi2, p, _, _ = chi2_contingency(np.vstack([a[keep], b[keep]]))
    ks = float(np.max(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())))
    return {"chi2": float(chi2), "p": float(p), "ks": ks}


def report_markdown(cal: Calibration, rows: list[list[str]], gof: list[dict[str, float]]) -> str:
    lines = ["# Calibration report", "",
             f"Recording {rfc3339(cal.start)} to {rfc3339(cal.end)} ({cal.duration:g}s, step {cal.step:g}s); "
             f"load {cal.total_qps:.4g} req/s, index of dispersion {cal.dispersion:.3f} "
             f"({'stationary: one Poisson load' if cal.stationary else 'non-stationary: trace file'}); "
             f"executor overhead {cal.overhead * 1000:.3f} ms.", "",
             f"Recorded vs simulated over the same span; quantiles by `histogram_quantile` on both; tolerance {TOLERANCE:.0%}.", "",
             "| version | figure | recorded | simulated | rel. diff | within |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Latency buckets, goodness of fit (two-sample chi-square over non-empty buckets; Kolmogorov "
                  "distance of the bucket CDFs):", "", "| version | chi2 | p | KS |", "|---|---|---|---|"]
    lines += [f"| {f.version} | {g['chi2']:.4g} | {g['p']:.4g} | {g['ks']:.4g} |" for f, g in zip(cal.versions, gof, strict=True)]
    return "\n".join(lines) + "\n"


def plot_calibration(recorded: TSDB, simulated: TSDB, cal: Calibration, path: Path) -> None:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cal.versions)
    fig, axes = plt.subplots(n + 1, 1, figsize=(8, 2.4 * (n + 1)), squeeze=False)
    for ax, f in zip([a[0] for a in axes[:n]], cal.versions, strict=True):
        for db, label, style in ((recorded, "recorded", "-"), (simulated, "simulated", "--")):
            les, counts = _buckets(db, f.identity.matchers, cal.start, cal.end)
            if counts.sum() > 0:
                xs = [x if math.isfinite(x) else (les[-2] * 2 if len(les) > 1 else 1.0) for x in les]
                ax.step(xs, np.cumsum(counts) / counts.sum(), where="post", linestyle=style, label=label)
        ax.set_xscale("log")
        ax.set_ylabel(f"{f.version}\nCDF")
        ax.legend(fontsize=8)
    ax = axes[n][0]
    xs = [(lo - cal.start) for lo, _, _ in cal.window_counts]
    ax.plot(xs, [c / (hi - lo) for lo, hi, c in cal.window_counts], label="recorded")
    ax.axhline(cal.total_qps, color="grey", linestyle=":", label="calibrated mean")
    ax.set_xlabel("seconds since the recording start")
    ax.set_ylabel("predictions/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=80, metadata={"Software": None})
    finally:
        plt.close(fig)
