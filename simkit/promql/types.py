"""Evaluation-time value shapes and the Go-compatible float helpers every operator needs.

Inside the engine an instant vector is a plain list of ``(labels, value)`` tuples (labels are the
canonical sorted pairs from :mod:`simkit.tsdb`), a range vector a list of ``(labels, ms
timestamps, values)``; scalars are floats and strings are str. Plain tuples keep the per-step
overhead small. Go's ``math`` functions treat NaN and infinities differently from Python's
(which raise), so the few that matter are re-stated here.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

from simkit.errors import QueryError

Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, float]
Vector = list[Sample]
MatrixSeries = tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]
Value = float | str | Vector | list[MatrixSeries]

_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|0[xX][0-9a-fA-F.]+(?:[pP][+-]?[0-9]+)?"
    r"|inf|infinity|nan)",
    re.IGNORECASE,
)


def drop_name(labels: Labels) -> Labels:
    """Labels without ``__name__`` (it sorts first when present)."""
    if labels and labels[0][0] == "__name__":
        return labels[1:]
    return labels


def get_label(labels: Labels, name: str) -> str:
    for k, v in labels:
        if k == name:
            return v
    return ""


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """Set (or, for an empty value, delete) one label, keeping the canonical order."""
    rest = [(k, v) for k, v in labels if k != name]
    if value != "":
        rest.append((name, value))
        rest.sort()
    return tuple(rest)


def check_unique(vec: Vector) -> Vector:
    """Prometheus refuses a vector holding one label set twice (e.g. after dropping names)."""
    if len(vec) > 1 and len({lb for lb, _ in vec}) != len(vec):
        raise QueryError("vector cannot contain metrics with the same labelset")
    return vec


def go_parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``, or None where Go would return an error."""
    if not _GO_FLOAT_RE.fullmatch(text):
        return None
    try:
        if text.lower().lstrip("+-").startswith("0x"):
            return float.fromhex(text)
        return float(text)
    except ValueError:
        return None


def go_max(a: float, b: float) -> float:
    """Go's math.Max: NaN if either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


def go_min(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a < b else b


def nan_first_key(value: float) -> tuple[int, float]:
    """Sort key of Prometheus' vectorByValueHeap: NaN sorts before everything."""
    return (0, 0.0) if math.isnan(value) else (1, value)


def format_go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)`` (count_values' label value)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        mantissa, exp = text.lower().split("e")
        digits = mantissa.replace(".", "").lstrip("-")
        point = (mantissa.lstrip("-").find(".") if "." in mantissa else len(mantissa.lstrip("-"))) + int(exp)
        sign = "-" if value < 0 else ""
        if point <= 0:
            text = sign + "0." + "0" * (-point) + digits.rstrip("0")
        elif point >= len(digits):
            text = sign + digits + "0" * (point - len(digits))
        else:
            text = sign + digits[:point] + "." + digits[point:]
    if text.endswith(".0"):
        text = text[:-2]
    return text


def format_labels_short(labels: Labels) -> str:
    """Go's ``labels.Labels.String()``: ``{a="b", c="d"}``."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
