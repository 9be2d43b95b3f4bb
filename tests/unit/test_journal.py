"""The live run's JSON-lines journal: durability format, resume point, torn lines, identity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simkit.errors import DataError
from simkit.live.journal import ExperimentIdentity, Journal
from simkit.ports import ObjectPatch, ObjectRef
from simkit.strategies.base import Decision

EXP = ExperimentIdentity("ns-production", "quickstart-exp")
SDEP = ObjectRef("machinelearning.seldon.io/v1", "SeldonDeployment", "ns-production", "iris")


def _patch(a: int, b: int) -> ObjectPatch:
    return ObjectPatch(
        SDEP,
        (
            {"op": "add", "path": "/spec/predictors/0/traffic", "value": a},
            {"op": "add", "path": "/spec/predictors/1/traffic", "value": b},
        ),
    )


def _iteration(j: Journal, n: int, weights: tuple[int, int], *, stop_after: str = "") -> None:
    """One iteration as the live loop writes it; ``stop_after`` simulates a crash after that record."""
    j.iteration_started(
        n,
        time=1000.0 + 10 * n,
        metrics={"iter8-seldon/mean-latency": {"iris-v1": 0.016}},
        weights={"iris-v1": 100, "iris-v2": 0},
    )
    if stop_after == "started":
        return
    j.decision(
        n,
        Decision(
            weights={"iris-v1": weights[0], "iris-v2": weights[1]},
            winner="iris-v2",
            assessments={"iris-v2": (True, True)},
            reason="ok",
            state={"n": n},
        ),
    )
    if stop_after == "decision":
        return
    j.patch_intent(n, [_patch(*weights)], {"iris-v1": weights[0], "iris-v2": weights[1]})
    if stop_after == "intent":
        return
    j.patch_applied(n, {"iris-v1": weights[0], "iris-v2": weights[1]})
    if stop_after == "applied":
        return
    j.iteration_completed(
        n,
        state={"n": n, "posterior": [1.5, 2.0]},
        start_time=1010.0,
        vrfp="iris-v2",
        weights={"iris-v1": weights[0], "iris-v2": weights[1]},
    )


def test_every_record_is_one_json_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10))
        j.finished(reason="completed", outcome={"winner": "iris-v2"})
    lines = path.read_text().splitlines()
    types = [json.loads(line)["type"] for line in lines]
    assert types == [
        "header",
        "iteration_started",
        "decision",
        "patch_intent",
        "patch_applied",
        "iteration_completed",
        "finished",
    ]
    header = json.loads(lines[0])
    assert header["experiment"] == {"namespace": "ns-production", "name": "quickstart-exp", "uid": None}
    assert header["strategy"] == "iter8"
    decision = json.loads(lines[2])["decision"]
    assert decision["weights"] == {"iris-v1": 90, "iris-v2": 10} and decision["assessments"] == {
        "iris-v2": [True, True]
    }
    intent = json.loads(lines[3])
    assert intent["patches"][0]["object"]["name"] == "iris"
    assert intent["patches"][0]["expected"] == {
        "/spec/predictors/0/traffic": 90,
        "/spec/predictors/1/traffic": 10,
    }


def test_reopen_gives_resume_point_of_last_completed_iteration(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", 1010.0) as j:
        _iteration(j, 1, (90, 10))
        _iteration(j, 2, (80, 20))
    with Journal.open(path, EXP) as j:
        r = j.resume
        assert r.completed_iterations == 2 and r.interrupted is None and r.pending_patch is None
        assert r.state == {"n": 2, "posterior": [1.5, 2.0]} and r.start_time == 1010.0 and r.vrfp == "iris-v2"
        assert r.weights == {"iris-v1": 80, "iris-v2": 20} and r.finished is None
        _iteration(j, 3, (70, 30))  # appending continues the same file
    assert Journal.open(path).resume.completed_iterations == 3


def test_fresh_journal_resumes_from_nothing(tmp_path: Path) -> None:
    with Journal.create(tmp_path / "j", EXP, "thompson", 5.0) as j:
        r = j.resume
    assert (r.completed_iterations, r.start_time, r.state, r.vrfp, r.interrupted) == (0, 5.0, {}, None, None)


def test_intended_but_unconfirmed_patch_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10))
        _iteration(j, 2, (80, 20), stop_after="intent")
    r = Journal.open(path, EXP).resume
    assert r.completed_iterations == 1
    assert r.interrupted is not None and r.interrupted.iteration == 2 and r.interrupted.patch_unconfirmed
    pending = r.pending_patch
    assert pending is not None and pending.iteration == 2
    assert pending.weights == {"iris-v1": 80, "iris-v2": 20}
    assert pending.patches == (_patch(80, 20),)  # can be re-sent as is
    assert pending.expected == ({"/spec/predictors/0/traffic": 80, "/spec/predictors/1/traffic": 20},)
    assert r.interrupted.decision is not None and r.interrupted.decision["winner"] == "iris-v2"


def test_confirmed_patch_without_completion_is_not_pending(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10), stop_after="applied")
    r = Journal.open(path).resume
    assert r.completed_iterations == 0 and r.pending_patch is None
    assert r.interrupted is not None and r.interrupted.applied is not None
    assert r.interrupted.applied["readBack"] == {"iris-v1": 90, "iris-v2": 10}


def test_after_resume_the_interrupted_iteration_can_be_finished(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10), stop_after="intent")
    with Journal.open(path, EXP) as j:
        j.patch_applied(1, {"iris-v1": 90, "iris-v2": 10}, resent=False)
        assert j.resume.pending_patch is None
        j.iteration_completed(
            1, state={}, start_time=1.0, vrfp="iris-v1", weights={"iris-v1": 90, "iris-v2": 10}
        )
        with pytest.raises(ValueError, match="iteration 3 cannot start"):
            j.iteration_started(3, time=0.0, metrics={}, weights=None)
    assert Journal.open(path).resume.completed_iterations == 1


@pytest.mark.parametrize("torn", [b'{"type":"iteration_comp', b'{"type":"finished"}', b"\x00\x00\x00\n"])
def test_torn_last_line_is_dropped_and_cut(tmp_path: Path, torn: bytes) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10))
        _iteration(j, 2, (80, 20), stop_after="applied")
    intact = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(torn)
    with Journal.open(path, EXP) as j:
        assert j.resume.completed_iterations == 1 and j.resume.interrupted is not None
        assert path.read_bytes() == intact  # the fragment was cut, so appends start on a fresh line
        j.iteration_completed(2, state={}, start_time=None, vrfp=None, weights=None)
    assert [json.loads(x)["type"] for x in path.read_text().splitlines()][-1] == "iteration_completed"
    assert Journal.open(path).resume.completed_iterations == 2


def test_damaged_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10))
    lines = path.read_text().splitlines()
    lines[2] = "garbage"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 3 is damaged"):
        Journal.open(path)


def test_journal_of_another_experiment_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    Journal.create(path, EXP, "iter8", None).close()
    with pytest.raises(DataError) as err:
        Journal.open(path, ExperimentIdentity("ns-production", "other-exp"))
    assert str(err.value) == (
        f"journal {path} belongs to experiment ns-production/quickstart-exp, not "
        "ns-production/other-exp; use another journal file for this experiment"
    )
    with_uid = tmp_path / "uid.jsonl"
    Journal.create(with_uid, ExperimentIdentity("a", "b", "uid-1"), "iter8", None).close()
    with pytest.raises(DataError, match="uid uid-1"):
        Journal.open(with_uid, ExperimentIdentity("a", "b", "uid-2"))
    assert Journal.open(with_uid, ExperimentIdentity("a", "b")).header["strategy"] == "iter8"


def test_create_refuses_existing_and_open_refuses_non_journals(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    Journal.create(path, EXP, "iter8", None).close()
    with pytest.raises(DataError, match="already exists"):
        Journal.create(path, EXP, "iter8", None)
    other = tmp_path / "notes.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(DataError, match="not a simkit journal"):
        Journal.open(other)
    with pytest.raises(DataError, match="not found"):
        Journal.open(tmp_path / "absent.jsonl")


def test_open_or_create(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal.open_or_create(path, EXP, "iter8", None) as j:
        _iteration(j, 1, (90, 10))
    with Journal.open_or_create(path, EXP, "iter8", None) as j:
        assert j.resume.completed_iterations == 1
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(b'{"type":"hea')  # crashed while writing the header
    with Journal.open_or_create(torn, EXP, "iter8", 7.0) as j:
        assert j.resume.start_time == 7.0 and j.header["type"] == "header"


def test_numpy_values_are_written_and_output_is_deterministic(tmp_path: Path) -> None:
    texts = []
    for name in ("a.jsonl", "b.jsonl"):
        with Journal.create(tmp_path / name, EXP, "thompson", 0.0) as j:
            j.iteration_started(
                1,
                time=1.0,
                metrics={"m": {"v1": np.float64(0.25), "v2": None}},
                weights={"v1": int(np.int64(50))},
            )
            j.iteration_completed(
                1, state={"alpha": np.array([1.0, 2.0])}, start_time=1.0, vrfp=None, weights=None
            )
        texts.append((tmp_path / name).read_text())
    assert texts[0] == texts[1]
    assert Journal.open(tmp_path / "a.jsonl").resume.state == {"alpha": [1.0, 2.0]}
