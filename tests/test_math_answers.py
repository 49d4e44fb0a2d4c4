"""MATH answers scored by equivalence (issue 18 §4): harness/suites/math_answers.py.

Every expected value below is the mathematics of the pair (is 0.5 equal to 1/2?), typed by hand.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from lm_eval.tasks.minerva_math import utils as minerva_math

import math_verify.grader
from harness.suites.instruct.scoring import math_correct
from harness.suites.instruct.math_answers import final_answer, math_equivalent, math_strict

FA = "The final answer is: "


def said(answer: str) -> str:
    """A response in FoRA Appendix C's format."""
    return f"We compute step by step.\n{FA}{answer}"


@pytest.mark.parametrize("response, expected", [
    (said("\\frac{1}{2}"), "\\frac{1}{2}"),
    (said("$\\frac{1}{2}$."), "\\frac{1}{2}"),
    ("The final answer is 7.", "7"),  # no colon
    (said("7\n### Instruction:\nnext"), "7"),  # generation ran on: the answer's own line
    (said("$\\boxed{24\\pi}$"), "24\\pi"),
    ("so the area is $\\boxed{24\\pi}$.", "24\\pi"),  # no marker: the last \boxed{}
    ("first \\boxed{1}, then \\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
    (f"\\boxed{{3}} was wrong.\n{FA}5", "5"),  # the marker wins over an earlier \boxed{}
    ("There are 2 cases, so 4 in all.", None),  # numbers in the reasoning are not an answer
    (FA, None),
    (f"{FA}$.", None),
    ("", None),
])
def test_final_answer(response, expected):
    assert final_answer(response) == expected


@pytest.mark.parametrize("answer, label, correct", [
    # LaTeX fractions
    ("\\frac{3}{4}", "\\frac{3}{4}", True),
    ("\\frac34", "\\frac{3}{4}", True),
    ("3/4", "\\frac{3}{4}", True),
    ("\\frac{6}{8}", "\\frac{3}{4}", True),
    ("\\frac{4}{3}", "\\frac{3}{4}", False),
    ("-\\frac{2}{3}", "\\frac{-2}{3}", True),
    ("\\frac{2}{3}", "-\\frac{2}{3}", False),
    # \dfrac / \tfrac are \frac
    ("\\dfrac{1}{2}", "\\frac{1}{2}", True),
    ("\\tfrac12", "\\frac{1}{2}", True),
    ("\\dfrac{1}{3}", "\\frac{1}{2}", False),
    # decimals vs fractions
    ("0.5", "\\frac12", True),
    ("\\frac{1}{2}", "0.5", True),
    ("0.75", "\\frac{3}{4}", True),
    ("0.25", "\\frac{1}{3}", False),
    ("0.33", "\\frac{1}{3}", False),
    # \pi forms
    ("24\\pi", "24\\pi", True),
    ("24 \\pi", "24\\pi", True),
    ("\\pi \\cdot 24", "24\\pi", True),
    ("12\\pi", "24\\pi", False),
    ("75.40", "24\\pi", False),  # 24*pi = 75.398..., a rounded decimal is not the exact answer
    ("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi", True),
    # units and \text{}
    ("5\\text{ cm}", "5", True),
    ("5 cm", "5", True),
    ("5\\text{ cm}", "6", False),
    ("10", "10\\%", True),
    ("90^\\circ", "90", True),
    ("\\text{Monday}", "\\text{Monday}", True),
    ("\\text{(B)}", "\\text{(B)}", True),
    ("\\text{(C)}", "\\text{(B)}", False),
    # other forms a MATH label takes
    ("x=3", "3", True),
    ("1,000", "1000", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt2}{2}", True),
    ("\\sqrt{3}", "\\sqrt{2}", False),
    ("(2, 5)", "(2,5)", True),
    ("[2,5)", "(2,5)", False),
    ("x^2+1", "1+x^2", True),
    ("x^3+1", "x^2+1", False),
])
def test_equivalent_answers(answer, label, correct):
    assert math_equivalent(said(answer), label) is correct


@pytest.mark.parametrize("response, label, correct", [
    ("The circle's area is $\\boxed{24\\pi}$.", "24\\pi", True),  # boxed, no marker
    (said("$\\boxed{24\\pi}$."), "24\\pi", True),  # boxed after the marker
    (said("24\\pi"), "24\\pi", True),
    (f"So \\boxed{{12\\pi}}? No: doubled.\n{FA}24\\pi", "24\\pi", True),
    (f"So \\boxed{{24\\pi}}? No: halved.\n{FA}12\\pi", "24\\pi", False),
    ("The area is 24\\pi square units.", "24\\pi", False),  # no marker, no box: no answer
    ("There are 2 ways.", "2", False),
    ("", "2", False),
    (FA, "2", False),
    (said("2"), "", False),  # an empty label is never matched
])
def test_boxed_marker_and_no_answer(response, label, correct):
    assert math_equivalent(response, label) is correct


@pytest.mark.parametrize("answer, label, correct", [
    ("\\frac{1}{2}", "\\frac{1}{2}", True),
    ("$\\frac{1}{2}$.", "\\frac{1}{2}", True),  # $ and the closing period ignored
    ("\\frac {1} {2}", "\\frac{1}{2}", True),  # spaces ignored
    ("\\dfrac{1}{2}", "\\frac{1}{2}", False),
    ("0.5", "\\frac{1}{2}", False),
    ("\\boxed{24\\pi}", "24\\pi", False),
    ("5\\text{ cm}", "5\\text{cm}", True),
    ("5\\text{ cm}", "5", False),  # a numeric label too is matched as a string here (math_correct: last number)
])
def test_strict_column(answer, label, correct):
    assert math_strict(said(answer), label) is correct
    if not label[0].isdigit():  # today's rule for non-numeric labels
        assert math_strict(said(answer), label) is math_correct(said(answer), label)


def test_strict_needs_the_marker():
    assert not math_strict("so $\\boxed{24\\pi}$", "24\\pi")
    assert not math_strict("24\\pi", "24\\pi")


@pytest.mark.parametrize("response, label, correct", [
    ("She has 3 + 4 = 7 apples.", "7", True),
    ("The total is 1,234 dollars.", "1234", True),
    ("so x = 18.0005", "18", True),  # LLM-Adapters: |label - last number| <= 0.001
    ("so x = 18.002", "18", False),
    ("It is 7, not 8.", "7", False),  # the last number counts
    ("-3 degrees", "-3", True),
    ("I cannot tell.", "5", False),
])
def test_gsm8k_numeric_rule_unchanged(response, label, correct):
    assert math_correct(response, label) is correct


def test_math_verify_timeout_counts_wrong(monkeypatch):
    """A comparison math-verify cannot finish in time (here: one that sleeps) is "not equal", the
    item counts wrong, and no alarm is left pending."""
    response, label = said("\\frac{1}{3}"), "0.333333"  # equal for math-verify only (numeric 1/3)
    assert math_equivalent(response, label)
    monkeypatch.setattr("harness.suites.instruct.math_answers.TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(math_verify.grader, "sympy_expr_eq", lambda *a, **k: time.sleep(30))
    previous = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    assert math_equivalent(response, label) is False
    assert time.monotonic() - start < 10
    assert signal.alarm(0) == 0 and signal.getsignal(signal.SIGALRM) is previous


def test_lm_eval_timeout_counts_wrong(monkeypatch):
    """lm-eval minerva_math's SymPy check times out after its 5 s: "not equal", and its SIGALRM
    handler does not outlive the call."""
    monkeypatch.setattr(minerva_math, "parse_latex", lambda s: time.sleep(30))
    previous = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    assert math_equivalent(said("x^3+1"), "x^2+1") is False
    assert time.monotonic() - start < 15
    assert signal.alarm(0) == 0 and signal.getsignal(signal.SIGALRM) is previous


def test_unparseable_answer_is_wrong_not_a_crash():
    assert math_equivalent(said("\\frac{{{"), "\\frac{1}{2}") is False
    assert math_equivalent(said("}}\\sqrt[&]{"), "2") is False


def test_refuses_off_the_main_thread():
    """lm-eval's timeout fails silently to "not equal" off the main thread: refuse instead."""
    raised = []
    t = threading.Thread(target=lambda: raised.append(_raises(lambda: math_equivalent(said("2"), "2"))))
    t.start()
    t.join()
    assert raised == [True]


def _raises(f) -> bool:
    try:
        f()
    except RuntimeError:
        return True
    return False


def test_scores_in_a_child_forked_from_a_thread():
    """The jobserver forks each job from a server thread: the child is its own main thread."""
    codes = []

    def fork_and_score():
        pid = os.fork()
        if pid == 0:
            os._exit(0 if math_equivalent(said("\\dfrac{1}{2}"), "0.5") else 1)
        codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    t = threading.Thread(target=fork_and_score)
    t.start()
    t.join()
    assert codes == [0]
