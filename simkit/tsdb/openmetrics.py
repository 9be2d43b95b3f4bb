"""OpenMetrics text export and import of a :class:`~simkit.tsdb.store.TSDB`.

The export is what ``promtool tsdb create-blocks-from openmetrics`` backfills: families with
``# TYPE``/``# HELP``, each series' samples contiguous and in time order, timestamps in Unix
seconds (millisecond precision), one ``# EOF`` at the end. Values are written with Python's
shortest round-trip repr so that an export/import cycle is exact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from simkit.errors import DataError
from simkit.files import atomic_path
from simkit.tsdb.store import TSDB, Labels, format_labels

_HIST_SUFFIXES = ("_bucket", "_sum", "_count", "_created")
_SUMMARY_SUFFIXES = ("_sum", "_count", "_created")


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def format_timestamp(t: float) -> str:
    ms = int(round(t * 1000.0))
    sec, frac = divmod(ms, 1000)
    return f"{sec}.{frac:03d}" if frac else str(sec)


def family_of(name: str, types: dict[str, tuple[str, str]]) -> str:
    """The metric family a sample name belongs to (``x_bucket`` -> ``x`` for a histogram ``x``)."""
    if name in types:
        return name
    for suffix in _HIST_SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in types and types[base][0] in ("histogram", "summary", "gaugehistogram"):
                return base
    for suffix in ("_total",):
        if name.endswith(suffix) and name[: -len(suffix)] in types:
            return name[: -len(suffix)]
    return name


def write_openmetrics(db: TSDB, out: TextIO, types: dict[str, tuple[str, str]] | None = None) -> None:
    """Write every series of ``db``; ``types`` maps family -> (type, help)."""
    types = {**db.types, **(types or {})}
    families: dict[str, list[Labels]] = {}
    series_by_labels = {s.labels: s for s in db}
    for labels in series_by_labels:
        name = next((v for k, v in labels if k == "__name__"), "")
        families.setdefault(family_of(name, types), []).append(labels)
    for family in sorted(families):
        kind, help_text = types.get(family, ("unknown", ""))
        out.write(f"# TYPE {family} {kind}\n")
        if help_text:
            out.write(f"# HELP {family} {help_text}\n")
        for labels in sorted(families[family], key=_series_sort_key):
            head = format_labels(labels)
            t, v = series_by_labels[labels].arrays()
            out.writelines(
                f"{head} {format_value(float(vi))} {format_timestamp(float(ti))}\n"
                for ti, vi in zip(t, v, strict=True)
            )
    out.write("# EOF\n")


def _series_sort_key(labels: Labels) -> tuple[str, ...]:
    d = dict(labels)
    le = d.get("le")
    le_key = f"{float(le):030.12f}" if le not in (None, "+Inf") else ("~" if le == "+Inf" else "")
    return (d.get("__name__", ""), *[f"{k}={v}" for k, v in labels if k not in ("__name__", "le")], le_key)


def save_openmetrics(db: TSDB, path: str | Path, types: dict[str, tuple[str, str]] | None = None) -> None:
    """Write atomically: to a temp file beside ``path``, then rename."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        write_openmetrics(db, fh, types)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(\S+))?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return value.replace("\\\\", "\x00").replace('\\"', '"').replace("\\n", "\n").replace("\x00", "\\")


def _parse_value(text: str) -> float:
    low = text.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    return float(text)


def read_openmetrics(
    lines: Iterable[str],
    source: str = "<openmetrics>",
    db: TSDB | None = None,
    default_time: float | None = None,
) -> TSDB:
    """Parse OpenMetrics (or Prometheus text) into ``db``; every sample needs a timestamp
    unless ``default_time`` is given."""
    db = db if db is not None else TSDB()
    types = db.types
    saw_eof = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if saw_eof:
            raise DataError(f"{source}: line {lineno}: content after # EOF")
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] == "EOF":
                saw_eof = True
            elif len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = (parts[3].strip(), types.get(parts[2], ("", ""))[1])
            elif len(parts) >= 3 and parts[1] == "HELP":
                types[parts[2]] = (
                    types.get(parts[2], ("unknown", ""))[0],
                    parts[3] if len(parts) > 3 else "",
                )
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise DataError(f"{source}: line {lineno}: not a sample line: {line[:80]!r}")
        name, label_text, value_text, ts_text = m.groups()
        labels = {"__name__": name}
        if label_text:
            pos = 0
            for lm in _LABEL.finditer(label_text):
                if lm.start() != pos:
                    raise DataError(
                        f"{source}: line {lineno}: bad label syntax near {label_text[pos : pos + 30]!r}"
                    )
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
            if label_text[pos:].strip():
                raise DataError(
                    f"{source}: line {lineno}: bad label syntax near {label_text[pos : pos + 30]!r}"
                )
        try:
            value = _parse_value(value_text)
            if ts_text is not None:
                ts = float(ts_text)
            elif default_time is not None:
                ts = default_time
            else:
                raise DataError(f"{source}: line {lineno}: sample has no timestamp")
        except ValueError:
            raise DataError(f"{source}: line {lineno}: bad number in {line[:80]!r}") from None
        db.append(labels, ts, value)
    if not saw_eof and default_time is None:
        raise DataError(f"{source}: missing '# EOF' (truncated file?)")
    return db


def load_openmetrics(path: str | Path) -> TSDB:
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            return read_openmetrics(fh, str(p))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an OpenMetrics file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
