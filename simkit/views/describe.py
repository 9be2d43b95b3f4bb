"""``simkit describe``: the text ``iter8ctl describe`` v0.1.5 prints for an Iter8 Experiment.

Works on the raw object (a dict), so any Experiment from a cluster can be described, including
one from ``kubectl get experiment -o yaml``. Layout, as in iter8ctl's ``describe/describe.go`` and
``experiment/experiment.go`` (iter8-v2.md §6):

* Overview and Progress Summary always; the rest only after the first completed iteration;
* Winner Assessment (explanations for Canary and Conformance), Reward Assessment (best value
  marked ``*``), Objective Assessment, Metrics Assessment (rows in ``status.metrics`` order);
* numbers with 3 decimals rounded toward +∞ (``inf.RoundCeil`` on the exact decimal);
* tables as olekukonko/tablewriter draws them with row lines: upper-cased centred headers, cells
  wrapped at 30 columns by its minimum-raggedness algorithm, numeric lines right-aligned,
  everything else left-aligned (:func:`render_table`).

One deliberate deviation: iter8ctl's ``GetAnnotatedMetricStrs`` keeps ``&i`` of the Go (< 1.22)
range variable, so its ``*`` always lands on the *last* version whatever the values. simkit marks
the version with the best value (ties: the first), as the section's own caption promises. With
the best version last — the seed's case — both agree.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Any

from simkit.spec.quantity import quantity_text_decimal

MAX_CELL_WIDTH = 30  # tablewriter's MAX_ROW_WIDTH
_WRAP_PENALTY = 100000  # tablewriter's defaultPenalty
_DECIMAL_CELL = re.compile(r"^-?(?:[0-9]{1,3}(?:,[0-9]{3})*|[0-9]+)(?:\.[0-9]+)?$")
CANARY_EXPLANATION = (
    "> If the candidate version satisfies the experiment objectives, then it is the winner.\n"
    "> Otherwise, if the baseline version satisfies the experiment objectives, it is the winner.\n"
    "> Otherwise, there is no winner.\n"
)
CONFORMANCE_EXPLANATION = (
    "> If the version being validated; i.e., the baseline version, satisfies the experiment objectives, "
    "it is the winner.\n> Otherwise, there is no winner.\n"
)


# ---------------------------------------------------------------------------- numbers


def quantity_decimal(value: Any) -> Decimal:
    """A Kubernetes quantity (or YAML number) as an exact decimal; ValueError if it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite quantity")
        return Decimal(repr(value))  # the shortest text that reads back as this float
    if not isinstance(value, str):
        raise ValueError(f"not a quantity: {value!r}")
    return quantity_text_decimal(value)


def ceil3(value: Any) -> str:
    """iter8ctl's number format: 3 decimals, rounded toward +∞ (``0.01`` → ``0.010``)."""
    d = quantity_decimal(value)
    with localcontext() as ctx:  # digits enough for 3 decimals of any magnitude (inf.Dec has no limit)
        ctx.prec = max(ctx.prec, d.adjusted() + 5)
        q = d.quantize(Decimal("0.001"), rounding=ROUND_CEILING)
    if q == 0:
        q = abs(q)  # inf.Dec has no negative zero
    return f"{q:f}"


# ---------------------------------------------------------------------------- tablewriter


def display_width(text: str) -> int:
    """Terminal columns (go-runewidth): wide East Asian characters count 2, combining marks 0."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wrap_words(words: Sequence[str], limit: int) -> list[list[str]]:
    """tablewriter's ``WrapWords``: minimum raggedness (squared slack), overlong lines penalised."""
    n = len(words)
    length = [[0] * n for _ in range(n)]
    for i in range(n):
        length[i][i] = display_width(words[i])
        for j in range(i + 1, n):
            length[i][j] = length[i][j - 1] + 1 + display_width(words[j])
    nbrk = [0] * n
    cost = [2**31 - 1] * n
    for i in range(n - 1, -1, -1):
        if length[i][n - 1] <= limit:
            cost[i], nbrk[i] = 0, n
            continue
        for j in range(i + 1, n):
            d = limit - length[i][j - 1]
            c = d * d + cost[j]
            if length[i][j - 1] > limit:
                c += _WRAP_PENALTY
            if c < cost[i]:
                cost[i], nbrk[i] = c, j
    lines: list[list[str]] = []
    i = 0
    while i < n:
        lines.append(list(words[i : nbrk[i]]))
        i = nbrk[i]
    return lines


def wrap_string(text: str, limit: int) -> list[str]:
    """tablewriter's ``WrapString``: a word wider than the limit widens the limit."""
    words = text.replace("\n", " ").split(" ")
    for word in words:
        limit = max(limit, display_width(word))
    return [" ".join(line) for line in wrap_words(words, limit)]


def _cell_lines(text: str) -> tuple[list[str], int]:
    """tablewriter's ``parseDimension`` with auto-wrap: the cell's lines and its width."""
    paragraphs = text.split("\n")
    width = min(max(display_width(p) for p in paragraphs), MAX_CELL_WIDTH)
    lines: list[str] = []
    new_width = width
    for i, para in enumerate(paragraphs):
        wrapped = wrap_string(para, width)
        new_width = max([new_width] + [display_width(w) for w in wrapped])
        if i > 0:
            lines.append(" ")
        lines.extend(wrapped)
    return lines, new_width


def _title(text: str) -> str:
    """tablewriter's header ``Title``: ``_`` and non-numeric ``.`` become spaces, upper-cased."""
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch == "_":
            chars[i] = " "
        elif ch == ".":
            before = i != 0 and not (chars[i - 1].isdigit() or chars[i - 1] == " ")
            after = i != len(chars) - 1 and not (chars[i + 1].isdigit() or chars[i + 1] == " ")
            if before or after:
                chars[i] = " "
    out = "".join(chars).strip()
    if not out and text:
        out = " "
    return out.upper()


def _pad_center(text: str, width: int) -> str:
    gap = width - display_width(text)
    if gap <= 0:
        return text
    left = gap // 2
    return " " * left + text + " " * (gap - left)


def _pad_cell(text: str, width: int) -> str:
    gap = width - display_width(text)
    if gap <= 0:
        return text
    return " " * gap + text if _DECIMAL_CELL.match(text.strip()) else text + " " * gap


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table exactly as tablewriter renders it with ``SetRowLine(true)`` and default options."""
    head = [_cell_lines(h) for h in header]
    body = [[_cell_lines(c) for c in row] for row in rows]
    ncols = max([len(header)] + [len(r) for r in rows])
    widths = [0] * ncols
    for cells in [head, *body]:
        for k, (_, w) in enumerate(cells):
            widths[k] = max(widths[k], w)
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"
    out = [rule]
    for x in range(max(len(lines) for lines, _ in head)):
        texts = [_title(lines[x]) if x < len(lines) else "" for lines, _ in head]
        out.append("|" + "".join(f" {_pad_center(t, widths[k])} |" for k, t in enumerate(texts)) + "\n")
    out.append(rule)
    for cells in body:
        height = max(len(lines) for lines, _ in cells)
        for x in range(height):
            texts = [lines[x] if x < len(lines) else "  " for lines, _ in cells]
            out.append("".join(f"| {_pad_cell(t, widths[k])} " for k, t in enumerate(texts)) + "|\n")
        out.append(rule)
    return "".join(out)


# ---------------------------------------------------------------------------- the description


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _versions(exp: Mapping[str, Any]) -> list[str]:
    info = _get(exp, "spec", "versionInfo")
    if not isinstance(info, Mapping):
        return []
    names = [str(_get(info, "baseline", "name") or "")]
    return names + [str(_get(c, "name") or "") for c in (info.get("candidates") or [])]


def _metric_dec(exp: Mapping[str, Any], metric: str, version: str) -> Decimal | None:
    value = _get(exp, "status", "analysis", "aggregatedMetrics", "data", metric, "data", version, "value")
    if value is None:
        return None
    return Decimal(ceil3(value))


def _metric_str(exp: Mapping[str, Any], metric: str, version: str) -> str:
    value = _metric_dec(exp, metric, version)
    return "unavailable" if value is None else f"{value:f}"


def _objective_label(obj: Mapping[str, Any]) -> str:
    label = ""
    if obj.get("lowerLimit") is not None:
        label += ceil3(obj["lowerLimit"]) + " <= "
    label += str(obj.get("metric", ""))
    if obj.get("upperLimit") is not None:
        label += " <= " + ceil3(obj["upperLimit"])
    return label


def _satisfy(exp: Mapping[str, Any], index: int, version: str) -> str:
    flags = _get(exp, "status", "analysis", "versionAssessments", "data", version)
    if isinstance(flags, list) and len(flags) > index:
        return "true" if flags[index] else "false"
    return "unavailable"


def _reward_row(exp: Mapping[str, Any], reward: Mapping[str, Any], versions: Sequence[str]) -> list[str]:
    metric = str(reward.get("metric", ""))
    high = reward.get("preferredDirection") == "High"
    cells: list[str] = []
    best: tuple[int, Decimal] | None = None
    for i, v in enumerate(versions):
        value = _metric_dec(exp, metric, v)
        cells.append("unavailable" if value is None else f"{value:f}")
        if value is not None and (best is None or (value > best[1] if high else value < best[1])):
            best = (i, value)
    if best is not None:
        cells[best[0]] += " *"
    return [f"{metric} ({'higher' if high else 'lower'} better)"] + cells


def _winner_section(exp: Mapping[str, Any], pattern: str) -> str:
    winner = _get(exp, "status", "analysis", "winnerAssessment")
    if winner is None:
        return ""
    out = "\n****** Winner Assessment ******\n"
    out += {"Canary": CANARY_EXPLANATION, "Conformance": CONFORMANCE_EXPLANATION}.get(pattern, "")
    if pattern != "Conformance" and isinstance(_get(exp, "spec", "versionInfo"), Mapping):
        out += f"App versions in this experiment: [{' '.join(_versions(exp))}]\n"
    data = winner.get("data") if isinstance(winner, Mapping) else None
    found = isinstance(data, Mapping) and data.get("winnerFound") and data.get("winner")
    out += f"Winning version: {data['winner'] if found else 'not found'}\n"  # type: ignore[index]
    vrfp = _get(exp, "status", "versionRecommendedForPromotion")
    if pattern != "Conformance" and vrfp is not None:
        out += f"Version recommended for promotion: {vrfp}\n"
    return out


def describe(experiment: Mapping[str, Any]) -> str:
    """iter8ctl v0.1.5's description of an Experiment object, including the final newline."""
    exp = experiment
    raw_spec = exp.get("spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    pattern = str(_get(spec, "strategy", "testingPattern") or "")
    out = "\n****** Overview ******\n"
    out += f"Experiment name: {_get(exp, 'metadata', 'name') or ''}\n"
    out += f"Experiment namespace: {_get(exp, 'metadata', 'namespace') or ''}\n"
    out += f"Target: {spec.get('target') or ''}\n"
    out += f"Testing pattern: {pattern}\n"
    out += f"Deployment pattern: {_get(spec, 'strategy', 'deploymentPattern') or 'Progressive'}\n"
    out += "\n****** Progress Summary ******\n"
    stage = _get(exp, "status", "stage")
    if stage is not None:
        out += f"Experiment stage: {stage}\n"
    completed = _get(exp, "status", "completedIterations")
    completed = completed if isinstance(completed, int) and not isinstance(completed, bool) else 0
    out += f"Number of completed iterations: {completed}\n"
    if completed > 0:
        out += _assessments(exp, spec, pattern)
    return out + "\n"


def _assessments(exp: Mapping[str, Any], spec: Mapping[str, Any], pattern: str) -> str:
    out = _winner_section(exp, pattern)
    analysis = _get(exp, "status", "analysis")
    versions = _versions(exp)
    criteria = spec.get("criteria") if isinstance(spec.get("criteria"), Mapping) else None
    assessed = isinstance(analysis, Mapping) and analysis.get("versionAssessments") is not None
    rewards = list(criteria.get("rewards") or []) if criteria else []
    if assessed and rewards:
        out += "\n****** Reward Assessment ******\n"
        out += (
            "> Identifies values of reward metrics for each version. The best version is marked with a '*'.\n"
        )
        out += render_table(["Reward", *versions], [_reward_row(exp, r, versions) for r in rewards])
    objectives = list(criteria.get("objectives") or []) if criteria else []
    if assessed and objectives:
        out += "\n****** Objective Assessment ******\n"
        out += (
            "> Identifies whether or not the experiment objectives are satisfied by the most recently "
            "observed metrics values for each version.\n"
        )
        rows = [
            [_objective_label(o)] + [_satisfy(exp, i, v) for v in versions] for i, o in enumerate(objectives)
        ]
        out += render_table(["Objective", *versions], rows)
    if isinstance(analysis, Mapping) and analysis.get("aggregatedMetrics") is not None:
        out += "\n****** Metrics Assessment ******\n"
        out += "> Most recently read values of experiment metrics for each version.\n"
        rows = []
        for info in _get(exp, "status", "metrics") or []:
            name = str(_get(info, "name") or "")
            units = _get(info, "metricObj", "spec", "units")
            label = name if units is None else f"{name} ({units})"
            rows.append([label] + [_metric_str(exp, name, v) for v in versions])
        out += render_table(["Metric", *versions], rows)
    return out
