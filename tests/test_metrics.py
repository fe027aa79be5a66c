"""Exact match, SQuAD token F1 and LCS-based ROUGE-L against hand-computed values."""

from __future__ import annotations

import pytest

from tuneport.evaluate.metrics import (
    exact_match,
    lcs_length,
    normalize_answer,
    rouge_l,
    rouge_tokens,
    token_f1,
)


def test_normalize_answer_squad_rules() -> None:
    assert normalize_answer("  The Cat, sat on A mat!  ") == "cat sat on mat"
    assert normalize_answer("An apple") == "apple"
    # articles only as whole words
    assert normalize_answer("Theatre anthem") == "theatre anthem"


def test_exact_match_ignores_case_punctuation_articles() -> None:
    assert exact_match("The answer is 42.", "answer is 42") == 1.0
    assert exact_match("answer is 43", "answer is 42") == 0.0
    assert exact_match("", "") == 1.0


def test_token_f1_hand_computed() -> None:
    # pred tokens: cat sat (2); ref: cat sat on mat (4); overlap 2 -> P=1, R=0.5, F1=2/3
    assert token_f1("the cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # repeated tokens count once per shared occurrence: pred a-b-b-b, ref b-b-c
    # overlap min(3,2)=2 b's -> P=2/4, R=2/3 -> F1 = 2*(.5*.6667)/(1.1667) = 4/7
    assert token_f1("x y y y", "y y z") == pytest.approx(4 / 7)
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "cat") == 0.0
    assert token_f1("", "") == 1.0


def test_lcs_length() -> None:
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length([], ["a"]) == 0
    assert lcs_length(["a", "b"], ["a", "b"]) == 2


def test_rouge_tokens_split_on_non_alnum() -> None:
    assert rouge_tokens("Hello, World! it's 2-fold_x") == [
        "hello",
        "world",
        "it",
        "s",
        "2",
        "fold",
        "x",
    ]
    assert rouge_tokens("Crème brûlée") == ["crème", "brûlée"]


def test_rouge_l_hand_computed() -> None:
    # ref: the cat sat on the mat (6), pred: the cat on mat (4); LCS = the cat on mat = 4
    # P = 4/4, R = 4/6 -> F = 2*1*(2/3)/(5/3) = 0.8
    assert rouge_l("the cat on mat", "the cat sat on the mat") == pytest.approx(0.8)
    # order matters: reversed tokens share all words but LCS is 1
    assert rouge_l("c b a", "a b c") == pytest.approx(1 / 3)
    assert token_f1("c b a", "a b c") == 1.0
    assert rouge_l("Same Words.", "same words") == 1.0
    assert rouge_l("nothing", "shared") == 0.0
    assert rouge_l("", "x") == 0.0
    assert rouge_l("", "") == 1.0
