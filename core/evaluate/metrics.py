"""Answer-quality metrics for ``tuneport eval``: exact match, token F1 and ROUGE-L.

All three compare one model answer with one reference answer and return a score in ``[0, 1]``.

- **exact match** (SQuAD): 1.0 when the two answers are equal after :func:`normalize_answer`
  (lower-case, punctuation and the articles *a/an/the* removed, whitespace collapsed), else 0.0.
- **token F1** (SQuAD): harmonic mean of precision and recall of the normalized answer's tokens
  against the reference's, counting each token as often as it occurs in both (bag of words).
- **ROUGE-L F** (Lin 2004, β = 1): ``2·P·R / (P + R)`` where ``P = LCS / len(answer)`` and
  ``R = LCS / len(reference)``, LCS being the longest common subsequence of the two token
  lists (lower-cased, split on anything that is not a letter or digit, like ``rouge-score``
  without stemming but Unicode-aware). It rewards words in the same order, not just shared
  words.

Two empty answers score 1.0 on every metric; one empty answer against a non-empty one scores 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)
_ROUGE_TOKEN = re.compile(r"[^\w]+|_", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower-case, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both answers are equal after :func:`normalize_answer`, else 0.0."""
    return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between the normalized answers (1.0 when both are empty)."""
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(reference).split()
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased runs of letters and digits (``rouge-score``'s tokens, Unicode-aware)."""
    return [tok for tok in _ROUGE_TOKEN.split(text.lower()) if tok]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)·len(b)) time, O(len(b)) memory)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (β = 1) of ``prediction`` against ``reference``."""
    pred = rouge_tokens(prediction)
    ref = rouge_tokens(reference)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision = lcs / len(pred)
    recall = lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


METRICS = {"exact_match": exact_match, "token_f1": token_f1, "rouge_l": rouge_l}
"""Name -> function, in the order the reports show them."""
