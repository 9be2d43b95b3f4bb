"""An in-memory, label-indexed time-series store with numpy read views.

It holds exactly what a Prometheus TSDB would hold after scraping: float samples with
millisecond timestamps, one series per distinct label set (``__name__`` included). Writers append
in time order (the sim's scraper, the OpenMetrics importer, a recording); readers (the PromQL
engine) get contiguous numpy arrays per series, cached until the series grows again.

Timestamps are Unix seconds as float64, always rounded to whole milliseconds on the way in, so
that range boundaries compare exactly like Prometheus' int64 milliseconds.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from simkit.errors import DataError

Labels = tuple[tuple[str, str], ...]
"""A canonical label set: (name, value) pairs sorted by name, ``__name__`` included."""

MatchOp = Literal["=", "!=", "=~", "!~"]


def canonical_labels(labels: Mapping[str, str]) -> Labels:
    """Sorted (name, value) pairs, dropping empty values (Prometheus treats them as absent)."""
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def round_ms(t: float) -> float:
    """Round a Unix time in seconds to whole milliseconds, as Prometheus stores it."""
    return round(t * 1000.0) / 1000.0


@dataclass(frozen=True)
class Matcher:
    """A label matcher ``name op value``; regexes are fully anchored, as in Prometheus."""

    name: str
    op: MatchOp
    value: str

    def compile(self) -> re.Pattern[str] | None:
        if self.op in ("=~", "!~"):
            return re.compile(f"^(?:{self.value})$", re.DOTALL)
        return None

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        pattern = self.compile()
        assert pattern is not None
        hit = pattern.match(value) is not None
        return hit if self.op == "=~" else not hit


class Series:
    """One time series: its labels and its samples, appended in time order."""

    __slots__ = ("labels", "_t", "_v", "_view")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self._t = array("d")
        self._v = array("d")
        self._view: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None

    @property
    def name(self) -> str:
        for k, v in self.labels:
            if k == "__name__":
                return v
        return ""

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def append(self, t: float, v: float) -> None:
        t = round_ms(t)
        if self._t and t <= self._t[-1]:
            if t == self._t[-1]:
                self._v[-1] = v  # same timestamp: last write wins (idempotent re-import)
                self._view = None
                return
            raise DataError(f"out-of-order sample for {format_labels(self.labels)} at {t} (last {self._t[-1]})")
        self._t.append(t)
        self._v.append(v)
        self._view = None

    def arrays(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(timestamps, values) as read-only numpy arrays; cached until the next append."""
        if self._view is None:
            t = np.frombuffer(self._t, dtype=np.float64).copy() if self._t else np.empty(0)
            v = np.frombuffer(self._v, dtype=np.float64).copy() if self._v else np.empty(0)
            t.flags.writeable = False
            v.flags.writeable = False
            self._view = (t, v)
        return self._view

    def __len__(self) -> int:
        return len(self._t)


class TSDB:
    """Series by label set, with an index from metric name to series.

    ``select`` answers a vector selector: the ``__name__`` matcher (when it is an equality) uses
    the index, every other matcher filters. Reading never mutates, so a PromQL evaluation can run
    while the simulation is paused between steps.
    """

    def __init__(self) -> None:
        self._series: dict[Labels, Series] = {}
        self._by_name: dict[str, list[Series]] = {}
        self.min_time: float | None = None
        self.max_time: float | None = None
        # metric family -> (type, help), as an exposition's # TYPE / # HELP lines give them
        self.types: dict[str, tuple[str, str]] = {}

    def get_or_create(self, labels: Mapping[str, str] | Labels) -> Series:
        key = labels if isinstance(labels, tuple) else canonical_labels(labels)
        s = self._series.get(key)
        if s is None:
            s = Series(key)
            self._series[key] = s
            self._by_name.setdefault(s.name, []).append(s)
        return s

    def append(self, labels: Mapping[str, str] | Labels, t: float, v: float) -> None:
        self.get_or_create(labels).append(t, v)
        self._touch(round_ms(t))

    def _touch(self, t: float) -> None:
        if self.min_time is None or t < self.min_time:
            self.min_time = t
        if self.max_time is None or t > self.max_time:
            self.max_time = t

    def append_many(self, samples: Iterable[tuple[Labels, float, float]]) -> None:
        for labels, t, v in samples:
            self.append(labels, t, v)

    def note_time(self, t: float) -> None:
        """Record that a scrape happened at ``t`` (keeps min/max time right for writers using Series)."""
        self._touch(round_ms(t))

    def select(self, matchers: Sequence[Matcher]) -> list[Series]:
        name_eq = next((m.value for m in matchers if m.name == "__name__" and m.op == "="), None)
        candidates: Iterable[Series] = (
            self._by_name.get(name_eq, []) if name_eq is not None else self._series.values()
        )
        compiled = [(m, m.compile()) for m in matchers if not (m.name == "__name__" and m.op == "=")]
        out: list[Series] = []
        for s in candidates:
            labels = s.labels
            ok = True
            for m, pattern in compiled:
                value = next((v for k, v in labels if k == m.name), "")
                if pattern is None:
                    hit = value == m.value
                    if (m.op == "=") != hit:
                        ok = False
                        break
                else:
                    hit = pattern.match(value) is not None
                    if (m.op == "=~") != hit:
                        ok = False
                        break
            if ok:
                out.append(s)
        return out

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Series]:
        return iter(self._series.values())

    def __len__(self) -> int:
        return len(self._series)

    def sample_count(self) -> int:
        return sum(len(s) for s in self._series.values())


def format_labels(labels: Labels | Mapping[str, str]) -> str:
    items = labels if isinstance(labels, tuple) else canonical_labels(labels)
    name = next((v for k, v in items if k == "__name__"), "")
    rest = ",".join(f'{k}="{_escape(v)}"' for k, v in items if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
