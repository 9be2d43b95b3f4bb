"""A version whose traffic starts mid-recording gets its recorded traffic, interval by interval
(simkit.replay.own_traffic): the arithmetic on hand-made counts, then calibration of a rollback
whose candidate stops taking traffic two scrapes before the recording ends (its counters go flat),
where one steady rate from the onset to the last scrape (the model before) is far off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import simkit.replay.calibrate as calibrate_module
from simkit.cli import main
from simkit.replay.own_traffic import OwnTraffic, Segment, own_traffic
from simkit.report.calibration_report import parse_report
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import load_scenario
from tests.support.recordings import recording_from_tsdb
from tests.support.scenario_edits import rollback_at_high_traffic

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
T = 1623770400.0


def _grid(counts: list[float], step: float = 15.0) -> list[tuple[float, float, float]]:
    return [(T + i * step, T + (i + 1) * step, n) for i, n in enumerate(counts)]


def test_the_first_scrape_keeps_its_count_from_where_the_next_interval_rate_puts_its_start() -> None:
    # born at T + 15 with 50 predictions; then 300 per 15 s (20/s): the start 2.5 s before
    got = own_traffic(_grid([50, 300, 310, 290]), T + 15, 15.0)
    assert got is not None
    assert got.segments[0] == Segment(T + 12.5, T + 15, 50.0)
    # the three steady intervals are one segment (each within 3 sd of the rate before it)
    assert got.segments[1:] == (Segment(T + 15, T + 60, 900.0),)
    assert got.runs_to_the_end and got.tail_span == pytest.approx(950 / (900 / 45))
    assert got.predictions == 950.0


def test_the_load_changes_rate_where_the_recorded_one_did_and_stops_where_it_stopped() -> None:
    # weight raised at the third interval, traffic stopped in the fifth, flat for the last two
    got = own_traffic(_grid([40, 300, 900, 120, 0, 0]), T + 15, 15.0)
    assert got is not None
    assert [(s.start - T, s.end - T, s.predictions) for s in got.segments] == [
        (13.0, 15.0, 40.0),
        (15.0, 30.0, 300.0),
        (30.0, 45.0, 900.0),
        (45.0, 60.0, 120.0),
    ]
    assert not got.runs_to_the_end and got.tail_span is None
    # a first count larger than a whole interval at the next rate starts one interval back
    back = own_traffic(_grid([500, 300]), T + 15, 15.0)
    assert back is not None and back.onset == T


def _steady_from_the_onset(
    intervals: list[tuple[float, float, float]], birth: float, step: float
) -> OwnTraffic:
    """The model before: one steady rate from where the average later rate puts the onset to the
    last scrape (for the mutation check)."""
    first_count = sum(n for _, b, n in intervals if b <= birth + 0.5 * step)
    last = intervals[-1][1]
    total = first_count + sum(n for a, _, n in intervals if a >= birth - 0.5 * step)
    later = (total - first_count) / max(last - birth, 1e-9)
    onset = birth - min(step, first_count / later if later > 0 else step)
    return OwnTraffic((Segment(onset, last, total),), last)


def _request_rate(report: str, version: str) -> float:
    row = next(r for r in parse_report(report) if r.version == version and r.quantity == "request rate (1/s)")
    assert row.rel is not None
    return row.rel


def _calibrated_request_rate_miss(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> float:
    folder = tmp / "scenario"
    shutil.copytree(SCENARIOS / "iris-rollback", folder)
    rollback_at_high_traffic(folder, error_limit=3)
    run = simulate_experiment(load_scenario(folder), engine="counts")
    assert run.result.rolled_back and run.result.end_time is not None
    end = run.result.end_time + 30.0  # two scrapes past the rollback
    run.world.run_until(end - run.world.epoch)
    db = run.world.tsdb
    assert db.min_time is not None
    rec = recording_from_tsdb(
        db, folder, tmp / "rb.rec", db.min_time, end, others=("metrics.yaml", "abtest.yaml")
    )
    import simkit.report.calibration_report as report_module

    monkeypatch.setattr(report_module, "MAX_SEEDS", 40)  # the request rate's noise at 40 runs: 0.6 %
    assert main(["calibrate", str(rec), "--out", str(tmp / "cal"), "--engine", "counts", "--quiet"]) == 0
    return _request_rate((tmp / "cal" / "report.md").read_text(), "iris-v2")


def test_a_candidate_whose_traffic_stopped_two_scrapes_before_the_end_is_calibrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """iris-rollback at 400 qps, rolled back (to the baseline) after two scrape intervals of the
    candidate's traffic, recorded for two more: the candidate's series hold three samples, the
    last two equal. Its recorded request rate (PromQL's increase() over the window) is 1.9/s
    where the raw counters say 5/s: Prometheus extrapolates the flat-tailed series differently.
    The interval-by-interval load reproduces it (measured 1.2 % off at 40 runs). Mutation: one steady rate
    from the onset to the last scrape, the model before, is 242 % off (measured). Only the
    request rate is judged: with 20 errors in the last interval, the recorded error rate and mean
    latency (ratios of two such extrapolations) have spreads of their own of 10-20 %; the
    heavier rollback of tests/integration/test_offline_evaluation.py judges every quantity."""
    assert _calibrated_request_rate_miss(tmp_path / "interval", monkeypatch) <= 0.05
    monkeypatch.setattr(calibrate_module, "own_traffic", _steady_from_the_onset)
    assert _calibrated_request_rate_miss(tmp_path / "steady", monkeypatch) > 0.5
