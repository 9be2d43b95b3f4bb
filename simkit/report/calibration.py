"""The calibrated scenario folder and its report (``simkit calibrate FILE --out DIR``).

Writes ``scenario.yaml`` (a ``simkit/v1alpha1`` Scenario following :mod:`simkit.spec.scenario`),
the recorded manifests (Experiment and Metrics byte for byte; a SeldonDeployment with the recorded
traffic split, synthesised from the series' labels when the recording did not hold one), a
``load-trace.txt`` when the load was not stationary, and (:mod:`simkit.report.calibration_report`)
``report.md`` and ``calibration.png``: the new scenario simulated over the recorded time span,
pooled over seeds, against the recording, quantity by quantity (this module is CLI glue, like
``report``).

Two choices keep the simulated series comparable scrape by scrape: the simulated Prometheus
scrapes at the recorded instants (``scrapeOffset``), and the load starts one scrape before the
first recorded one, so simulated series exist at that scrape as the recorded ones did.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from simkit.errors import DataError
from simkit.prepare import prepare
from simkit.records import rfc3339
from simkit.replay.calibrate import Calibration, VersionFit, fit, weight_index
from simkit.replay.recording import Recording
from simkit.replay.selectors import metric_selectors
from simkit.report.calibrated_predictors import behaviour, error_events, own_loads, six_digits
from simkit.report.calibration_report import (
    TOLERANCE,
    comparison,
    latency_fit,
    plot_calibration,
    report_markdown,
    seeds_for,
    simulate_pooled,
)
from simkit.report.run import write_text

LEAD = 60.0  # seconds of load before the experiment starts (the seed uses 30)
MAX_BIRTH_LEAD = 600.0  # seconds of load before the first scrape, at most
BIRTH_MARGIN = 4.0  # expected events of the rarest count before the first scrape (P(none) = 2 %)


def _exact(x: float) -> float:
    """Ten significant digits: a scrape grid kept to the microsecond over thousands of scrapes."""
    return float(f"{x:.10g}")


def routed(fits: list[VersionFit]) -> dict[str, float]:
    """The shares the ingress load carries: a version whose traffic began mid-recording (a
    candidate at weight 0 until the first iteration) gets a load of its own from its onset, so its
    simulated series appear mid-way too and PromQL's increase() treats both sides alike."""
    return {f.version: (0.0 if f.traffic_onset is not None else f.share) for f in fits}


def split(shares: dict[str, float]) -> tuple[dict[str, int], float]:
    """Integer weights (summing to 100, as Seldon admits) and the fraction of the load they can
    carry so that no version gets more than its recorded share; the rest is sent to each version
    directly, so the simulated split is the recorded one exactly, not rounded to whole percents."""
    total = sum(shares.values())
    if total <= 0:
        first = next(iter(shares))
        return {v: (100 if v == first else 0) for v in shares}, 1.0
    pct = {v: 100.0 * s / total for v, s in shares.items()}
    w = {v: int(math.floor(p + 1e-9)) for v, p in pct.items()}
    while sum(w.values()) < 100:  # each point to where it lowers the carried fraction least
        best = max(pct, key=lambda v: (pct[v] / (w[v] + 1), pct[v]))
        w[best] += 1
    carried = min([1.0, *(pct[v] / w[v] for v in w if w[v] > 0)])
    return w, carried


def _sdep_docs(recording: Recording, cal: Calibration, prepared: Any) -> tuple[dict[str, str], list[str]]:
    """File name -> YAML text for every manifest, and the manifest list, with traffic patched."""
    refs = {r.version: r for r in prepared.refs}
    groups: dict[tuple[str, str], list[Any]] = {}
    for f in cal.versions:
        groups.setdefault((f.identity.namespace, f.identity.deployment), []).append(f)
    weights: dict[tuple[str, str, str], int] = {}
    for key, fits in groups.items():
        by_version, _ = split(routed(fits))
        for f in fits:
            weights[(*key, f.identity.predictor)] = by_version[f.version]
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
            pred = {
                "name": f.identity.predictor,
                "traffic": weights[(ns, name, f.identity.predictor)],
                "graph": {"name": "classifier", "implementation": "SKLEARN_SERVER"},
            }
            ref = refs.get(f.version)
            k = weight_index(ref.pointer) if ref is not None and ref.obj.kind == "SeldonDeployment" else None
            if k is None or k in slots:
                extra.append(pred)
            else:
                slots[k] = pred
        if slots and sorted(slots) != list(range(len(slots))):
            raise DataError(
                f"calibrate: the weightObjRef fieldPaths of {ns}/{name} skip predictor indexes {sorted(slots)}"
            )
        sdep = {
            "apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"predictors": [slots[k] for k in sorted(slots)] + extra},
        }
        fname = f"seldondeployment-{name}.yaml"
        files[fname] = yaml.safe_dump(sdep, sort_keys=False)
        names.append(fname)
    return files, names


def load_start(cal: Calibration) -> float:
    """Unix time the calibrated load starts: before the first recorded scrape, long enough that
    the simulated series of every count present at that scrape (the rarest error code included)
    exist by then, as the recorded ones did; at least one scrape interval."""
    rates = [r for f in cal.versions for r in f.present_rates if r > 0]
    lead = cal.step
    if rates and min(rates) > 0:
        lead = max(lead, min(MAX_BIRTH_LEAD, BIRTH_MARGIN / min(rates)))
    return min(cal.start, cal.first - lead)


def scenario_document(
    recording: Recording, cal: Calibration, manifests: list[str], trace: str | None
) -> dict[str, Any]:
    epoch = math.ceil(cal.start) + LEAD
    lead = six_digits(epoch - load_start(cal))
    predictors: dict[str, Any] = {}
    loads: list[dict[str, Any]] = []
    groups: dict[str, list[VersionFit]] = {}
    calls = cal.total_qps + sum(f.feedback_qps for f in cal.versions)
    for f in cal.versions:
        predictors[f.identity.key] = behaviour(f, calls, cal)
        groups.setdefault(f"{f.identity.namespace}/{f.identity.deployment}", []).append(f)
    for sdep, fits in sorted(groups.items()):
        shares = routed(fits)
        qps = sum(f.predictions for f in fits if shares[f.version] > 0) / cal.span
        for f in fits:
            loads += own_loads(f, cal, epoch)
        if qps <= 0:
            continue
        weights, carried = split(shares)
        load: dict[str, Any] = {
            "name": f"requests-{sdep.replace('/', '-')}",
            "to": f"ingress:{sdep}",
            "start": -lead,
        }
        load.update(
            {"pattern": "trace", "file": trace}
            if trace and len(groups) == 1
            else {"qps": six_digits(qps * carried), "pattern": "poisson"}
        )
        loads.append(load)
        group_total = sum(shares.values())
        for f in fits:  # what integer weights cannot carry goes to the predictor directly
            if shares[f.version] <= 0:
                continue
            rest = qps * (f.share / group_total - carried * weights[f.version] / 100.0)
            if rest > qps * 1e-6:
                loads.append(
                    {
                        "name": f"{f.identity.predictor}-rest-of-split",
                        "to": f"predictor:{f.identity.key}",
                        "qps": six_digits(rest),
                        "pattern": "poisson",
                        "start": -lead,
                    }
                )
    for f in cal.versions:
        if f.feedback_qps > 0:
            # feedback whose recorded series appeared only after the first scrape starts there
            loads.append(
                {
                    "name": f"{f.identity.predictor}-feedback",
                    "to": f"feedback:{f.identity.key}",
                    "qps": six_digits(f.feedback_qps),
                    "pattern": "uniform" if f.feedback_regular else "poisson",
                    "start": -lead if f.feedback_present else six_digits(cal.first - epoch),
                    "payload": {"reward": six_digits(f.reward)},
                }
            )
    events = [e for f in cal.versions for e in error_events(f, epoch)]
    # scrape on the recorded instants: both sides' windows then hold the same scrapes
    offset = _exact((cal.first - epoch) % cal.step)
    return {
        "apiVersion": "simkit/v1alpha1",
        "kind": "Scenario",
        "metadata": {
            "name": f"{recording.header.experiment}-calibrated",
            "description": f"calibrated by simkit calibrate from {recording.path.name} "
            f"({rfc3339(cal.start)} to {rfc3339(cal.end)}, source {recording.header.source})",
        },
        "spec": {
            "manifests": manifests,
            "experiment": recording.header.experiment,
            "start": rfc3339(epoch),
            "seed": 1,
            "prometheus": {
                "scrapeInterval": _exact(cal.step),
                "scrapeOffset": offset,
                "executorOverhead": six_digits(cal.overhead),
            },
            "predictors": predictors,
            "load": loads,
            **({"events": events} if events else {}),
        },
    }


def trace_lines(cal: Calibration) -> str:
    """Arrival offsets (seconds from the load's start), spread evenly inside each interval; the
    share the integer weights carry (the rest is routed directly), with the rounding carried over."""
    fits = cal.versions
    _, carried = split(routed(fits))
    out = ["# recorded load shape: predictions per scrape interval, spread evenly"]
    origin = load_start(cal)
    owed = 0.0
    for (lo, hi, _), n in zip(
        cal.window_counts, cal.routed_counts or [c for *_, c in cal.window_counts], strict=True
    ):
        owed += n * carried
        k = int(math.floor(owed + 0.5))
        owed -= k
        out += [f"{lo - origin + (i + 0.5) * (hi - lo) / k:.4f}" for i in range(k)] if k else []
    return "\n".join(out) + "\n"


def calibrate_folder(
    recording: Recording, out: Path, seed: int = 1, compare: bool = True, engine: str | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Fit, write the scenario folder, and (with ``compare``) simulate it with ``engine`` (None:
    events, every call simulated) and write the report. Returns the lines to print and the
    ``-o json|yaml`` document (README, "Machine-readable output")."""
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
    header = (
        "# Written by simkit calibrate: per-version generators fitted from a recording (see report.md).\n"
    )
    write_text(out / "scenario.yaml", header + yaml.safe_dump(doc, sort_keys=False))
    from simkit.spec.bundle import load_scenario

    bundle = load_scenario(out)  # what simkit run will read must validate
    lines = [
        f"wrote scenario {out} ({len(cal.versions)} versions, total {cal.total_qps:.3g} req/s, "
        f"{'stationary Poisson load' if cal.stationary else 'load shape kept as ' + str(trace)}, "
        f"dispersion {cal.dispersion:.2f})"
    ]
    gaps = [f"{f.version}: {n}" for f in cal.versions for n in f.notes]
    lines += [f"not calibrated: {g}" for g in gaps]
    document: dict[str, Any] = {
        "scenario": str(out),
        "versions": [f.version for f in cal.versions],
        "totalQps": cal.total_qps,
        "stationary": cal.stationary,
        "dispersion": cal.dispersion,
        "notCalibrated": gaps,
        "comparison": None,
    }
    if compare:
        from simkit.sim.engine import choose_engine

        duration = cal.end - load_start(cal)
        ran = choose_engine(bundle, engine or "events").name
        seeds = seeds_for(cal, duration, ran, len(recording.db))
        simulated, n = simulate_pooled(out, duration, seed, seeds, ran)
        rows, ok = comparison(recording.db, simulated, cal, n)
        document["comparison"] = {
            "runs": n,
            "seed": seed,
            "engine": ran,
            "tolerance": TOLERANCE,
            "allWithin": ok,
            "rows": [
                {
                    "version": r.version,
                    "quantity": r.quantity,
                    "recorded": r.recorded,
                    "simulated": r.simulated,
                    "relativeDifference": r.rel,
                    "within": r.within,
                    "relativeStandardError": r.noise,
                    "comparable": r.comparable,
                }
                for r in rows
            ],
        }
        gof = [latency_fit(recording.db, simulated, f.identity.matchers, cal) for f in cal.versions]
        write_text(out / "report.md", report_markdown(cal, rows, gof, n, seed))
        plot_calibration(recording.db, simulated, cal, out / "calibration.png")
        lines.append(
            f"compared with {n} simulated run(s) of {cal.duration:g}s: "
            f"{'all within' if ok else 'NOT all within'} {TOLERANCE:.0%}; see {out / 'report.md'}"
        )
    return lines, document
