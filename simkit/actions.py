"""Rendering Iter8 handler actions (``common/exec`` and friends) with a version's variables.

The Iter8 handler (0.1.17–0.1.21) renders each ``common/exec`` arg with Go's ``html/template``
and a map of the promoted version's ``name`` and variables (iter8-v2.md §2.9). This module
reproduces the part that matters: ``{{ .key }}`` (spaces optional), missing keys render as
``<no value>``, and values are HTML-escaped as html/template does in text context. Rendering is
pure; running (or only recording) the result is an ActionRunner's job. simkit refuses a missing
key before the run (:func:`undefined_fields`, checked by ``simkit.prepare``) rather than run a
command with the literal ``<no value>`` in it, as the handler would.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

_FIELD = re.compile(r"\{\{-?\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")
# html/template escapes these in text context (Go's htmlEscaper / htmlReplacementTable)
_HTML = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "\x00": "\ufffd", "+": "&#43;"}


def html_escape(value: str) -> str:
    return "".join(_HTML.get(ch, ch) for ch in value)


def render(template: str, variables: Mapping[str, str]) -> str:
    """Render ``{{ .name }}`` fields the way the handler's html/template would."""

    def field(m: re.Match[str]) -> str:
        key = m.group(1)
        return html_escape(variables[key]) if key in variables else "&lt;no value&gt;"

    return _FIELD.sub(field, template)


def template_inputs(task: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, text) of each input of a task that the handler renders as a template."""
    inputs = dict(task.get("with") or {})
    if task.get("task") == "common/exec" and not inputs.get("disableInterpolation"):
        return [(f"with.args[{i}]", str(a)) for i, a in enumerate(inputs.get("args") or [])]
    if task.get("task") == "common/bash":
        return [("with.script", str(inputs.get("script", "")))]
    return []


def undefined_fields(text: str, variables: Mapping[str, str]) -> list[str]:
    """The ``{{ .key }}`` keys of ``text`` that ``variables`` lacks (they would render ``<no value>``)."""
    return [m.group(1) for m in _FIELD.finditer(text) if m.group(1) not in variables]


def render_tasks(
    tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]
) -> tuple[dict[str, Any], ...]:
    """Each task with its ``with`` inputs rendered (``common/exec``: args; ``common/bash``: script)."""
    out = []
    for task in tasks:
        name = str(task.get("task", ""))
        inputs = dict(task.get("with") or {})
        rendered: dict[str, Any] = {"task": name}
        if name == "common/exec":
            rendered["cmd"] = str(inputs.get("cmd", ""))
            args = [str(a) for a in inputs.get("args") or []]
            rendered["args"] = (
                args if inputs.get("disableInterpolation") else [render(a, variables) for a in args]
            )
        elif name == "common/bash":
            rendered["script"] = render(str(inputs.get("script", "")), variables)
        else:
            rendered["with"] = inputs
        out.append(rendered)
    return tuple(out)


def command_line(task: Mapping[str, Any]) -> str:
    """A shell-quoted one-line form of a rendered task, for printing and traces."""
    if task.get("task") == "common/exec":
        return shlex.join([str(task.get("cmd", "")), *[str(a) for a in task.get("args", [])]])
    if task.get("task") == "common/bash":
        return f"bash -c {shlex.quote(str(task.get('script', '')))}"
    return f"{task.get('task')} {task.get('with', {})}"


_KUBECTL_APPLY = re.compile(r"(?:^|\s|;|&&)kubectl\s+apply\s+(?:[^;&|]*?\s)?-f\s+(\S+)")


def kubectl_apply_targets(task: Mapping[str, Any]) -> list[str]:
    """Files or URLs a rendered task would ``kubectl apply -f`` (to mirror them in the sim's store)."""
    text = command_line(task)
    if task.get("task") == "common/exec":
        text = " ".join([str(task.get("cmd", "")), *[str(a) for a in task.get("args", [])]])
    return [m.group(1).strip("'\"") for m in _KUBECTL_APPLY.finditer(text)]
