"""The frozen sentence encoder: pooling that fits the checkpoint, one text per pass, an embedding cache.

Used by the ``probe`` classifier backend (its features), by BERT-KM (the *pretrained* embeddings)
and by the fine-tuning backend to choose its pooling. Four rules keep its outputs reproducible:

* **Pooling fits the checkpoint.** ``pooling="auto"`` reads a sentence-transformers
  ``1_Pooling/config.json`` when the folder has one (all-MiniLM-L6-v2 and all-mpnet-base-v2 were
  trained with mean pooling) and falls back to ``cls`` for a plain encoder (BERT's [CLS] pooler).
* **One text per forward pass.** A batched matrix product rounds a row differently depending on the
  batch's shape: with all-mpnet-base-v2, 72 of 134 SST-2 sentences got vectors ~1e-7 apart when
  encoded together rather than alone, even in padding-free equal-length batches, and which texts
  share a batch depends on what was cached before. So every text runs alone (no padding, no
  companions): its vector is a function of the text only. This costs about 1.7x the batched time,
  once per text per machine (the cache below).
* **One thread, whatever the process uses.** Matrix products round differently with 1 and 2 torch
  threads (on this machine 2 of 200 SST-2 sentences differ by ~1e-7), and BERT-KM's k-means turns
  such differences into different picks; so encoding always runs on one thread, and the same text
  gets the same vector in a 2-thread demo, a 1-thread grid worker or a test.
* **Each text is encoded once.** Embeddings are kept by text (and pair) in memory and, when a
  cache folder is given, on disk (one file per encoder fingerprint, written atomically), so the
  seeds of a grid and its rounds share one encoding of the pool and the test set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

import torch

from .bundled import cache_dir, resolve_model_path
from .errors import ConfigError

__all__ = ["SentenceEncoder", "resolve_pooling", "get_encoder", "Pooling", "PairFeatures"]

logger = logging.getLogger(__name__)

Pooling = Literal["auto", "cls", "mean"]
PairFeatures = Literal["interaction", "joint"]


def resolve_pooling(path: str, pooling: str) -> Literal["cls", "mean"]:
    """``cls`` or ``mean`` for a checkpoint folder; ``auto`` reads its sentence-transformers pooling."""
    if pooling in ("cls", "mean"):
        return pooling  # type: ignore[return-value]
    if pooling != "auto":
        raise ConfigError("classifier.pooling", f"unknown pooling {pooling!r}", "use auto, cls or mean")
    pool_cfg = Path(path) / "1_Pooling" / "config.json"
    if pool_cfg.is_file():
        cfg = json.loads(pool_cfg.read_text())
        if cfg.get("pooling_mode_mean_tokens"):
            return "mean"
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
    return "cls"


def _text_key(text: str, pair: str | None) -> str:
    return hashlib.sha1(json.dumps([text, pair]).encode()).hexdigest()


class SentenceEncoder:
    """A frozen encoder that maps texts (or pairs) to L2-normalised pooled embeddings.

    Args:
        model_name_or_path: checkpoint (``bundled:minilm``, ``bundled:mpnet``, a folder or Hub id).
        pooling: ``auto`` | ``cls`` | ``mean`` (see :func:`resolve_pooling`).
        max_length: tokenizer truncation length.
        cache: folder for the on-disk embedding cache, or ``None`` for memory only.
    """

    def __init__(self, model_name_or_path: str, *, pooling: str = "auto", max_length: int = 128, cache: str | os.PathLike | None = None):
        from transformers import AutoModel, AutoTokenizer

        field = "classifier.model_name_or_path"
        path = resolve_model_path(model_name_or_path, field)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        except OSError as e:
            raise ConfigError(field, f"cannot load {path!r} ({str(e).splitlines()[0]})", "give a local folder, a Hub id, bundled:minilm or bundled:mpnet") from None
        self.pooling = resolve_pooling(path, pooling)
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        # "1-thread-1-text": the version of the encoding rules above; vectors cached under other rules are not reused.
        fingerprint = json.dumps(["1-thread-1-text", model_name_or_path, str(path), self.pooling, max_length, self.model.config.to_json_string()])
        self.fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        self._cache_file = Path(cache) / f"{self.fingerprint}.pt" if cache else None
        self._vectors: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()
        self._dirty = False
        if self._cache_file is not None and self._cache_file.is_file():
            try:
                self._vectors = torch.load(self._cache_file, weights_only=True)
            except Exception as e:  # a damaged cache is only a cost: re-encode
                logger.warning("embedding cache %s unreadable (%s); re-encoding", self._cache_file, e)

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        return hidden[:, 0]

    @torch.no_grad()
    def _encode(self, texts: Sequence[str], pairs: Sequence[str | None] | None) -> list[torch.Tensor]:
        enc = self.tokenizer(list(texts), list(pairs) if pairs is not None else None, truncation=True, max_length=self.max_length)
        out: list[torch.Tensor] = []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i in range(len(enc["input_ids"])):
                row = {k: torch.tensor([enc[k][i]]) for k in enc.keys()}
                hidden = self.model(**row).last_hidden_state.float()
                out.append(torch.nn.functional.normalize(self._pool(hidden, row["attention_mask"]), dim=-1)[0].clone())
        finally:
            torch.set_num_threads(threads)
        return out

    def embed(self, texts: Sequence[str], pairs: Sequence[str | None] | None = None) -> torch.Tensor:
        """``(n, d)`` float32 L2-normalised embeddings; only texts never seen before are encoded."""
        keys = [_text_key(t, pairs[i] if pairs is not None else None) for i, t in enumerate(texts)]
        with self._lock:
            todo = sorted({k: i for i, k in enumerate(keys) if k not in self._vectors}.values())
            if todo:
                vecs = self._encode([texts[i] for i in todo], [pairs[i] for i in todo] if pairs is not None else None)
                for i, v in zip(todo, vecs):
                    self._vectors[keys[i]] = v
                self._dirty = True
            if not keys:
                return torch.zeros(0, self.dim)
            return torch.stack([self._vectors[k] for k in keys])

    def embed_dataset(self, dataset, pair_features: PairFeatures = "joint") -> torch.Tensor:
        """Embeddings of a normalised dataset's ``text`` (and ``text_pair``) columns, in row order.

        A pair dataset gives, with ``pair_features="joint"``, one ``(n, d)`` vector per pair encoded
        as one tokenizer pair; with ``"interaction"``, ``(n, 2d)`` ``[u ⊙ v, |u − v|]`` of the two
        texts encoded alone (each cached as a single text, so a text shared by pairs is encoded once).
        """
        if "text_pair" not in dataset.column_names:
            return self.embed(dataset["text"][:])
        if pair_features == "joint":
            return self.embed(dataset["text"][:], dataset["text_pair"][:])
        if pair_features != "interaction":
            raise ConfigError("classifier.pair_features", f"unknown value {pair_features!r}", "use interaction or joint")
        u, v = self.embed(dataset["text"][:]), self.embed(dataset["text_pair"][:])
        return torch.cat([u * v, (u - v).abs()], dim=1)

    def save(self) -> None:
        """Write the in-memory embeddings to the cache file (atomic; merged with what others wrote)."""
        if self._cache_file is None or not self._dirty:
            return
        with self._lock:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            merged = dict(self._vectors)
            if self._cache_file.is_file():
                try:
                    merged = {**torch.load(self._cache_file, weights_only=True), **merged}
                except Exception:
                    pass
            fd, tmp = tempfile.mkstemp(prefix=self._cache_file.name + ".", dir=self._cache_file.parent)
            os.close(fd)
            torch.save(merged, tmp)
            os.replace(tmp, self._cache_file)
            self._dirty = False


def get_encoder(model_name_or_path: str, pooling: str, max_length: int, use_cache: bool = True) -> SentenceEncoder:
    """One loaded encoder per (checkpoint, pooling, length) in a process: rounds and trials share it.

    ``pooling`` is resolved first, so the probe (``auto``) and BERT-KM (``mean``) share one encoder
    (and one set of embeddings) when the checkpoint's own pooling is mean.
    """
    path = resolve_model_path(model_name_or_path, "classifier.model_name_or_path")
    return _shared_encoder(model_name_or_path, resolve_pooling(path, pooling), max_length, use_cache)


@lru_cache(maxsize=4)
def _shared_encoder(model_name_or_path: str, pooling: str, max_length: int, use_cache: bool) -> SentenceEncoder:
    cache = cache_dir() / "embeddings" if use_cache else None
    return SentenceEncoder(model_name_or_path, pooling=pooling, max_length=max_length, cache=cache)
