"""Outcome assertions with a threshold for each mode.

A notebook ends by checking what it measured, so that a technique that silently stopped
working fails the run::

    checks.assert_outcomes(metrics, [
        checks.Expect("baseline_test_accuracy", ">=", full=0.905, smoke=0.70),
        checks.Expect("backprop_max_abs_diff", "<=", full=1e-5, smoke=1e-5),
    ], mode=MODE)
"""

from __future__ import annotations

import math
import numbers
import operator
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import env

_OPERATORS = {">=": operator.ge, "<=": operator.le, "==": operator.eq,
              ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Expect:
    """One expected outcome: ``metrics[metric] <op> threshold``, with a threshold for each mode."""

    metric: str
    op: str
    full: float | bool
    smoke: float | bool

    def __post_init__(self):
        if self.op not in _OPERATORS:
            raise ValueError(f"Unknown comparison {self.op!r}: use one of {sorted(_OPERATORS)}")

    def threshold(self, mode: str) -> float | bool:
        return self.full if env.check_mode(mode) == "full" else self.smoke


@dataclass(frozen=True)
class Outcome:
    """The result of checking one :class:`Expect`."""

    metric: str
    value: object
    op: str
    threshold: float | bool
    passed: bool


def _kind(value) -> str | None:
    """``"bool"``, ``"number"`` or ``"str"``; None for anything else (which never passes).

    Booleans are kept apart from numbers although Python treats ``True`` as 1: a flag must not
    satisfy ``>= 0.9``, and the number 1 must not satisfy ``== True``.
    """
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


def evaluate(metrics: dict, expectations: list[Expect], mode: str) -> list[Outcome]:
    """Check every expectation; a missing or NaN value, or one of another kind than its
    threshold (a boolean against a number, a number against a boolean), fails."""
    env.check_mode(mode)
    outcomes = []
    for expect in expectations:
        value, threshold = metrics.get(expect.metric), expect.threshold(mode)
        kind = _kind(value)
        passed = False
        if kind is not None and kind == _kind(threshold):
            if kind == "number" and math.isnan(float(value)):
                passed = False
            elif kind != "number" and expect.op != "==":
                passed = False                      # only equality makes sense for flags and text
            else:
                passed = bool(_OPERATORS[expect.op](value, threshold))
        outcomes.append(Outcome(expect.metric, value, expect.op, threshold, passed))
    return outcomes


def format_outcomes(outcomes: list[Outcome]) -> str:
    """A plain-text table of outcomes (metric, value, requirement, PASS/FAIL)."""
    def show(v):
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    rows = [(o.metric, show(o.value), f"{o.op} {show(o.threshold)}", "PASS" if o.passed else "FAIL")
            for o in outcomes]
    widths = [max(len(r[i]) for r in rows + [("metric", "value", "required", "")])
              for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("metric", "value", "required", ""), widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def assert_outcomes(metrics: dict, expectations: list[Expect], mode: str) -> list[Outcome]:
    """Print the outcome table and raise ``AssertionError`` listing every failed expectation."""
    if not expectations:
        raise ValueError("assert_outcomes needs at least one expectation")
    outcomes = evaluate(metrics, expectations, mode)
    print(f"Outcome checks ({mode} mode)\n{format_outcomes(outcomes)}")
    failed = [o for o in outcomes if not o.passed]
    if failed:
        raise AssertionError(f"{len(failed)} outcome(s) failed in {mode} mode: " + "; ".join(
            f"{o.metric}={o.value!r} is not {o.op} {o.threshold!r}" for o in failed))
    return outcomes


def error_of(call, pattern: str = r"[^\n]+") -> str:
    """Run ``call`` and return what it raised as ``"Type: message"`` (the first part of the
    message matching ``pattern``: by default its first line), or ``"no error"``.

    Pitfall boxes use it to show the real error of a broken listing instead of quoting one.
    """
    try:
        call()
    except Exception as error:  # noqa: BLE001 - any error is the result
        found = re.search(pattern, str(error))
        return f"{type(error).__name__}: {found.group(0) if found else str(error)}"
    return "no error"


@dataclass(frozen=True)
class PytestRun:
    """The outcome of :func:`run_pytest`: counts and pytest's last line."""

    passed: int
    failed: int
    summary: str
    output: str


def run_pytest(*paths: str, cwd: Path | None = None, timeout_s: float = 600) -> PytestRun:
    """Run pytest on ``paths`` in a subprocess (from the course root by default) and count.

    The project's ``addopts`` (nbval options) are dropped, so it also works where nbval is not
    installed (Colab). Errors during collection count as failures.
    """
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "--color=no", "-o", "addopts=",
                          "-p", "no:cacheprovider", *paths], cwd=cwd or env.course_root(),
                         capture_output=True, text=True, timeout=timeout_s)
    lines = run.stdout.strip().splitlines()
    summary = lines[-1] if lines else run.stderr.strip()[-300:]

    def count(word: str) -> int:
        found = re.search(rf"(\d+) {word}", summary)
        return int(found.group(1)) if found else 0
    failed = count("failed") + count("errors?")
    if run.returncode != 0 and failed == 0:
        failed = 1                                  # pytest could not run at all: never a pass
    return PytestRun(count("passed"), failed, summary, run.stdout + run.stderr)
