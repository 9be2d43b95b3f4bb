"""Stand-ins for the models behind the predictors: deterministic outputs shaped like the real servers.

seldon-v1.md §6 gives what the two iris servers of the seed really return. The shape is kept:

- ``SKLEARN_SERVER`` (``predict_proba``): one row of 3 class probabilities per input row, names
  ``t:0..t:2``;
- ``XGBOOST_SERVER`` (``multi:softmax``): one float class label per input row, names ``[]``.

For the two inputs documented there the documented numbers are returned exactly. Any other iris
row gets a smooth, deterministic surrogate (a softmax over negative squared distances to the three
class means of the iris data set), which is enough for rehearsals: nobody grades these outputs.
Any other implementation answers like the sklearn server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

N_FEATURES = 4
# class means of the 150-row iris data set (setosa, versicolor, virginica)
_MEANS = ((5.006, 3.428, 1.462, 0.246), (5.936, 2.770, 4.260, 1.326), (6.588, 2.974, 5.552, 2.026))
# seldon-v1.md §6: documented outputs, by input row
_PROBA: dict[tuple[float, ...], tuple[float, float, float]] = {
    (6.8, 2.8, 4.8, 1.4): (0.008074020139121783, 0.7781601484222704, 0.21376583143860778),
    (1.0, 2.0, 5.0, 6.0): (9.912315378486737e-07, 0.0007015931307741852, 0.999297415637688),
}
_LABEL: dict[tuple[float, ...], float] = {(6.8, 2.8, 4.8, 1.4): 1.0, (1.0, 2.0, 5.0, 6.0): 2.0}


class BadInput(ValueError):
    """The request carries no usable iris rows (the wrapper answers 400 MICROSERVICE_BAD_DATA)."""


def _surrogate(row: tuple[float, ...]) -> tuple[float, float, float]:
    scores = [-sum((x - m) ** 2 for x, m in zip(row, mean, strict=True)) for mean in _MEANS]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return (exps[0] / total, exps[1] / total, exps[2] / total)


def probabilities(row: tuple[float, ...]) -> tuple[float, float, float]:
    return _PROBA.get(row) or _surrogate(row)


def label(row: tuple[float, ...]) -> float:
    known = _LABEL.get(row)
    if known is not None:
        return known
    p = _surrogate(row)
    return float(p.index(max(p)))


def _row(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != N_FEATURES:
        raise BadInput(f"expected rows of {N_FEATURES} numbers, got {json_preview(value)}")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise BadInput(f"expected rows of {N_FEATURES} numbers, got {json_preview(value)}")
    return tuple(float(x) for x in value)


def json_preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def input_rows(data: Any) -> tuple[str, list[tuple[float, ...]]]:
    """The container (``ndarray`` or ``tensor``) and the feature rows of a SeldonMessage ``data``."""
    if not isinstance(data, dict):
        raise BadInput("Can't find JSON in data")
    if "ndarray" in data:
        nd = data["ndarray"]
        if isinstance(nd, list) and nd and not isinstance(nd[0], list):
            nd = [nd]  # a single row given as a 1-D array
        if not isinstance(nd, list) or not nd:
            raise BadInput("data.ndarray must be a non-empty list of rows")
        return "ndarray", [_row(r) for r in nd]
    if "tensor" in data:
        tensor = data["tensor"]
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        values = tensor.get("values") if isinstance(tensor, dict) else None
        if not (
            isinstance(shape, list)
            and isinstance(values, list)
            and len(shape) == 2
            and shape[1] == N_FEATURES
            and isinstance(shape[0], int)
            and shape[0] * N_FEATURES == len(values)
            and shape[0] > 0
        ):
            raise BadInput(f"data.tensor must have shape [n, {N_FEATURES}] and n*{N_FEATURES} values")
        return "tensor", [_row(values[i : i + N_FEATURES]) for i in range(0, len(values), N_FEATURES)]
    raise BadInput("Can't find JSON in data: expected data.ndarray or data.tensor")


def predict(implementation: str | None, container: str, rows: Sequence[tuple[float, ...]]) -> dict[str, Any]:
    """The response ``data`` block for ``rows``, in the request's container."""
    if implementation == "XGBOOST_SERVER":
        labels = [label(r) for r in rows]
        if container == "tensor":
            return {"names": [], "tensor": {"shape": [len(labels)], "values": labels}}
        return {"names": [], "ndarray": labels}
    probs = [list(probabilities(r)) for r in rows]
    names = ["t:0", "t:1", "t:2"]
    if container == "tensor":
        return {
            "names": names,
            "tensor": {"shape": [len(probs), 3], "values": [p for row in probs for p in row]},
        }
    return {"names": names, "ndarray": probs}
