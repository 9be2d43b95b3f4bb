"""The search space of ``simkit tune``: a YAML file mapping each strategy parameter to its values.

Three ways to give a parameter's values, each a grid axis::

    threshold: [1, 2, 3, 5]                          # a list of values (any YAML value)
    stepWeights: [[1, 5, 25, 50], [10, 20, 30, 40, 50]]   # values that are themselves lists
    stepWeight: {low: 5, high: 30, step: 5}          # a range, both ends included
    maxWeight: {values: [50, 60]}                    # the list form, spelled out

A range of whole numbers may leave out ``step`` (1); a range with a fractional end needs one.
The space is the Cartesian product of its axes, in the file's order. Candidates are numbered in
that product's mixed-radix order, so a candidate's number names the same parameters every time;
when the product is larger than the budget, a sample of numbers is drawn without replacement from
a generator seeded by ``--seed`` (the space is never enumerated, so a huge space costs nothing).

Every error names the file and the field (``stepWeight.step``) and exits 2, like any bad input.
Whether a value suits the strategy (``threshold: x``) is checked by the strategy itself, which
reports it at the same file and field before any run starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simkit.errors import Location, SpecError

RANGE_KEYS = ("low", "high", "step")
MAX_RANGE_POINTS = 10_000  # per axis: a range this fine is a mistake, not a grid


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Space:
    """The product of its axes; ``file`` is where errors about it are reported."""

    file: str
    axes: tuple[Axis, ...]

    @property
    def size(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def point(self, number: int) -> dict[str, Any]:
        """Candidate ``number`` of the product (the last axis varies fastest)."""
        out: dict[str, Any] = {}
        for axis in reversed(self.axes):
            number, digit = divmod(number, len(axis.values))
            out[axis.name] = axis.values[digit]
        return {a.name: out[a.name] for a in self.axes}

    def candidates(self, budget: int, seed: int) -> list[dict[str, Any]]:
        """The whole grid when it fits the budget, else ``budget`` points drawn with ``seed``."""
        if self.size <= budget:
            numbers: Sequence[int] = range(self.size)
        else:
            rng = np.random.default_rng(seed)
            numbers = sorted(_sample(rng, self.size, budget))
        return [self.point(n) for n in numbers]


def _sample(rng: np.random.Generator, size: int, k: int) -> set[int]:
    """``k`` distinct numbers in [0, size) without materialising the range (size may be huge)."""
    if size <= 10 * k and size < 2**62:
        return {int(x) for x in rng.choice(size, size=k, replace=False)}
    chosen: set[int] = set()
    while len(chosen) < k:
        chosen.add(int(rng.integers(0, min(size, 2**63 - 1))))
    return chosen


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _range(where: Location, name: str, spec: Mapping[str, Any]) -> tuple[Any, ...]:
    unknown = sorted(set(map(str, spec)) - set(RANGE_KEYS))
    if unknown:
        raise SpecError(where, f"{name}.{unknown[0]}", "unknown key; a range has low, high and step")
    for key in ("low", "high"):
        if key not in spec:
            raise SpecError(where, f"{name}.{key}", "missing; a range needs low and high")
    low, high, step = spec["low"], spec["high"], spec.get("step", 1)
    for key, value in (("low", low), ("high", high), ("step", step)):
        if not _is_number(value):
            raise SpecError(where, f"{name}.{key}", f"must be a number, got {value!r}")
    if high < low:
        raise SpecError(where, f"{name}.high", f"must be at least low ({low}), got {high}")
    if step <= 0:
        raise SpecError(where, f"{name}.step", f"must be positive, got {step}")
    whole = all(isinstance(v, int) for v in (low, high, step))
    if not whole and "step" not in spec:
        raise SpecError(where, f"{name}.step", "a range with a fractional end needs a step")
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    if count > MAX_RANGE_POINTS:
        raise SpecError(where, f"{name}.step", f"gives {count} values; at most {MAX_RANGE_POINTS}")
    if whole:
        return tuple(low + i * step for i in range(count))
    return tuple(round(low + i * step, 12) for i in range(count))


def _values(where: Location, name: str, spec: Any) -> tuple[Any, ...]:
    if isinstance(spec, Mapping):
        if "values" in spec:
            if len(spec) > 1:
                extra = sorted(str(k) for k in spec if k != "values")[0]
                raise SpecError(where, f"{name}.{extra}", "give either values or low/high/step")
            return _values(where, name, spec["values"])
        return _range(where, name, spec)
    if isinstance(spec, list):
        if not spec:
            raise SpecError(where, name, "an empty list of values: give at least one")
        return tuple(spec)
    raise SpecError(
        where,
        name,
        f"must be a list of values or a range {{low, high, step}}, got {type(spec).__name__} {spec!r}",
    )


def parse_space(data: Any, file: str) -> Space:
    """A :class:`Space` from the parsed YAML ``data`` of ``file``."""
    where = Location(file)
    if not isinstance(data, Mapping) or not data:
        raise SpecError(where, None, "must map each parameter to its values, e.g. threshold: [1, 2, 3]")
    axes = []
    for name, spec in data.items():
        if not isinstance(name, str) or not name:
            raise SpecError(where, str(name), "a parameter name must be a non-empty string")
        values = _values(where, name, spec)
        if len({repr(v) for v in values}) != len(values):
            raise SpecError(where, name, "a value is listed twice")
        axes.append(Axis(name, values))
    return Space(file, tuple(axes))


def load_space(path: str | Path) -> Space:
    """Read and parse a space file; unreadable or malformed YAML is bad input, exit 2."""
    import yaml

    where = Location(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(where, None, f"cannot read the search space: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # one line, as simkit.spec.documents reports it
        mark = getattr(exc, "problem_mark", None)
        pos = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(where, None, f"malformed YAML{pos}: {problem}") from None
    return parse_space(data, str(path))


def describe(params: Mapping[str, Any]) -> str:
    """``stepWeight=20 threshold=3 stepWeights=[1,5,25,50]``: a candidate in one short line."""
    parts = []
    for k, v in params.items():
        text = "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else str(v)
        parts.append(f"{k}={text}")
    return " ".join(parts)
