"""The search-space file of ``simkit tune``: the three ways to give values, the grid's numbering,
the seeded sample under a budget, and bad input naming the file and the field (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simkit.cli import main
from simkit.errors import SpecError
from simkit.tune.space import describe, load_space, parse_space

F = "space.yaml"


def test_lists_ranges_and_values_make_a_product_in_file_order() -> None:
    space = parse_space(
        {
            "threshold": [1, 2, 3, 5],
            "stepWeight": {"low": 5, "high": 30, "step": 5},
            "stepWeights": [[1, 5, 25, 50], [10, 20, 30, 40, 50]],
            "maxWeight": {"values": [50, 60]},
        },
        F,
    )
    assert [a.name for a in space.axes] == ["threshold", "stepWeight", "stepWeights", "maxWeight"]
    assert space.axes[1].values == (5, 10, 15, 20, 25, 30)
    assert space.size == 4 * 6 * 2 * 2
    points = [space.point(n) for n in range(space.size)]
    assert points[0] == {"threshold": 1, "stepWeight": 5, "stepWeights": [1, 5, 25, 50], "maxWeight": 50}
    assert points[1]["maxWeight"] == 60 and points[2]["stepWeights"] == [
        10,
        20,
        30,
        40,
        50,
    ]  # last axis fastest
    assert len({repr(p) for p in points}) == space.size  # every number a different candidate


def test_a_range_without_step_is_whole_numbers_and_a_fractional_range_needs_a_step() -> None:
    assert parse_space({"threshold": {"low": 1, "high": 3}}, F).axes[0].values == (1, 2, 3)
    assert parse_space({"x": {"low": 0.1, "high": 0.3, "step": 0.1}}, F).axes[0].values == (0.1, 0.2, 0.3)


def test_the_whole_grid_when_it_fits_else_a_seeded_sample() -> None:
    space = parse_space({"a": list(range(10)), "b": list(range(10))}, F)
    assert len(space.candidates(100, seed=0)) == 100
    sample = space.candidates(7, seed=3)
    assert len(sample) == 7 and len({repr(p) for p in sample}) == 7
    assert sample == space.candidates(7, seed=3)  # reproducible
    assert sample != space.candidates(7, seed=4)  # and the seed matters
    huge = parse_space({f"p{i}": list(range(50)) for i in range(12)}, F)  # 50**12 points, never listed
    assert len(huge.candidates(5, seed=1)) == 5


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"threshold": []}, "threshold", "empty list"),
        ({"threshold": 3}, "threshold", "list of values or a range"),
        ({"stepWeight": {"low": 5}}, "stepWeight.high", "missing"),
        ({"stepWeight": {"low": 5, "high": 1}}, "stepWeight.high", "at least low"),
        ({"stepWeight": {"low": 5, "high": 30, "step": 0}}, "stepWeight.step", "positive"),
        ({"stepWeight": {"low": "a", "high": 30}}, "stepWeight.low", "number"),
        ({"stepWeight": {"low": 1, "high": 3, "stpe": 1}}, "stepWeight.stpe", "unknown key"),
        ({"x": {"low": 0.1, "high": 0.5}}, "x.step", "fractional"),
        ({"x": {"values": [1], "low": 1}}, "x.low", "either values"),
        ({"threshold": [1, 1]}, "threshold", "twice"),
        ({"x": {"low": 0, "high": 10**6}}, "x.step", "at most"),
    ],
)
def test_bad_values_name_the_file_and_the_field(data: object, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_space(data, F)
    assert info.value.field == field and words in info.value.message
    assert str(info.value).startswith(F)


@pytest.mark.parametrize("data", [None, [], {}, "threshold"])
def test_a_space_must_be_a_non_empty_mapping(data: object) -> None:
    with pytest.raises(SpecError, match="must map each parameter"):
        parse_space(data, F)


def test_describe_is_one_short_line() -> None:
    assert describe({"threshold": 3, "stepWeights": [1, 5, 25]}) == "threshold=3 stepWeights=[1,5,25]"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("threshold: [1, 2\n", "malformed YAML"),
        ("stepWeight: {low: 5, high: 30, step: -5}\n", "field stepWeight.step"),
        ("threshold: [1, x]\n", "field threshold"),  # checked by the strategy itself, at the space file
        ("treshold: [1, 2]\n", "field treshold"),  # not a Flagger parameter
    ],
)
def test_the_command_reports_a_bad_space_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(text)
    scenario = str(Path(__file__).resolve().parents[2] / "scenarios" / "suite" / "aa")
    code = main(["tune", scenario, "--strategy", "flagger", "--space", str(space), "--seeds", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(space) in err and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_space_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SpecError, match="cannot read the search space"):
        load_space(tmp_path / "nope.yaml")
