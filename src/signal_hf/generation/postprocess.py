"""Turning raw completions into candidate texts, and dropping invalid or duplicate ones.

:func:`parse_completion` cleans one completion (prompt echo, "Example N:" prefixes, quotes, cut
at the first example boundary / newline, pair parsing) and checks its length.
:class:`NearDuplicateIndex` finds exact and near-duplicates of existing texts (S, R, L) and
within a batch: texts are normalised, split into hashed character n-grams (numpy, no per-text
Python loop over characters), and Jaccard similarities of all (candidate, reference) pairs come
from one sparse matrix product.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..types import TaskSpec
from .prompts import pair_field_names

__all__ = [
    "DROP_REASONS",
    "NearDuplicateIndex",
    "dedup_key",
    "normalize_text",
    "parse_completion",
]

#: Every reason a generation can be dropped for, in the order they are checked.
DROP_REASONS = ("empty", "unparseable_pair", "too_short", "too_long", "truncated", "duplicate", "near_duplicate")

_SPECIAL = re.compile(r"<\|[^|>]*\|>|<(?:eos|bos|pad|end_of_turn|start_of_turn)>|</?s>")
_EXAMPLE_PREFIX = re.compile(r"^\s*(?:\**\s*)?(?:example|ex\.)\s*#?\s*\d*\s*[:.)\-]\s*(?:\**\s*)?", re.IGNORECASE)
_EXAMPLE_BOUNDARY = re.compile(r"\bexample\s*#?\s*\d+\s*[:.)\-]", re.IGNORECASE)
_GENERIC_FIELD_PREFIX = re.compile(r"^\s*(?:text|review|sentence|answer|output|new example)\s*:\s*", re.IGNORECASE)
_PREAMBLE = re.compile(r"^\s*(?:sure|okay|ok|here(?:'s| is| are)|certainly|of course)\b[^:\n]*:\s*(?P<rest>.*)$", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»„"
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """NFKC, lower-case, punctuation → space, collapsed whitespace: ``"It's great!"`` and
    SST-2's tokenised ``"it 's great"`` both become ``"it s great"``. Two texts with the same
    normal form count as exact duplicates."""
    return " ".join(_NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def dedup_key(text: str, text_pair: str | None = None) -> str:
    """The string compared for duplicates: the text, or both fields of a pair joined."""
    return text if text_pair is None else f"{text} || {text_pair}"


def _strip_quotes(s: str) -> str:
    s = s.strip()
    while len(s) >= 2 and s[0] in _QUOTES and s[-1] in _QUOTES:
        s = s[1:-1].strip()
    if s and s[0] in _QUOTES and not any(q in s[1:] for q in _QUOTES[:2]):
        s = s[1:].strip()  # an opening quote whose closing one fell past the cut
    if s and s[-1] in _QUOTES and not any(q in s[:-1] for q in _QUOTES):
        s = s[:-1].strip()
    return s


def _strip_echo(text: str, instruction: str) -> str:
    """Drop a leading copy of the instruction (models sometimes restate the task)."""
    if instruction:
        head = instruction.strip()
        if text.lower().startswith(head.lower()):
            return text[len(head):]
    return text


def _first_content(text: str) -> str:
    """The first line that is not a chat preamble ("Here is a new example:") or a bare prefix."""
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        pre = _PREAMBLE.match(stripped)
        if pre:  # "Here is a new example:" alone, or followed by the text on the same line
            stripped = pre.group("rest").strip()
            if not stripped:
                continue
        rest = _EXAMPLE_PREFIX.sub("", stripped, count=1).strip()
        if not rest:  # a bare "Example 4:" line: the text is on the next line
            continue
        return stripped
    return ""


def _clean_single(text: str) -> str:
    text = _first_content(text)
    text = _EXAMPLE_PREFIX.sub("", text, count=1)
    m = _EXAMPLE_BOUNDARY.search(text)
    if m:  # the model went on to write the next example on the same line
        text = text[: m.start()]
    text = _GENERIC_FIELD_PREFIX.sub("", text, count=1)
    return _strip_quotes(text)


def _parse_pair(text: str, task: TaskSpec) -> tuple[str, str] | None:
    a, b = pair_field_names(task)
    # The first field up to the second one's label (same or next line); the second up to the
    # line end or the next example.
    pat = re.compile(
        rf"{re.escape(a)}\s*:\s*(?P<a>[^\n]+?)\s*\n?\s*{re.escape(b)}\s*:\s*(?P<b>[^\n]+)",
        re.IGNORECASE,
    )
    m = pat.search(text)
    if not m:
        return None
    second = m.group("b")
    cut = _EXAMPLE_BOUNDARY.search(second)
    if cut:
        second = second[: cut.start()]
    first, second = _strip_quotes(m.group("a")), _strip_quotes(second)
    if not first or not second:
        return None
    return first, second


def parse_completion(
    completion: str,
    task: TaskSpec,
    *,
    instruction: str = "",
    min_words: int = 3,
    max_words: int = 64,
    max_chars: int = 600,
) -> tuple[dict | None, str | None]:
    """Clean one completion into ``{"text": …[, "text_pair": …]}`` or return ``(None, reason)``.

    Reasons: ``empty``, ``unparseable_pair``, ``too_short`` (fewer than ``min_words`` words in a
    field), ``too_long`` (more than ``max_words`` words or ``max_chars`` characters in all).
    """
    text = _SPECIAL.sub("", completion.replace("\r", ""))
    text = _strip_echo(text.strip(), instruction).strip()
    if not text:
        return None, "empty"
    if task.is_pair:
        parsed = _parse_pair(text, task)
        if parsed is None:
            return None, "unparseable_pair"
        fields = {"text": parsed[0], "text_pair": parsed[1]}
    else:
        cleaned = _clean_single(text)
        if not cleaned:
            return None, "empty"
        fields = {"text": cleaned}
    words = [len(v.split()) for v in fields.values()]
    if min(words) < min_words:
        return None, "too_short"
    if sum(words) > max_words or sum(len(v) for v in fields.values()) > max_chars:
        return None, "too_long"
    return fields, None


# ---------------------------------------------------------------- near-duplicates

_MOD = (1 << 31) - 1  # Mersenne prime: n-gram hashes stay < 2^31, products fit in int64
_BASE = 1_000_003


def _ngram_sets(normalised: Sequence[str], n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hashed character n-gram *sets* of many texts at once.

    Returns ``(rows, hashes, sizes)``: one (row, hash) entry per distinct n-gram of each text and
    the set size of every text. Texts shorter than ``n`` are padded with spaces so each has ≥ 1.
    """
    texts = [t.ljust(n) for t in normalised]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    if len(texts) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, empty
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    windows = np.lib.stride_tricks.sliding_window_view(codes, n)  # (T-n+1, n)
    h = np.zeros(len(windows), dtype=np.int64)
    for j in range(n):  # Horner over the n positions (n is tiny), vectorised over all windows
        h = (h * _BASE + windows[:, j]) % _MOD
    row = np.repeat(np.arange(len(texts)), lengths)[: len(windows)]
    valid = np.arange(len(windows)) - starts[row] <= lengths[row] - n  # window inside its text
    keys = np.unique(row[valid] * _MOD + h[valid])
    rows, hashes = keys // _MOD, keys % _MOD
    sizes = np.bincount(rows, minlength=len(texts))
    return torch.from_numpy(rows), torch.from_numpy(hashes), torch.from_numpy(sizes)


def _sparse(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    values = torch.ones(len(rows), dtype=torch.float32)
    with torch.sparse.check_sparse_tensor_invariants(False):
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n_rows, n_cols)).coalesce()


def _jaccard(a: tuple, b: tuple, n_a: int, n_b: int) -> torch.Tensor:
    """``(n_a, n_b)`` exact Jaccard similarities of hashed n-gram sets (sparse product = |A∩B|)."""
    if n_a == 0 or n_b == 0:
        return torch.zeros(n_a, n_b)
    # Only n-grams present in both sides can intersect; renumber those compactly so the sparse
    # product's inner dimension is small (a 2^31-wide one makes torch allocate per column).
    shared, inv = torch.unique(torch.cat([a[1], b[1]]), return_inverse=True)
    ia, ib = inv[: len(a[1])], inv[len(a[1]) :]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        inter = torch.sparse.mm(_sparse(a[0], ia, n_a, len(shared)), _sparse(ib, b[0], len(shared), n_b)).to_dense()
    union = a[2].unsqueeze(1).float() + b[2].unsqueeze(0).float() - inter
    return inter / union.clamp(min=1)


class NearDuplicateIndex:
    """Exact and near-duplicate detection against a growing set of reference texts.

    Args:
        texts: initial reference texts (already :func:`dedup_key`-joined for pair tasks).
        threshold: Jaccard similarity of character n-gram sets at or above which two texts are
            near-duplicates (1.0 = only identical n-gram sets).
        ngram: character n-gram length.
        block_size: candidates compared per sparse product (bounds memory to block × references).
    """

    def __init__(self, texts: Iterable[str] = (), *, threshold: float = 0.8, ngram: int = 4, block_size: int = 1024):
        self.threshold = float(threshold)
        self.ngram = int(ngram)
        self.block_size = int(block_size)
        self._keys: set[str] = set()
        self._norm: list[str] = []
        self._sets: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.add(texts)

    def __len__(self) -> int:
        return len(self._norm)

    def add(self, texts: Iterable[str]) -> None:
        """Add reference texts (normalised, deduplicated by normal form)."""
        new = []
        for t in texts:
            k = normalize_text(t)
            if k not in self._keys:
                self._keys.add(k)
                new.append(k)
        if not new:
            return
        rows, hashes, sizes = _ngram_sets(new, self.ngram)
        if self._sets is None:
            self._sets = (rows, hashes, sizes)
        else:
            r0, h0, s0 = self._sets
            self._sets = (torch.cat([r0, rows + len(self._norm)]), torch.cat([h0, hashes]), torch.cat([s0, sizes]))
        self._norm.extend(new)

    def max_similarity(self, texts: Sequence[str]) -> torch.Tensor:
        """``(len(texts),)`` highest Jaccard similarity of each text to any reference (0 if none)."""
        out = torch.zeros(len(texts))
        if not texts or not self._norm:
            return out
        for lo in range(0, len(texts), self.block_size):
            block = [normalize_text(t) for t in texts[lo : lo + self.block_size]]
            sim = _jaccard(_ngram_sets(block, self.ngram), self._sets, len(block), len(self._norm))
            out[lo : lo + len(block)] = sim.max(dim=1).values
        return out

    def check(self, texts: Sequence[str], *, add: bool = False) -> list[str | None]:
        """For each text: ``"duplicate"`` (same normal form as a reference or an earlier kept text
        of the batch), ``"near_duplicate"`` (Jaccard ≥ threshold with one), or ``None`` (new).

        Within the batch a text is compared with the earlier texts that were not themselves
        dropped against the references (one vectorised pass; a chain A≈B≈C with A≉C drops both
        B and C — conservative). With ``add=True`` the new texts join the references.
        """
        texts = list(texts)
        if not texts:
            return []
        norm = [normalize_text(t) for t in texts]
        reasons: list[str | None] = ["duplicate" if k in self._keys else None for k in norm]
        near_ref = self.max_similarity(texts) >= self.threshold
        sets = _ngram_sets(norm, self.ngram)
        within = _jaccard(sets, sets, len(texts), len(texts))
        ok_so_far = torch.tensor([r is None for r in reasons]) & ~near_ref
        earlier = torch.ones(len(texts), len(texts)).tril(-1).bool()  # [j, i]: i < j
        near_batch = ((within >= self.threshold) & earlier & ok_so_far.unsqueeze(0)).any(dim=1)
        first_seen: dict[str, int] = {}
        for j, k in enumerate(norm):
            if reasons[j] is not None:
                continue
            i = first_seen.setdefault(k, j) if bool(ok_so_far[j]) else first_seen.get(k, j)
            if i != j:
                reasons[j] = "duplicate"
            elif bool(near_ref[j]) or bool(near_batch[j]):
                reasons[j] = "near_duplicate"
        if add:
            self.add(t for t, r in zip(texts, reasons) if r is None)
        return reasons
