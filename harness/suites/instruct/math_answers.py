"""MATH answers scored by equivalence, the way the field scores them (issue 18 §4).

FoRA (004 §4.2) says only "the final numeric answer"; LLM-Adapters' ``evaluate.py`` cannot score a
LaTeX label. A MATH label is the content of the solution's last ``\\boxed{}`` (``\\frac{1}{2}``,
``24\\pi``, ``(2,5)``), so an exact string match scores ``\\dfrac{1}{2}``, ``0.5`` or ``\\boxed{24\\pi}``
wrong. Two columns:

* **MATH** (:func:`math_equivalent`): the model's final answer (:func:`final_answer`) is correct when
  any of the field's three graders says it equals the label:

  1. math-verify (HuggingFace; lm-eval's ``minerva_math`` ``math_verify`` metric): both sides parsed
     to SymPy (``parse``) and compared (``verify``: symbolic, numeric to 6 decimals, sets,
     intervals, equations like ``x=3``);
  2. lm-eval ``minerva_math``: ``normalize_final_answer`` on both sides (Lewkowycz et al. 2022,
     appendix D: units, ``\\text{}``, ``$``, thousands commas removed), then its ``is_equiv``
     (identical strings, or SymPy difference simplifying to 0);
  3. lm-eval ``hendrycks_math``: ``is_equiv``, i.e. equal after ``strip_string`` (Hendrycks et al.
     2021: ``\\dfrac``/``\\tfrac`` to ``\\frac``, ``\\frac12`` to ``\\frac{1}{2}``, ``0.5`` to
     ``\\frac{1}{2}``, ``\\%``, ``^\\circ``, a unit after ``\\text{ `` removed).

  The graders differ in what they normalise (math-verify misses ``10\\%`` = ``10``; the string
  graders miss ``0.333333`` = ``\\frac{1}{3}``); each is a published rule, so the union only adds
  equalities some published MATH scorer accepts. No answer (no marker, no ``\\boxed{}``) is wrong:
  a number somewhere in the reasoning is not the model's answer.
* **MATH strict** (:func:`math_strict`): the harness's first rule, kept as a labelled second column:
  the text after the last "The final answer is:", spaces and ``$`` removed, trailing period
  dropped, equals the label with spaces and ``$`` removed.

GSM8K and ASDiv labels are numbers and keep LLM-Adapters' rule (``instruct.math_correct``).

Timeouts: math-verify and lm-eval's ``is_equiv`` bound SymPy with ``signal.alarm`` (POSIX, main
thread only). A job scores in its process's main thread (``python -m harness`` or the jobserver's
forked child), where a timeout makes that grader say "not equal": the item counts wrong, the run
goes on. Off the main thread lm-eval's timeout fails silently to "not equal" for every item, so
:func:`math_equivalent` refuses to run there.
"""
from __future__ import annotations

import re
import signal
import threading

from lm_eval.tasks.hendrycks_math import utils as hendrycks_math
from lm_eval.tasks.minerva_math import utils as minerva_math
from math_verify import parse, verify

__all__ = ["FINAL_ANSWER_MARKER", "TIMEOUT_SECONDS", "final_answer", "math_equivalent", "math_strict"]

# FoRA Appendix C's responses end with "The final answer is: <answer>" (instruct.FINAL_ANSWER); the
# colon is optional here ("The final answer is 7.").
FINAL_ANSWER_MARKER = "The final answer is"
# Seconds per parse and per comparison (math-verify's own default; lm-eval's is_equiv has a fixed 5).
TIMEOUT_SECONDS = 5


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``) of ``text``: lm-eval's MATH extraction."""
    boxed = hendrycks_math.last_boxed_only_string(text)
    if boxed is None:
        return None
    try:
        return hendrycks_math.remove_boxed(boxed)
    except AssertionError:  # "\fbox{...}": remove_boxed knows only \boxed
        return boxed[boxed.find("{") + 1:-1]


def _clean(answer: str) -> str:
    """Outer ``$`` delimiters and a sentence's closing period removed (``$24\\pi$.`` -> ``24\\pi``)."""
    answer = answer.strip().rstrip(".").strip()
    return answer.strip("$").strip().rstrip(".").strip()


def final_answer(text: str) -> str | None:
    """The model's final answer, or None when it gave none.

    The first non-empty line after the last "The final answer is" (its ``\\boxed{}`` content if it
    boxes it); without that marker, the content of the last ``\\boxed{}``.
    """
    if FINAL_ANSWER_MARKER in text:
        tail = text.rsplit(FINAL_ANSWER_MARKER, 1)[1].lstrip(" :")
        line = next((x for x in tail.splitlines() if x.strip()), "")
        answer = _last_boxed(line) or line
    else:
        answer = _last_boxed(text) or ""
    answer = _clean(answer)
    return answer or None


def _math_verify_equal(label: str, answer: str) -> bool:
    """math-verify: gold first (``verify`` is not symmetric). Both are boxed so that each is read
    whole; a parse or comparison that times out or fails gives [] / False (raise_on_error=False)."""
    gold = parse(f"$\\boxed{{{label}}}$", parsing_timeout=TIMEOUT_SECONDS)
    pred = parse(f"$\\boxed{{{answer}}}$", parsing_timeout=TIMEOUT_SECONDS)
    return bool(gold) and bool(pred) and verify(gold, pred, timeout_seconds=TIMEOUT_SECONDS)


def _lm_eval_equal(label: str, answer: str) -> bool:
    """lm-eval's minerva_math (normalised, then SymPy) or hendrycks_math (strip_string) equality.

    minerva's ``is_equiv`` installs its own SIGALRM handler and leaves it: the previous one is put back.
    """
    previous = signal.getsignal(signal.SIGALRM)
    try:
        if minerva_math.is_equiv(minerva_math.normalize_final_answer(answer),
                                 minerva_math.normalize_final_answer(label)):
            return True
    finally:
        signal.signal(signal.SIGALRM, previous)
    return hendrycks_math.is_equiv(answer, label)


def math_equivalent(text: str, label: str) -> bool:
    """The MATH column: the final answer of ``text`` equals ``label`` for math-verify or for one of
    lm-eval's MATH graders (module docstring); no final answer is wrong."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("MATH equivalence scoring bounds SymPy with signal.alarm (math-verify, lm-eval "
                           "minerva_math), which works only in the main thread; score in the job's main thread")
    answer, label = final_answer(text), _clean(label)
    if answer is None or not label:
        return False
    return _math_verify_equal(label, answer) or _lm_eval_equal(label, answer)


def math_strict(text: str, label: str) -> bool:
    """The MATH strict column (the harness's first rule): the text after the last "The final answer
    is:", spaces and ``$`` removed, trailing period dropped, equals the label, spaces and ``$`` removed."""
    marker = FINAL_ANSWER_MARKER + ":"
    tail = text.rsplit(marker, 1)[1] if marker in text else ""
    return bool(label.strip()) and re.sub(r"[\s$]", "", tail).rstrip(".") == re.sub(r"[\s$]", "", label)
