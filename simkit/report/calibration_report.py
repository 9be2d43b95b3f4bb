"""``report.md`` of ``simkit calibrate``: the calibrated scenario simulated, pooled over seeds, and
compared with the recording quantity by quantity.

Every quantity the recording holds (:func:`simkit.replay.measure.measure`) is measured by the
same PromQL over the same window (the recorded scrapes) on the recording and on the simulated
runs pooled over seeds. The number of seeds is chosen so that the rarest calibrated count (a
version's predictions, feedback calls or errors of one code) reaches :data:`TARGET_EVENTS` in the
pool, within a bounded cost (:data:`MAX_SIM_EVENTS` calls for the events engine,
:data:`MAX_SIM_SAMPLES` samples for the counts engine, whose cost does not grow with traffic): a
rate fitted from four recorded errors can only be checked against thousands of simulated ones. Each row states the recorded value, the
simulated value, the relative difference, the 5 % verdict and the simulated side's sampling
noise (one standard error, from the pooled count); "Not calibrated" lists what the recording
could not give.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from simkit.files import atomic_path
from simkit.records import rfc3339
from simkit.replay.calibrate import Calibration, VersionFit
from simkit.replay.counting import Counter
from simkit.replay.measure import CLIENT, PREDICT, measure, pool
from simkit.tsdb import TSDB, Matcher

TOLERANCE = 0.05
TARGET_EVENTS = 2500  # pooled simulated events of the rarest calibrated count: ~2 % noise
TARGET_EVENTS_COUNTS = 20_000  # the same on the counts engine, whose seeds cost per scrape: ~0.7 %
MAX_SIM_EVENTS = 1_200_000  # calls simulated in all, at most (~40 s of the events engine)
# samples written in all by the counts engine, at most (~4 us each, pooling included: ~4 s), a
# run's set-up (~20 ms: the scenario's world built again) counted as SEED_SAMPLES more
MAX_SIM_SAMPLES = 1_000_000
SEED_SAMPLES = 5_000
SIMULATED_PER_RECORDED = 2  # series a simulated world writes per recorded one (both histograms)
MAX_SEEDS = 1000


def latency_cv2(f: VersionFit) -> float:
    """The squared coefficient of variation of the recorded latency, from its buckets (each at its
    midpoint): a mean latency carried by a few slow calls is as noisy as a count of
    ``predictions / cv2`` events."""
    n = sum(f.counts)
    if n <= 0:
        return 0.0
    mids = [(a + b) / 2 for a, b in zip([0.0, *f.bounds[:-1]], f.bounds, strict=True)]
    m1 = sum(c * x for c, x in zip(f.counts, mids, strict=True)) / n
    m2 = sum(c * x * x for c, x in zip(f.counts, mids, strict=True)) / n
    return max(m2 - m1 * m1, 0.0) / (m1 * m1) if m1 > 0 else 0.0


def rarest(cal: Calibration) -> float:
    """The smallest recorded count among the calibrated ones (predictions, feedback, errors, and
    the mean latency's equivalent count, :func:`latency_cv2`)."""
    counts = []
    for f in cal.versions:
        if f.predictions > 0:
            counts.append(f.predictions)
            counts += [f.predictions * r for r in f.errors.values() if r > 0]
            cv2 = latency_cv2(f)
            if cv2 > 1.0:
                counts.append(f.predictions / cv2)
        if f.feedback_qps > 0:
            counts.append(f.feedback_qps * cal.span)
    return max(min(counts), 1.0) if counts else 1.0


def seeds_for(cal: Calibration, duration: float, engine: str = "events", series: int = 1) -> int:
    """Seeds enough that the rarest calibrated count reaches TARGET_EVENTS (TARGET_EVENTS_COUNTS on
    the counts engine) in the pool, within the cost bound of the engine that runs them: the events
    engine's cost follows the calls simulated (:data:`MAX_SIM_EVENTS`), the counts engine's the
    samples written, one per series and scrape whatever the traffic (:data:`MAX_SIM_SAMPLES`;
    ``series`` is the recording's count, the simulated world writing about
    :data:`SIMULATED_PER_RECORDED` times as many)."""
    by_noise = math.ceil((TARGET_EVENTS_COUNTS if engine == "counts" else TARGET_EVENTS) / rarest(cal))
    if engine == "counts":
        samples = (
            SIMULATED_PER_RECORDED * max(series, 1) * (duration / max(cal.step, 1e-9) + 1) + SEED_SAMPLES
        )
        by_cost = max(1, int(MAX_SIM_SAMPLES // max(samples, 1.0)))
    else:
        calls = (
            sum(f.predictions + f.feedback_qps * cal.span for f in cal.versions)
            * duration
            / max(cal.span, 1e-9)
        )
        by_cost = max(1, int(MAX_SIM_EVENTS // max(calls, 1.0)))
    return int(max(1, min(MAX_SEEDS, by_noise, by_cost)))


def simulate_pooled(
    folder: Path, duration: float, seed: int, seeds: int, engine: str = "events"
) -> tuple[TSDB, int]:
    """The calibrated world run ``seeds`` times (seeds ``seed`` ...), pooled; one world in memory at a
    time. The events engine by default (every call simulated); :func:`seeds_for` bounds the cost of
    whichever engine runs."""
    from simkit.sim.engine import make_world
    from simkit.spec.bundle import load_scenario

    bundle = load_scenario(folder)

    def runs() -> Iterator[TSDB]:
        for k in range(seeds):
            world, _ = make_world(bundle, seed + k, engine)
            world.run_until(world.begin + duration)
            yield world.tsdb

    return pool(runs())


@dataclass(frozen=True)
class Row:
    """One calibrated quantity of one version, both sides, and the verdict."""

    version: str
    quantity: str
    recorded: float | None
    simulated: float | None
    rel: float | None
    within: bool
    noise: float | None = None  # relative standard error of the simulated value
    comparable: bool = True  # False: PromQL gives no recorded value (its series has one sample)


def _noise(
    quantity: str, value: float | None, sim: dict[str, float | None], span: float, seeds: int
) -> float | None:
    """One relative standard error from the pooled count behind a count-based quantity."""
    if value is None or value <= 0:
        return None
    if quantity.endswith("rate (1/s)"):
        n = value * span * seeds
    elif quantity.startswith("error rate"):
        n = value * (sim.get("request rate (1/s)") or 0.0) * span * seeds
    else:
        return None
    return 1.0 / math.sqrt(n) if n > 0 else None


def comparison(recorded: TSDB, simulated: TSDB, cal: Calibration, seeds: int = 1) -> tuple[list[Row], bool]:
    """Every quantity the recording gives, per version, measured by the same PromQL on both sides."""
    rows: list[Row] = []
    for f in cal.versions:
        if not f.served and f.families.requests is not None:
            continue  # never served: nothing recorded to compare (listed under "not calibrated")
        rec = measure(recorded, f.identity.matchers, f.families, cal.first, cal.last)
        sim = measure(simulated, f.identity.matchers, f.families, cal.first, cal.last, seeds)
        for key in list(dict.fromkeys([*rec, *sim])):
            if key not in rec and not key.startswith("error rate"):
                continue  # the recording cannot give it
            a, b = rec.get(key, 0.0), sim.get(key, 0.0)
            if key not in rec and key.split()[-1] in f.errors:
                a = None  # errors recorded (and fitted), but no PromQL value over the window
            noise = _noise(key, b, sim, cal.span, seeds)
            if a is None and b is not None:  # increase() needs two recorded samples in the window
                rows.append(Row(f.version, key, a, b, None, False, noise, comparable=False))
                continue
            if a is None or b is None:
                rows.append(Row(f.version, key, a, b, None, a is None and b is None, noise))
                continue
            rel = abs(b - a) / abs(a) if a else (0.0 if not b else None)
            rows.append(Row(f.version, key, a, b, rel, rel is not None and rel <= TOLERANCE, noise))
    return rows, all(r.within for r in rows if r.comparable)


def _buckets(db: TSDB, matchers: tuple[Matcher, ...], cal: Calibration) -> tuple[list[float], np.ndarray]:
    cnt = Counter(db, cal.first, cal.step)
    by_le: dict[float, float] = {}
    for s in db.select([Matcher("__name__", "=", f"{CLIENT}_bucket"), *matchers]):
        if s.label_map.get("service", "") in PREDICT:
            le = s.label_map["le"]
            key = math.inf if le == "+Inf" else float(le)
            by_le[key] = by_le.get(key, 0.0) + cnt.inc(s, cal.first, cal.last)
    les = sorted(by_le)
    cum = np.array([by_le[k] for k in les])
    return les, np.diff(np.concatenate(([0.0], cum))).clip(min=0)


def latency_fit(
    recorded: TSDB, simulated: TSDB, matchers: tuple[Matcher, ...], cal: Calibration
) -> dict[str, float]:
    """Two-sample chi-square over non-empty buckets, and the Kolmogorov distance of bucket CDFs."""
    from scipy.stats import chi2_contingency

    _, a = _buckets(recorded, matchers, cal)
    _, b = _buckets(simulated, matchers, cal)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    keep = (a + b) > 0
    if a.sum() <= 0 or b.sum() <= 0 or keep.sum() < 2:
        return {"chi2": math.nan, "p": math.nan, "ks": math.nan}
    chi2, p, _, _ = chi2_contingency(np.vstack([a[keep], b[keep]]))
    ks = float(np.max(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())))
    return {"chi2": float(chi2), "p": float(p), "ks": ks}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.5g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def report_markdown(
    cal: Calibration, rows: list[Row], gof: list[dict[str, float]], seeds: int = 1, seed: int = 1
) -> str:
    ok = all(r.within for r in rows if r.comparable)
    compared = [r for r in rows if r.comparable]
    lines = [
        "# Calibration report",
        "",
        f"Recording {rfc3339(cal.start)} to {rfc3339(cal.end)} ({cal.duration:g}s, step {cal.step:g}s; "
        f"scrapes {rfc3339(cal.first)} to {rfc3339(cal.last)}); load {cal.total_qps:.4g} req/s, index of "
        f"dispersion {cal.dispersion:.3f} "
        f"({'stationary: one Poisson load' if cal.stationary else 'non-stationary: trace file'}); "
        f"executor overhead {cal.overhead * 1000:.3f} ms.",
        "",
        f"Recorded vs simulated, measured by the same PromQL over the same window (the recorded scrapes, "
        f"{rfc3339(cal.first)} to {rfc3339(cal.last)}) on both sides; the simulated side pools {seeds} run(s) "
        f"(seeds {seed} to {seed + seeds - 1}); quantiles by `histogram_quantile` on both; tolerance "
        f"{TOLERANCE:.0%}; 'sim. noise' is one relative standard error of the pooled simulated count.",
        "",
        f"Verdict: {'all' if ok else 'NOT all'} {len(compared)} compared quantities within {TOLERANCE:.0%}"
        + (
            f" ({len(rows) - len(compared)} with no recorded PromQL value: n/a)."
            if len(compared) < len(rows)
            else "."
        ),
        "",
        "| version | quantity | recorded | simulated | rel. diff | within 5% | sim. noise |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.version} | {r.quantity} | {_fmt(r.recorded)} | {_fmt(r.simulated)} | {_pct(r.rel)} | "
        f"{'yes' if r.within else 'NO' if r.comparable else 'n/a'} | {_pct(r.noise)} |"
        for r in rows
    ]
    gaps = [(f.version, n) for f in cal.versions for n in f.notes]
    gaps += [
        (
            r.version,
            f"{r.quantity}: fitted from the raw counters, but its recorded series have fewer than "
            "two samples in the window, so PromQL's increase() gives no recorded value to compare with",
        )
        for r in rows
        if not r.comparable
    ]
    lines += ["", "## Not calibrated", ""]
    lines += [f"- {v}: {n}" for v, n in gaps] if gaps else ["Nothing: every quantity above was fitted."]
    fitted = [(f, g) for f, g in zip(cal.versions, gof, strict=True) if not math.isnan(g["ks"])]
    if fitted:
        lines += [
            "",
            "Latency buckets, goodness of fit (two-sample chi-square over non-empty buckets; Kolmogorov "
            "distance of the bucket CDFs):",
            "",
            "| version | chi2 | p | KS |",
            "|---|---|---|---|",
        ]
        lines += [f"| {f.version} | {g['chi2']:.4g} | {g['p']:.4g} | {g['ks']:.4g} |" for f, g in fitted]
    return "\n".join(lines) + "\n"


class ReportRow(NamedTuple):
    version: str
    quantity: str
    recorded: float | None
    simulated: float | None
    rel: float | None
    within: bool
    noise: float | None


def parse_report(text: str) -> list[ReportRow]:
    """The quantity table of a ``report.md``, row by row."""

    def num(c: str) -> float | None:
        return None if c == "-" else float(c.rstrip("%")) / (100.0 if c.endswith("%") else 1.0)

    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 7 or cells[0] == "version" or cells[0].startswith("---"):
            continue
        out.append(
            ReportRow(
                cells[0],
                cells[1],
                num(cells[2]),
                num(cells[3]),
                num(cells[4]),
                cells[5] == "yes",
                num(cells[6]),
            )
        )
    return out


def plot_calibration(recorded: TSDB, simulated: TSDB, cal: Calibration, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cal.versions)
    fig, axes = plt.subplots(n + 1, 1, figsize=(8, 2.4 * (n + 1)), squeeze=False)
    for ax, f in zip([a[0] for a in axes[:n]], cal.versions, strict=True):
        for db, label, style in ((recorded, "recorded", "-"), (simulated, "simulated", "--")):
            les, counts = _buckets(db, f.identity.matchers, cal)
            if counts.sum() > 0:
                xs = [x if math.isfinite(x) else (les[-2] * 2 if len(les) > 1 else 1.0) for x in les]
                ax.step(xs, np.cumsum(counts) / counts.sum(), where="post", linestyle=style, label=label)
        ax.set_xscale("log")
        ax.set_ylabel(f"{f.version}\nCDF")
        if ax.get_lines():
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
