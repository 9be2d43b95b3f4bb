"""simkit replay over a recording made through the in-process API: decisions, bad input,
multi-strategy reuse, and the counterfactual thinning's invariants."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from simkit.cli import main
from simkit.prepare import prepare
from simkit.promql.api import PrometheusAPITransport
from simkit.replay.commands import load_manifests
from simkit.replay.record import RecordRequest, record
from simkit.replay.recording import HEADER_PREFIX, read_recording
from simkit.replay.replay import Replayer
from simkit.sim.experiment import SimRun, simulate_experiment
from simkit.spec.bundle import load_scenario

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"
EPOCH = "2021-06-15T15:20:18Z"
DELAY = 3.08  # the seed scenario's spec.controller.iterationDelay: the recorded run's cadence


@pytest.fixture(scope="module")
def seed_run() -> SimRun:
    # the event engine's draw at seed 1 gives the candidate traffic in every recorded window, which
    # the "all recorded" assertion below relies on (with counts, seed 1 leaves its first window empty)
    return simulate_experiment(load_scenario(SEED), 1, engine="events")


@pytest.fixture(scope="module")
def recording(seed_run: SimRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = seed_run.world.tsdb
    files, docs, exp = load_manifests(str(SEED / "experiment.yaml"), [str(SEED / "metrics.yaml")])
    out = tmp_path_factory.mktemp("rec") / "seed.rec"
    client = httpx.Client(transport=PrometheusAPITransport(db, lambda: db.max_time or 0.0))
    record(
        client, prepare(exp, docs), files, RecordRequest("http://p", db.min_time or 0, db.max_time or 0, out)
    )
    return out


def test_replay_without_manifest_weights_infers_them_and_matches_the_sim(
    seed_run: SimRun, recording: Path
) -> None:
    run = Replayer(read_recording(recording), seed=1, iteration_delay=DELAY).run(
        "iter8", at=seed_run.world.epoch
    )
    assert run.notes == ("initial weights inferred from the recorded traffic shares",)
    assert [(r.decision.winner, r.weights_after) for r in run.result.iterations] == [
        (r.decision.winner, r.weights_after) for r in seed_run.result.iterations
    ]
    assert all(b.basis == "recorded" for b in run.basis)


def test_multi_strategy_replay_parses_once_and_writes_a_table(
    recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import simkit.replay.commands as commands

    reads: list[str] = []
    real = commands.read_recording

    def counting(path: str) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(commands, "read_recording", counting)
    code = main(
        [
            "replay",
            str(recording),
            "--at",
            EPOCH,
            "--strategy",
            "iter8",
            "--strategy",
            "thompson",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0 and len(reads) == 1
    out = capsys.readouterr().out
    assert "would have DECIDED" in out and "CAUSED" in out
    rows = (tmp_path / "comparison.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,time,iter8.winner,iter8.weights,iter8.verdict,iter8.basis")
    assert "thompson.basis" in rows[0] and len(rows) == 16
    # thompson explores 50/50 early while the recording sent the candidate nothing: flagged
    assert "beyond-record" in (tmp_path / "comparison.csv").read_text()
    for name in ("iter8", "thompson"):
        assert {p.name for p in (tmp_path / name).iterdir()} == {"status.yaml", "trace.csv", "rollout.png"}


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_other_format_version_exits_2(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = recording.read_text().splitlines(keepends=True)
    header = json.loads(lines[0][len(HEADER_PREFIX) :])
    header["formatVersion"] = 99
    bad = tmp_path / "v99.rec"
    bad.write_text(HEADER_PREFIX + json.dumps(header) + "\n" + "".join(lines[1:]))
    assert main(["replay", str(bad)]) == 2
    assert "format version 99" in _one_error_line(capsys)
    plain = tmp_path / "plain.om"
    plain.write_text("".join(lines[1:]))
    assert main(["replay", str(plain)]) == 2
    assert "not a simkit-recording" in _one_error_line(capsys)


def test_missing_metric_series_exits_2(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = recording.read_text().splitlines(keepends=True)
    bad = tmp_path / "lacks.rec"
    bad.write_text(
        "".join(ln for ln in lines if not ln.startswith("seldon_api_executor_server_requests_seconds_count"))
    )
    assert main(["replay", str(bad), "--strategy", "iter8"]) == 2
    line = _one_error_line(capsys)
    assert (
        "strategy iter8 needs metric" in line and "seldon_api_executor_server_requests_seconds_count" in line
    )


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--at", "2020-01-01T00:00:00Z"], "outside the recording"),
        (["--at", EPOCH, "--until", "2021-06-15T15:20:00Z"], "must lie between"),
        (["--at", EPOCH, "--until", "2031-01-01T00:00:00Z"], "must lie between"),
        (["--at", EPOCH, "--until", "soon"], "--until"),
    ],
)
def test_time_outside_the_recording_exits_2(
    recording: Path, extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(recording), *extra]) == 2
    assert needle in _one_error_line(capsys)


def test_a_start_too_late_for_every_iteration_replays_up_to_the_end_and_says_so(
    seed_run: SimRun, recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Formerly refused ("need data until"): now the iterations that have data run, the rest do not."""
    at = seed_run.world.epoch + 60  # 15 iterations need 196 s more; the recording has ~125 s
    run = Replayer(read_recording(recording), seed=1).run("iter8", at=at)
    end = read_recording(recording).header.end
    assert 0 < len(run.result.iterations) < 15
    assert run.result.iterations[-1].time <= end < run.result.iterations[-1].time + 13.08
    assert not run.result.completed and not run.result.failed and run.result.stage == "Running"
    assert f"stopped after iteration {len(run.result.iterations)} of 15: the recording ends" in run.notes[-1]
    conditions = {c["type"]: c for c in run.result.experiment_object["status"]["conditions"]}
    assert conditions["Completed"]["reason"] == "RecordingEnded" and conditions["Failed"]["status"] == "False"
    assert main(["replay", str(recording), "--at", str(at), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "stopped (no more data)" in out and "the recording ends at" in out
    assert (tmp_path / "o" / "status.yaml").is_file()


def test_until_chooses_a_window_and_the_replay_says_where_it_stopped(
    seed_run: SimRun, recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = seed_run.world.epoch + 50.0  # iterations at 0, 13.08, 26.16, 39.24
    run = Replayer(read_recording(recording), seed=1, iteration_delay=DELAY).run(
        "iter8", at=seed_run.world.epoch, until=until
    )
    assert len(run.result.iterations) == 4
    assert "the --until window ends" in run.notes[-1] and "iteration 5 would run" in run.notes[-1]
    assert [(r.decision.winner, r.weights_after) for r in run.result.iterations] == [
        (r.decision.winner, r.weights_after) for r in seed_run.result.iterations[:4]
    ]
    assert (
        main(
            [
                "replay",
                str(recording),
                "--at",
                EPOCH,
                "--until",
                "2021-06-15T15:21:08Z",
                "--iteration-delay",
                "3.08s",
            ]
        )
        == 0
    )
    assert "stopped after iteration 4 of 15: the --until window ends" in capsys.readouterr().out


def test_counterfactual_thinning_invariants(recording: Path) -> None:
    replayer = Replayer(read_recording(recording), seed=4)
    # a slow canary (1 % steps) stays far below the candidate ramp the recording routed, so the
    # candidate is thinned, while its baseline gets more than recorded: flagged beyond-record
    run = replayer.run(
        "flagger",
        at=1623770418.0,
        counterfactual=True,
        params={"stepWeight": 1, "maxWeight": 50, "threshold": 10},
    )
    bases = [b.basis for b in run.basis]
    assert bases[0] == "recorded" and bases[-1] == "beyond-record"
    assert "iris-v1 at" in run.basis[-1].note
    again = replayer.run(
        "flagger",
        at=1623770418.0,
        counterfactual=True,
        params={"stepWeight": 1, "maxWeight": 50, "threshold": 10},
    )
    assert [b.basis for b in run.basis] == [b.basis for b in again.basis]
    assert [r.values() for r in run.result.iterations] == [r.values() for r in again.result.iterations]


def test_thinner_keeps_histograms_consistent(recording: Path) -> None:
    from simkit.replay.counterfactual import Thinner

    rec = read_recording(recording)
    replayer = Replayer(rec)
    thinner = Thinner(
        rec.db,
        replayer.selectors,
        replayer.traffic,
        replayer.prepared.plan.versions,
        np.random.default_rng(0),
    )
    thinner.advance(1623770418.0, lambda lo, hi: {"iris-v1": 95.0, "iris-v2": 95.0})
    thinner.advance(rec.header.end, lambda lo, hi: {"iris-v1": 10.0, "iris-v2": 0.0})
    assert any(state == "thinned" for _, state in thinner.states)
    derived = thinner.derived
    for s in derived:
        t, v = s.arrays()
        orig = next(x for x in rec.db if x.labels == s.labels)
        ot, ov = orig.arrays()
        assert t.tolist() == ot.tolist()
        if s.name.endswith(("_count", "_bucket")):
            assert (np.diff(v) >= 0).all() and (v <= ov + 1e-9).all()
    # per scrape: buckets monotone in le, and _count equal to the +Inf bucket
    checked = 0
    for s in derived:
        if s.name.endswith("_count"):
            rest = {k: x for k, x in s.labels if k != "__name__"}
            inf = [
                b
                for b in derived
                if b.name == s.name[:-6] + "_bucket"
                and dict(b.labels).get("le") == "+Inf"
                and {k: x for k, x in b.labels if k not in ("__name__", "le")} == rest
            ]
            if inf:  # only the client histogram's buckets are read by the seed's Metrics
                checked += 1
                assert s.arrays()[1].tolist() == inf[0].arrays()[1].tolist()
    assert checked >= 2
