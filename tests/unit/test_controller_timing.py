"""``spec.controller.iterationDelay``: the time a real controller adds to every iteration.

Unset, iterations stay exactly ``intervalSeconds`` apart (every other scenario and its golden
outcomes are unchanged); a constant or a distribution lengthens each gap, with draws from the
controller's own random stream (same seed, same gaps; the world's other draws do not move).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simkit.cli import main
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _copy(tmp_path: Path, name: str, controller: str | None) -> Path:
    dst = tmp_path / name
    shutil.copytree(SCENARIOS / name, dst)
    text = (dst / "scenario.yaml").read_text()
    if "  controller:" in text:  # drop any timing model the scenario has
        start, end = text.index("  controller:"), text.index("  predictors:")
        text = text[:start] + text[end:]
    if controller is not None:
        text = text.replace(
            "  predictors:", f"  controller:\n    iterationDelay: {controller}\n  predictors:", 1
        )
    (dst / "scenario.yaml").write_text(text)
    return dst


def _gaps(path: Path, seed: int | None = None) -> list[float]:
    run = simulate_experiment(load_scenario(path), seed)
    times = [r.time for r in run.result.iterations]
    return [round(b - a, 9) for a, b in zip(times, times[1:], strict=False)]


def test_without_a_timing_model_iterations_are_interval_seconds_apart(tmp_path: Path) -> None:
    assert load_scenario(SCENARIOS / "iris-rollback").scenario.spec.controller.iterationDelay is None
    assert set(_gaps(_copy(tmp_path, "iris-abtest", None))) == {10.0}


def test_a_constant_delay_is_added_to_every_gap(tmp_path: Path) -> None:
    path = _copy(tmp_path, "iris-abtest", "2.5s")
    spec = load_scenario(path).scenario.spec.controller.iterationDelay
    assert spec is not None and spec.distribution == "constant" and spec.value == 2.5
    assert _gaps(path) == [12.5] * 14
    run = simulate_experiment(load_scenario(path))
    assert run.result.iterations[-1].elapsed == 175  # 14 x 12.5


def test_a_distributed_delay_is_drawn_per_iteration_and_reproducible(tmp_path: Path) -> None:
    path = _copy(tmp_path, "iris-abtest", "{distribution: uniform, low: 1s, high: 5s}")
    gaps = _gaps(path)
    assert len(gaps) == 14 and all(11.0 <= g <= 15.0 for g in gaps)
    assert len(set(gaps)) > 10  # drawn each time, not once
    assert _gaps(path) == gaps  # same seed, same gaps
    assert _gaps(path, seed=2) != gaps
    assert float(np.mean(gaps)) == pytest.approx(13.0, abs=1.0)


def test_the_timing_model_does_not_shift_the_worlds_other_draws(tmp_path: Path) -> None:
    """Before the first iteration nothing differs: the controller has its own stream."""
    plain = simulate_experiment(load_scenario(_copy(tmp_path / "a", "iris-abtest", None)))
    timed = simulate_experiment(load_scenario(_copy(tmp_path / "b", "iris-abtest", "3s")))
    first_a, first_b = plain.result.iterations[0], timed.result.iterations[0]
    assert first_a.time == first_b.time
    assert first_a.readings == first_b.readings


def test_a_bad_delay_is_one_line_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(tmp_path, "iris-abtest", "{distribution: exponential}")
    code = main(["run", str(path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "scenario.yaml" in err and "spec.controller.iterationDelay" in err, err
