"""simkit calibrate on recordings made without a Prometheus (``tests/support/recordings.py``):
the causes issue 11 found, each with a test that fails on the old behaviour, and recordings that
used to end in a traceback (no latency buckets, a candidate that never served, ended rollouts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from simkit.cli import main
from simkit.replay.calibrate import Calibration, VersionFit
from simkit.replay.counting import Counter, Identity, window_edges
from simkit.replay.measure import Families
from simkit.replay.own_traffic import OwnTraffic, Segment
from simkit.replay.recording import read_recording
from simkit.report.calibrated_predictors import arrival_span, arrivals_per_completion, latency_spec, own_loads
from simkit.report.calibration import split
from simkit.report.calibration_report import parse_report, rarest, seeds_for
from simkit.sim.experiment import simulate_experiment
from simkit.sim.world import simulate
from simkit.spec.bundle import load_scenario
from simkit.tsdb import TSDB
from tests.support.recordings import recording_from_tsdb

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
T0 = 1623770403.0  # a scrape instant of the seed's era: Unix magnitudes are where float bounds slip


@pytest.mark.parametrize("end", [T0 + 3600.0, T0 + 3593.0])
def test_window_edges_keep_the_last_interval_on_or_off_a_scrape_instant(end: float) -> None:
    edges = window_edges(T0, end, 15.0)
    assert edges[0] == T0 and edges[-1] == end
    assert sum(b - a for a, b in zip(edges, edges[1:], strict=False)) == pytest.approx(end - T0)
    # mutation check: the old float arange end bound drops the last edge when end is on the grid
    old = np.arange(T0, end + 1e-9, 15.0)
    if end == T0 + 3600.0:
        assert old[-1] < end


def test_split_keeps_shares_that_are_not_whole_percents() -> None:
    weights, carried = split({"v1": 0.055, "v2": 0.945})
    assert sum(weights.values()) == 100 and weights == {"v1": 5, "v2": 95}
    # ingress carries `carried` of the load by the weights; the rest goes to each version directly
    routed = {v: carried * w / 100 for v, w in weights.items()}
    direct = {v: s - routed[v] for v, s in {"v1": 0.055, "v2": 0.945}.items()}
    assert all(d >= -1e-12 for d in direct.values())
    assert routed["v1"] + direct["v1"] == pytest.approx(0.055)  # not 0.05: the old rounding
    assert carried > 0.99
    assert split({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})[0] in (
        {"a": 34, "b": 33, "c": 33},
        {"a": 33, "b": 33, "c": 34},
        {"a": 33, "b": 34, "c": 33},
    )


def test_a_series_born_mid_recording_keeps_its_first_scrapes_count() -> None:
    db = TSDB()
    old = db.get_or_create({"__name__": "x_count", "k": "old"})
    born = db.get_or_create({"__name__": "x_count", "k": "born"})
    for i in range(10):
        old.append(T0 + 15 * i, 100.0 + 5 * i)
    for i in range(4, 10):
        born.append(T0 + 15 * i, 3.0 + 2 * (i - 4))  # 3 counted before its first scrape
    cnt = Counter(db, T0, 15.0)
    assert cnt.inc(old, T0, T0 + 135) == 45.0  # from its value at the first scrape
    assert cnt.inc(born, T0, T0 + 135) == 13.0  # from zero: 3 + 5 * 2 (increase() would say 10)
    assert cnt.inc(born, T0 + 60, T0 + 135) == 10.0  # a window starting on its first sample


def _production_like() -> Calibration:
    """2,000 qps for 30 minutes of 30 s scrapes, the candidate's errors the rarest count (~1,900)."""
    ident = Identity("prod", "model", "baseline", ())
    fam = Families("x", True, True, "x")
    fits = [
        VersionFit(v, ident, fam, n, [], [], 0.02, {"500": e}, 0.2 * n / 1800, 1.0)
        for v, n, e in (("v1", 1900 * 1800, 0.008), ("v2", 100 * 1800, 0.0105))
    ]
    return Calibration(T0, T0 + 1800, 30.0, T0, T0 + 1800, fits, 2000.0, 1.0, True)


def test_seeds_for_bounds_each_engine_by_its_own_cost() -> None:
    cal = _production_like()
    # events: 4.3 million calls a run, beyond the budget: one run
    assert seeds_for(cal, 1830.0, "events", 150) == 1
    # counts: its cost is per series and scrape, so the noise target decides (20,000 / 1,890)
    assert seeds_for(cal, 1830.0, "counts", 150) == 11
    # and a recording with many series is bounded by the samples written
    assert seeds_for(cal, 1830.0, "counts", 100_000) == 1


def test_a_mean_latency_carried_by_a_few_slow_calls_asks_for_more_seeds() -> None:
    """The live seed recorded one call over 1 s among 400 of ~12 ms: that call carries a third of
    the mean, which is then as noisy as a count of ~20 events, not 400 (measured: 22 seeds left the
    pooled mean 4.6 % off; 146 seeds, 2.3 %)."""
    cal = _production_like()
    fast = cal.versions[0]
    fast.predictions, fast.errors, fast.feedback_qps = 400.0, {}, 10.0
    fast.bounds, fast.counts = [0.005, 0.01, 0.025, 1.0, 2.5], [100.0, 200.0, 99.0, 0.0, 0.0]
    cal.versions = [fast]
    assert rarest(cal) == 400.0  # no slow call: the predictions are the rarest count
    fast.counts = [100.0, 200.0, 98.0, 0.0, 1.0]
    assert 5.0 < rarest(cal) < 40.0  # one slow call: 400 / cv^2, cv^2 ~ 45
    assert seeds_for(cal, 100.0) > 2500 / 40


@pytest.fixture(scope="module")
def rollback_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = SCENARIOS / "iris-rollback"
    run = simulate_experiment(load_scenario(folder), engine="events")
    db = run.world.tsdb
    assert db.min_time is not None and run.result.end_time is not None
    return recording_from_tsdb(
        db,
        folder,
        tmp_path_factory.mktemp("rb") / "rollback.rec",
        db.min_time,
        run.result.end_time,
        others=("metrics.yaml", "abtest.yaml"),
    )


def test_calibrate_without_latency_buckets_fits_the_rest_and_says_so(
    rollback_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = rollback_recording.read_text().splitlines()[1:]
    assert not [ln for ln in body if "_bucket{" in ln]  # its Metrics never read the buckets
    out = tmp_path / "cal"
    assert main(["calibrate", str(rollback_recording), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not calibrated: iris-v1: latency quantiles" in printed
    report = (out / "report.md").read_text()
    assert "iris-v2: latency quantiles (p50/p95/p99): no client _bucket series recorded" in report
    rows = parse_report(report)
    assert not [r for r in rows if r[1].startswith("p9")]  # no quantile rows: nothing to compare them with
    assert all(r[5] for r in rows) and {r[1] for r in rows if r[0] == "iris-v1"} >= {
        "request rate (1/s)",
        "mean latency (s)",
    }
    scenario = yaml.safe_load((out / "scenario.yaml").read_text().split("\n", 1)[1])
    latency = scenario["spec"]["predictors"]["ns-production/iris/baseline"]["latency"]
    assert latency["distribution"] == "lognormal" and latency["mean"] == pytest.approx(0.0138, rel=0.1)


def test_calibrate_a_recording_where_the_candidate_never_served(tmp_path: Path) -> None:
    folder = SCENARIOS / "iris-abtest"
    world = simulate(str(folder), 120.0, 3)  # no experiment: the candidate keeps traffic 0
    db = world.tsdb
    assert db.min_time is not None and db.max_time is not None
    rec = recording_from_tsdb(db, folder, tmp_path / "before.rec", db.min_time, db.max_time)
    assert main(["calibrate", str(rec), "--out", str(tmp_path / "cal")]) == 0
    report = (tmp_path / "cal" / "report.md").read_text()
    assert "iris-v2: never served a prediction in the recording" in report
    rows = parse_report(report)
    assert {r[0] for r in rows} == {"iris-v1"} and all(r[5] for r in rows)
    sdep = yaml.safe_load((tmp_path / "cal" / "seldondeployment-iris.yaml").read_text())
    assert [p["traffic"] for p in sdep["spec"]["predictors"]] == [100, 0]
    assert main(["run", str(tmp_path / "cal"), "--quiet"]) == 0


def _no_traceback(capsys: pytest.CaptureFixture[str], code: int) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert code in (0, 2), captured.err
    if code == 2:
        assert len(captured.err.strip().splitlines()) == 1, captured.err
    return captured.err


def test_no_command_ends_in_a_traceback_on_recordings_the_tool_wrote(
    rollback_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = SCENARIOS / "iris-abtest"
    world = simulate(str(folder), 100.0, 1)
    db = world.tsdb
    assert db.min_time is not None and db.max_time is not None
    recs = [
        rollback_recording,
        recording_from_tsdb(db, folder, tmp_path / "short.rec", db.min_time, db.max_time),
        recording_from_tsdb(db, folder, tmp_path / "one-scrape.rec", db.min_time, db.min_time),
        recording_from_tsdb(db, folder, tmp_path / "two-scrapes.rec", db.min_time, db.min_time + 15.0),
    ]
    for rec in recs:
        h = read_recording(rec).header
        for args in (
            ["replay", str(rec)],
            ["replay", str(rec), "--at", str(h.end)],
            ["replay", str(rec), "--until", str(h.start)],
            ["replay", str(rec), "--strategy", "flagger", "--counterfactual"],
            ["calibrate", str(rec), "--out", str(tmp_path / f"cal-{rec.stem}")],
            ["calibrate", str(rec), "--out", str(tmp_path / f"nocmp-{rec.stem}"), "--no-compare"],
        ):
            _no_traceback(capsys, main(args))
    err = _no_traceback(capsys, main(["calibrate", str(recs[2]), "--out", str(tmp_path / "x")]))
    assert "nothing to calibrate" in err


def test_a_quantity_promql_cannot_measure_on_the_recording_is_named_not_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback recorded with the counts engine: the candidate's predictions and errors first
    appear at the last scrape (one sample), so increase() gives no recorded value. Those rows are
    n/a, out of the verdict, and named under "Not calibrated"; the rest is still within 5 %."""
    folder = SCENARIOS / "iris-rollback"
    run = simulate_experiment(load_scenario(folder), engine="counts")
    db = run.world.tsdb
    assert db.min_time is not None and run.result.end_time is not None
    rec = recording_from_tsdb(
        db,
        folder,
        tmp_path / "rb.rec",
        db.min_time,
        run.result.end_time,
        others=("metrics.yaml", "abtest.yaml"),
    )
    import simkit.report.calibration_report as report_module

    monkeypatch.setattr(report_module, "MAX_SEEDS", 100)  # the n/a rows' rarity would ask for 1,000 runs
    assert main(["calibrate", str(rec), "--out", str(tmp_path / "cal")]) == 0
    report = (tmp_path / "cal" / "report.md").read_text()
    rows = parse_report(report)
    na = [r for r in rows if r.recorded is None]
    assert na and all(not r.within for r in na)
    assert all(r.within for r in rows if r.recorded is not None)
    assert "n/a" in report and "Verdict: all" in report
    for r in na:
        assert f"- {r.version}: {r.quantity}: fitted from the raw counters" in report


def test_a_version_starting_mid_recording_gets_the_slow_calls_that_had_not_completed() -> None:
    """A call is recorded when it completes: of a version whose load starts at its onset 60 s
    before the last scrape, a 6-s call is recorded with probability 54/60, a 10-ms one with
    59.99/60. The calibrated weights are arrivals, so the simulated completions (and their mean,
    which a few slow calls can carry: the flake the serve test showed, 5.2% off) are the
    recorded ones. Mutation: without the span the slow bucket keeps its recorded weight."""
    assert arrivals_per_completion(6.0, 60.0) == pytest.approx(60 / 54)
    assert arrivals_per_completion(6.0, None) == 1.0
    ident = Identity("prod", "iris", "candidate", ())
    fam = Families("x", True, True, "x")
    f = VersionFit("v2", ident, fam, 300.0, [0.01, 0.025, 10.0], [100.0, 198.0, 2.0], 0.05, {}, 0.0, 1.0)
    f.traffic = OwnTraffic((Segment(T0, T0 + 60, 300.0),), T0 + 60)
    cal = Calibration(T0 - 15, T0 + 60, 15.0, T0 - 15, T0 + 60, [f], 5.0, 1.0, True)
    spec = latency_spec(f, arrival_span(f, cal))
    slow = spec["components"][-1]
    mid = (slow["low"] + slow["high"]) / 2
    assert slow["weight"] == pytest.approx(2.0 * 60 / (60 - mid))
    assert latency_spec(f)["components"][-1]["weight"] == 2.0
    (load,) = own_loads(f, cal, T0)
    assert load["qps"] > 300.0 / 60 and "end" not in load  # a little more arrives than completes
