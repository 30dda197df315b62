"""Exact and near-duplicate detection for article texts, in a form SQL can index.

- `text_fingerprint`: sha256 of the normalized text; equal fingerprints are exact copies
  (same words, whatever the case, spacing, punctuation or quote style).
- `minhash_signature`: a MinHash (datasketch, 128 permutations, word 5-shingles) that
  estimates the Jaccard similarity of two texts' shingle sets.
- `lsh_band_keys`: locality-sensitive-hashing band keys. Store one row per key in an
  indexed column; `WHERE band_key IN (:keys)` finds near-duplicate candidates across
  processes, which are then confirmed with `is_near_duplicate` on their signatures.

Pure: no I/O, no database. Signatures are persisted, so every parameter that changes the
hash values (permutations, seed, scheme, hash function, shingle size, normalization) is
pinned here; changing one means recomputing stored signatures and band keys.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass

from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32

NUM_PERM = 128
SEED = 1
SCHEME = "affine32"  # datasketch >= 2.0 default; 32-bit hash values
SHINGLE_WORDS = 5
DEFAULT_BANDS = 42  # 42 bands x 3 rows (126 of 128 values); see `lsh_band_keys`
_FORMAT_VERSION = 1
_HEADER = struct.Struct("<BI")  # format version, shingle count
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class MinHashSignature:
    """MinHash values of a text's word shingles, plus how many distinct shingles it had.

    The shingle count lets us turn a Jaccard estimate into a containment estimate (how
    much of a short copy lies inside a longer one).
    """

    values: tuple[int, ...]
    shingle_count: int

    @property
    def empty(self) -> bool:
        return self.shingle_count == 0


def normalized_words(text: str) -> list[str]:
    """Words of `text` after NFKC and casefold, punctuation dropped.

    Curly and straight quotes, dashes and spacing differ between copies of one wire story
    ("Russia’s" vs "Russia's"): dropping punctuation makes them agree.
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def text_fingerprint(text: str) -> str:
    """Hex sha256 of the normalized text: equal for exact copies."""
    return hashlib.sha256(" ".join(normalized_words(text)).encode()).hexdigest()


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """Distinct word `size`-shingles; a text shorter than `size` words is one shingle."""
    words = normalized_words(text)
    if not words:
        return set()
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def minhash_signature(text: str) -> MinHashSignature:
    """The MinHash signature of `text` (update_batch: ~9x faster than per-shingle update)."""
    found = shingles(text)
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, hashfunc=sha1_hash32)
    if found:
        minhash.update_batch(sorted(found))
    return MinHashSignature(tuple(int(v) for v in minhash.hashvalues), len(found))


def estimated_jaccard(a: MinHashSignature, b: MinHashSignature) -> float:
    """Share of equal MinHash values: an unbiased estimate of the shingle-set Jaccard."""
    if a.empty or b.empty:
        return 0.0
    if len(a.values) != len(b.values):
        raise ValueError("signatures with different numbers of permutations")
    return sum(x == y for x, y in zip(a.values, b.values, strict=True)) / len(a.values)


def estimated_containment(part: MinHashSignature, whole: MinHashSignature) -> float:
    """Estimated share of `part`'s shingles that also occur in `whole`.

    From |A∩B| = J·(|A|+|B|)/(1+J), with J the estimated Jaccard.
    """
    jaccard = estimated_jaccard(part, whole)
    if jaccard == 0.0:
        return 0.0
    shared = jaccard * (part.shingle_count + whole.shingle_count) / (1.0 + jaccard)
    return min(shared / part.shingle_count, 1.0)


def is_near_duplicate(
    candidate: MinHashSignature, seen: MinHashSignature, threshold: float = 0.8
) -> bool:
    """True when `candidate` adds nothing textual to `seen` (a copy we already have).

    Either of:
    1. the two texts are near-equal: estimated Jaccard >= threshold (same wire text with
       another headline, dateline or a little site furniture);
    2. `candidate` lies inside `seen`: containment >= threshold (a shortened copy).

    Asymmetric on purpose: a *longer* version of a text we have seen (wire stories grow
    paragraphs as they are updated) is not a duplicate, because the added paragraphs may
    be the new development; novelty decides about those.
    """
    if estimated_jaccard(candidate, seen) >= threshold:
        return True
    return estimated_containment(candidate, seen) >= threshold


def lsh_band_keys(signature: MinHashSignature, bands: int = DEFAULT_BANDS) -> list[str]:
    """Band keys "BB:hash" of the signature: texts sharing any key are candidates.

    With r = NUM_PERM // bands rows per band, a pair with Jaccard J shares a key with
    probability 1 - (1 - J^r)^bands. The default (42 x 3) finds pairs at J = 0.45 98% of
    the time and at J = 0.36 (a copy holding 80% of a text twice its size) 87% of the
    time, while unrelated texts (J <= 0.05) collide 0.5% of the time, so candidate lists
    stay short. An empty signature has no keys.
    """
    if not 1 <= bands <= NUM_PERM:
        raise ValueError(f"bands must be between 1 and {NUM_PERM}")
    if signature.empty:
        return []
    rows = len(signature.values) // bands
    keys = []
    for band in range(bands):
        chunk = signature.values[band * rows : (band + 1) * rows]
        digest = hashlib.blake2b(struct.pack(f"<{rows}I", *chunk), digest_size=8).hexdigest()
        keys.append(f"{band:02d}:{digest}")
    return keys


def signature_to_bytes(signature: MinHashSignature) -> bytes:
    """Compact storage: version byte, shingle count, then 32-bit little-endian values."""
    values = struct.pack(f"<{len(signature.values)}I", *signature.values)
    return _HEADER.pack(_FORMAT_VERSION, signature.shingle_count) + values


def signature_from_bytes(data: bytes) -> MinHashSignature:
    """Inverse of `signature_to_bytes`; ValueError on anything else."""
    expected = _HEADER.size + 4 * NUM_PERM
    if len(data) != expected:
        raise ValueError(f"a signature is {expected} bytes, got {len(data)}")
    version, count = _HEADER.unpack_from(data)
    if version != _FORMAT_VERSION:
        raise ValueError(f"unknown signature format version {version}")
    values = struct.unpack_from(f"<{NUM_PERM}I", data, _HEADER.size)
    return MinHashSignature(tuple(values), count)
