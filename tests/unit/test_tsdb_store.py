"""The TSDB's indexes agree with a plain scan, however series and samples arrive."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.tsdb.store import TSDB, Matcher

NAMES = ["a_total", "b_bucket", "c_count"]
VALUES = ["", "x", "y", "xy", "baseline", "candidate"]
labelsets = st.fixed_dictionaries(
    {"__name__": st.sampled_from(NAMES)},
    optional={
        "code": st.sampled_from(VALUES),
        "predictor_name": st.sampled_from(VALUES),
        "le": st.sampled_from(VALUES),
    },
)
matchers = st.lists(
    st.one_of(
        st.builds(
            Matcher,
            st.just("__name__"),
            st.sampled_from(["=", "!=", "=~", "!~"]),
            st.sampled_from(NAMES + ["a.*", ".*_count"]),
        ),
        st.builds(
            Matcher,
            st.sampled_from(["code", "predictor_name", "le", "missing"]),
            st.sampled_from(["=", "!=", "=~", "!~"]),
            st.sampled_from(VALUES + ["x.*", "(baseline|candidate)", ".+"]),
        ),
    ),
    min_size=1,
    max_size=3,
)


def scan(db: TSDB, ms: list[Matcher]) -> list[tuple[tuple[str, str], ...]]:
    out = []
    for s in db:
        labels = dict(s.labels)
        ok = True
        for m in ms:
            value = labels.get(m.name, "")
            if m.op == "=":
                ok &= value == m.value
            elif m.op == "!=":
                ok &= value != m.value
            else:
                hit = re.fullmatch(m.value, value, re.DOTALL) is not None
                ok &= hit if m.op == "=~" else not hit
        if ok:
            out.append(s.labels)
    return sorted(out)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(labelsets, matchers), min_size=1, max_size=30))
def test_select_matches_a_plain_scan_with_series_created_mid_run(
    ops: list[tuple[dict[str, str], list[Matcher]]],
) -> None:
    db = TSDB()
    for t, (labels, ms) in enumerate(ops):
        db.append(labels, 1000.0 + t, float(t))
        assert sorted(s.labels for s in db.select(ms)) == scan(db, ms)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40),
    overwrite=st.lists(st.tuples(st.integers(0, 39), st.floats(-5, 5, allow_nan=False)), max_size=10),
)
def test_counter_drops_track_overwrites(values: list[float], overwrite: list[tuple[int, float]]) -> None:
    db = TSDB()
    s = db.get_or_create({"__name__": "x"})
    expected: list[float] = []
    todo = dict(overwrite)
    for i, v in enumerate(values):
        s.append(100.0 + i, v)
        expected.append(v)
        if i in todo:  # a second sample at the same timestamp replaces the first (re-import)
            s.append(100.0 + i, todo[i])
            expected[-1] = todo[i]
    arr = np.asarray(expected)
    assert s.drops == [i for i in range(1, len(arr)) if arr[i] < arr[i - 1]]
    assert not s.has_nan
    s.append(200.0, float("nan"))
    assert s.has_nan
