"""An in-memory, label-indexed time-series store with numpy read views.

It holds exactly what a Prometheus TSDB would hold after scraping: float samples with
millisecond timestamps, one series per distinct label set (``__name__`` included). Writers append
in time order (the sim's scraper, the OpenMetrics importer, a recording); readers (the PromQL
engine) get contiguous numpy arrays per series, cached until the series grows again, or for a few
samples read the live buffers directly (:meth:`Series.buffers`).

Selection is what every PromQL query starts with, so it is indexed the way Prometheus' is: an
inverted index from label name and value to the series carrying them (equality matchers intersect
those sets), a label dict per series for the other matchers (regexes are RE2's,
:mod:`simkit.tsdb.regex`), and the answers of recent selectors kept until a new series appears.

Timestamps are Unix seconds as float64, always rounded to whole milliseconds on the way in, so
that range boundaries compare exactly like Prometheus' int64 milliseconds.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from simkit.errors import DataError
from simkit.tsdb.regex import Regex, compile_regex

Labels = tuple[tuple[str, str], ...]
"""A canonical label set: (name, value) pairs sorted by name, ``__name__`` included."""

MatchOp = Literal["=", "!=", "=~", "!~"]


def canonical_labels(labels: Mapping[str, str]) -> Labels:
    """Sorted (name, value) pairs, dropping empty values (Prometheus treats them as absent)."""
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def round_ms(t: float) -> float:
    """Round a Unix time in seconds to whole milliseconds, as Prometheus stores it."""
    return round(t * 1000.0) / 1000.0


class Matcher(NamedTuple):
    """A label matcher ``name op value``; regexes are fully anchored, as in Prometheus.

    A NamedTuple (immutable, hashable and compared in C) because selections are cached by their
    matchers, and the parser makes several per selector.
    """

    name: str
    op: MatchOp
    value: str

    def compile(self) -> Regex | None:
        """The matcher's anchored RE2 regex (``=~``/``!~``); raises RegexError if RE2 refuses it."""
        if self.op in ("=~", "!~"):
            return compile_regex(self.value)
        return None

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = compile_regex(self.value).matches(value)
        return hit if self.op == "=~" else not hit


class Series:
    """One time series: its labels and its samples, appended in time order.

    Besides the samples it keeps, for readers that look at a few samples without numpy, whether
    any value is NaN (staleness markers are NaNs) and where the value dropped (counter resets).
    """

    __slots__ = ("labels", "label_map", "_t", "_v", "_view", "_has_nan", "_drops")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.label_map = dict(labels)  # read-only by convention: select() matches against it
        self._t = array("d")
        self._v = array("d")
        self._view: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        self._has_nan = False
        self._drops: list[int] = []  # indexes i with v[i] < v[i - 1], ascending

    @property
    def name(self) -> str:
        for k, v in self.labels:
            if k == "__name__":
                return v
        return ""

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def append(self, t: float, v: float) -> None:
        self._push(round(t * 1000.0) / 1000.0, v)  # round_ms, inlined: the scraper calls this very often

    def _push(self, t: float, v: float) -> None:
        """Append at an already rounded time."""
        times, values = self._t, self._v
        if times and t <= times[-1]:
            if t == times[-1]:
                self._overwrite_last(v)  # same timestamp: last write wins (idempotent re-import)
                return
            raise DataError(f"out-of-order sample for {format_labels(self.labels)} at {t} (last {times[-1]})")
        if v != v:
            self._has_nan = True
        elif values and v < values[-1]:
            self._drops.append(len(values))
        times.append(t)
        values.append(v)
        self._view = None

    @staticmethod
    def append_column(column: Sequence[Series], t: float, values: Iterable[float]) -> None:
        """One scrape of several series at the same time ``t``: :meth:`append` for each, with the
        timestamp rounded once (a scrape writes thousands of samples at one instant)."""
        t = round(t * 1000.0) / 1000.0
        for series, v in zip(column, values, strict=False):
            series._push(t, v)

    def _overwrite_last(self, v: float) -> None:
        values = self._v
        last = len(values) - 1
        values[last] = v
        if self._drops and self._drops[-1] == last:
            self._drops.pop()
        if v != v:
            self._has_nan = True
        elif last > 0 and v < values[last - 1]:
            self._drops.append(last)
        self._view = None

    def buffers(self) -> tuple[array[float], array[float]]:
        """The live (timestamps, values) buffers: no copy, so read them now and never write.

        Cheaper than :meth:`arrays` for reading a few samples (``bisect`` works on them).
        """
        return self._t, self._v

    @property
    def has_nan(self) -> bool:
        """Whether any value is NaN (a staleness marker, or a NaN sample)."""
        return self._has_nan

    @property
    def drops(self) -> list[int]:
        """Ascending indexes ``i`` where ``v[i] < v[i - 1]`` (counter resets); read-only.

        Only meaningful when :attr:`has_nan` is False: a NaN in between hides a drop.
        """
        return self._drops

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
    """Series by label set, with an inverted index from label name and value to series.

    ``select`` answers a vector selector: equality matchers intersect the index's series sets,
    every other matcher filters by the series' label dicts; answers are sorted by label set and
    remembered until a series is created. A PromQL evaluation can run while the simulation is
    paused between steps.
    """

    _SELECT_CACHE_SIZE = 512

    def __init__(self) -> None:
        self._series: dict[Labels, Series] = {}
        self._by_name: dict[str, list[Series]] = {}
        # label name -> value -> the series with that label, as a dict used as an ordered set
        self._postings: dict[str, dict[str, dict[Series, None]]] = {}
        self._selected: dict[tuple[Matcher, ...], tuple[Series, ...]] = {}
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
            for name, value in key:
                self._postings.setdefault(name, {}).setdefault(value, {})[s] = None
            self._selected.clear()
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
        """The series every matcher accepts, sorted by label set (Prometheus' order)."""
        key = tuple(matchers)
        hit = self._selected.get(key)
        if hit is None:
            hit = tuple(sorted(self._select(key), key=_labels_of))
            if len(self._selected) >= self._SELECT_CACHE_SIZE:
                self._selected.clear()
            self._selected[key] = hit
        return list(hit)

    def _select(self, matchers: tuple[Matcher, ...]) -> list[Series]:
        postings: list[dict[Series, None]] = []
        others: list[Matcher] = []
        for m in matchers:
            if m.op == "=" and m.value != "":  # only series carrying that label value
                found = self._postings.get(m.name, {}).get(m.value)
                if not found:
                    return []
                postings.append(found)
            else:
                others.append(m)
        if postings:
            postings.sort(key=len)
            out = list(postings[0])
            if len(postings) > 1:
                common = postings[0].keys() & postings[1].keys()
                for more in postings[2:]:
                    common &= more.keys()
                out = [s for s in out if s in common]
        else:
            out = list(self._series.values())
        for m in others:
            name, value = m.name, m.value
            if m.op == "=":  # value "": the label is absent (or empty)
                out = [s for s in out if s.label_map.get(name, "") == ""]
            elif m.op == "!=":
                out = [s for s in out if s.label_map.get(name, "") != value]
            else:
                matches = compile_regex(value).matches
                want = m.op == "=~"
                out = [s for s in out if matches(s.label_map.get(name, "")) == want]
        return out

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Series]:
        return iter(self._series.values())

    def __len__(self) -> int:
        return len(self._series)

    def sample_count(self) -> int:
        return sum(len(s) for s in self._series.values())


def _labels_of(series: Series) -> Labels:
    return series.labels


def format_labels(labels: Labels | Mapping[str, str]) -> str:
    items = labels if isinstance(labels, tuple) else canonical_labels(labels)
    name = next((v for k, v in items if k == "__name__"), "")
    rest = ",".join(f'{k}="{_escape(v)}"' for k, v in items if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
