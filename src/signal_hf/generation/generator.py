"""The few-shot generator: a causal LM with a LoRA adapter that writes unlabeled candidates.

Each round it builds ``n`` prompts (instruction + p seeded real examples, see :mod:`.prompts`),
samples one completion per prompt in left-padded batches under a fixed seed, cleans them and drops
invalid ones and (near-)duplicates of S, R, L and of each other (:mod:`.postprocess`). The model is
always a :class:`peft.PeftModel` (loaded by :mod:`.model`) so the RL module can train the adapter in
place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, DataError, GenerationError
from ..types import TaskSpec
from .config import GeneratorConfig
from .decoding import Completion, SamplingSettings, sample_completions
from .model import attach_lora, load_base_model
from .postprocess import DROP_REASONS, NearDuplicateIndex, dedup_key, parse_completion
from .prompts import default_instruction, render_example, render_prompt, sample_example_indices, uses_chat_template

__all__ = ["GenerationStats", "Generator", "load_base_model", "synthetic_features"]

logger = logging.getLogger(__name__)

#: Share of a round's candidates dropped as truncated from which :meth:`Generator.generate` warns.
TRUNCATION_WARNING_SHARE = 0.5


@dataclass
class GenerationStats:
    """What one :meth:`Generator.generate` call produced.

    Attributes:
        generated: completions sampled (one per prompt).
        kept: candidates returned.
        dropped: reason → count for the rest (``empty``, ``unparseable_pair``, ``too_short``,
            ``too_long``, ``truncated``, ``duplicate``, ``near_duplicate``); ``generated == kept + sum(dropped)``.
    """

    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


def synthetic_features(task: TaskSpec):
    """``datasets.Features`` of the synthetic rows (normalised columns + generation metadata)."""
    from datasets import Features, Value

    # Same order as the real pool's columns (signal_hf.data), then the generation metadata.
    cols = {"id": Value("string"), "text": Value("string"), "label": Value("int64"), "source": Value("string")}
    if task.is_pair:
        cols["text_pair"] = Value("string")
    cols.update(prompt=Value("string"), generator_revision=Value("string"), round=Value("int64"))
    return Features(cols)


def _newline_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the single tokens that are pure newlines ("\\n", "\\n\\n")."""
    ids: list[int] = []
    for s in ("\n", "\n\n"):
        enc = tokenizer.encode(s, add_special_tokens=False)
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(int(enc[0]))
    return ids


def _stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS ids plus pure-newline tokens: one example per line, so generation ends at the line end
    without ``stop_strings`` (whose set-up is slow with Gemma's 262k vocabulary)."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for e in [*(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]), tokenizer.eos_token_id, *_newline_token_ids(tokenizer)]:
        if e is not None and int(e) not in ids:
            ids.append(int(e))
    return ids


def _existing_keys(existing: Iterable[Any]) -> Iterable[str]:
    for item in existing:
        if isinstance(item, str):
            yield item
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            yield dedup_key(str(item[0]), str(item[1]))
        elif isinstance(item, dict) and "text" in item:
            yield dedup_key(item["text"], item.get("text_pair"))
        else:
            raise DataError(f"existing_texts: cannot compare with {item!r} (fix: pass strings, or (text, text_pair) tuples for pair tasks)")


class Generator:
    """Few-shot synthetic-text generator: base causal LM + LoRA adapter (``self.model``).

    Args:
        config: the ``generator`` recipe section.
        task: the classification task (instruction template, pair fields).
        model: an already loaded causal LM (wrapped with a fresh LoRA unless it is a ``PeftModel``);
            ``None`` = load ``config.model_name_or_path`` (and ``config.adapter_name_or_path``).
        tokenizer: its tokenizer; ``None`` = load it with the model.

    Attributes:
        model: the :class:`peft.PeftModel` (RL trains its adapter in place).
        tokenizer: the tokenizer (a pad token is set to EOS when it has none).
        revision: label of the current adapter (``base`` for a fresh one; the loop sets it to the
            round-store revision after RL).
        instruction: the instruction I in every prompt.
        chat: prompts use the tokenizer's chat template (else completion style).
    """

    def __init__(self, config: GeneratorConfig, task: TaskSpec, *, model: Any = None, tokenizer: Any = None):
        # The config's values were checked when it was built; what follows needs the given model.
        if config.adapter_revision and not config.adapter_name_or_path and model is None:
            raise ConfigError("generator.adapter_revision", "is set but no adapter is named", "set generator.adapter_name_or_path to the adapter folder or Hub repo")
        self.config = config
        self.task = task
        if model is None:
            model, loaded_tok = load_base_model(config)
            tokenizer = tokenizer or loaded_tok
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(_name_or_path(model))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.model = attach_lora(model, config)
        if config.adapter_name_or_path:
            self.revision = config.adapter_revision or str(config.adapter_name_or_path)
        else:
            self.revision = "base"
        self.instruction = config.instruction or default_instruction(task)
        self.chat = uses_chat_template(tokenizer, config.prompt_style)
        self._stop_ids = _stop_token_ids(self.model, tokenizer)
        self._newline_ids = _newline_token_ids(tokenizer)
        # RL rollouts end at the same example boundary as generation: TRL (and our PPO) sample until,
        # and mask the completion after, the first of ``model.generation_config.eos_token_id``.
        self.model.generation_config.eos_token_id = list(self._stop_ids)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str,
        *,
        task: TaskSpec,
        config: GeneratorConfig | None = None,
        revision: str | None = None,
        adapter: str | Path | None = None,
        adapter_revision: str | None = None,
    ) -> Generator:
        """Load a base model (folder, Hub id + revision, ``bundled:…``) and optionally a trained
        adapter (folder, or Hub repo + ``adapter_revision``); other settings from ``config``."""
        cfg = dataclasses.replace(config or GeneratorConfig(), model_name_or_path=model_name_or_path)
        if revision is not None:
            cfg.revision = revision
        if adapter is not None:
            cfg.adapter_name_or_path = str(adapter)
            cfg.adapter_revision = adapter_revision
        elif adapter_revision is not None:
            cfg.adapter_revision = adapter_revision
        return cls(cfg, task)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------ prompts

    def build_prompts(self, real_pool: Any, n: int, *, seed: int) -> list[str]:
        """``n`` prompts, each with p = ``num_examples`` distinct real examples drawn with ``seed``.

        Only the texts are shown (never the labels); rows with an empty text are skipped.
        """
        if "text" not in real_pool.column_names or (self.task.is_pair and "text_pair" not in real_pool.column_names):
            need = "text and text_pair" if self.task.is_pair else "text"
            raise DataError(f"real_pool: needs the normalised column(s) {need}, has {real_pool.column_names} (fix: load data through signal_hf.data)")
        texts = real_pool["text"]
        pairs = real_pool["text_pair"] if self.task.is_pair else [None] * len(texts)
        rendered = [render_example(t, tp, self.task, max_words=self.config.max_example_words) for t, tp in zip(texts, pairs) if t and str(t).strip()]
        idx = sample_example_indices(len(rendered), n, self.config.num_examples, seed=seed)
        return [render_prompt([rendered[j] for j in row], self.instruction, self.tokenizer, chat=self.chat, task=self.task) for row in idx]

    # ------------------------------------------------------------ sampling

    def generation_kwargs(self) -> dict[str, Any]:
        """The ``model.generate`` sampling arguments :meth:`generate_raw` uses (for other samplers,
        e.g. RL rollouts, to write the same one-line examples): stop at EOS or a newline, never
        start with a newline."""
        cfg = self.config
        return {
            "do_sample": True,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_new_tokens": cfg.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": list(self._stop_ids),
            # a newline as the first token would end the example before it starts
            "begin_suppress_tokens": list(self._newline_ids) or None,
        }

    def generate_raw(self, prompts: Sequence[str], *, seed: int) -> list[str]:
        """One sampled completion per prompt (the new tokens only, decoded), batched, seeded."""
        return [c.text for c in self.sample(prompts, seed=seed)]

    def sample(self, prompts: Sequence[str], *, seed: int, progress: Callable[[int, int], None] | None = None) -> list[Completion]:
        """One :class:`Completion` per prompt (its text, and whether it hit ``max_new_tokens``),
        with the ``generator.decoding`` loop. The global RNG state is left as it was; the same
        adapter, prompts, seed, batch size and decoding give the same completions.
        ``progress(done, total)`` is called after each batch."""
        prompts = list(prompts)
        if not prompts:
            return []
        was_training = self.model.training
        self.model.eval()  # no LoRA dropout while sampling
        try:
            if self.config.decoding == "fast":
                cfg = self.config
                settings = SamplingSettings(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                            stop_ids=tuple(self._stop_ids), suppress_first=tuple(self._newline_ids), batch_size=cfg.batch_size)
                return sample_completions(self.model.get_base_model(), self.tokenizer, prompts, settings, seed=seed,
                                          add_special_tokens=not self.chat, progress=progress)
            return self._sample_transformers(prompts, seed, progress)
        finally:
            self.model.train(was_training)

    def rollout_sampler(self) -> Callable[[list[str], int], tuple[list[list[int]], list[list[int]]]] | None:
        """For RL rollouts under ``decoding: fast``: ``(prompts, seed) -> (prompt ids, completion ids)``,
        one completion per prompt (repeats included) from :meth:`sample`, its stop token kept, the
        prompt tokenised as :meth:`sample` tokenises it. ``None`` under ``decoding: transformers``
        (the RL trainer's own ``generate`` then)."""
        if self.config.decoding != "fast":
            return None

        def sampler(prompts: list[str], seed: int) -> tuple[list[list[int]], list[list[int]]]:
            prompt_ids = self.tokenizer(list(prompts), add_special_tokens=not self.chat)["input_ids"]
            return prompt_ids, [list(c.token_ids) for c in self.sample(prompts, seed=seed)]

        return sampler

    def _sample_transformers(self, prompts: list[str], seed: int, progress: Callable[[int, int], None] | None) -> list[Completion]:
        cfg = self.config
        device = self.device
        gen_kwargs = self.generation_kwargs()
        stop = set(self._stop_ids)
        out: list[Completion] = []
        cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            torch.manual_seed(seed)
            for lo in range(0, len(prompts), cfg.batch_size):
                enc = self.tokenizer(
                    prompts[lo : lo + cfg.batch_size],
                    return_tensors="pt",
                    padding=True,
                    padding_side="left",  # generation appends on the right
                    add_special_tokens=not self.chat,  # the chat template already has its specials
                ).to(device)
                new = self.model.generate(**enc, **gen_kwargs)[:, enc["input_ids"].shape[1] :]
                for row, text in zip(new.tolist(), self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                    first_stop = next((j for j, t in enumerate(row) if t in stop), None)  # after it: padding
                    out.append(Completion(text, truncated=first_stop is None and len(row) >= cfg.max_new_tokens,
                                          tokens=len(row) if first_stop is None else first_stop + 1))
                if progress is not None:
                    progress(len(out), len(prompts))
        return out

    # ------------------------------------------------------------ filtering

    def postprocess(self, completion: str) -> tuple[dict | None, str | None]:
        """Clean one completion: ``({"text": …[, "text_pair": …]}, None)`` or ``(None, reason)``."""
        cfg = self.config
        return parse_completion(completion, self.task, instruction=self.instruction, min_words=cfg.min_words, max_words=cfg.max_words, max_chars=cfg.max_chars)

    def parse_batch(self, completions: Sequence[str], existing_texts: Iterable[Any] = ()) -> list[tuple[dict | None, str | None]]:
        """:meth:`postprocess` every completion, then drop exact/near-duplicates of
        ``existing_texts`` (strings, or ``(text, text_pair)`` tuples for pair tasks) and of earlier
        completions in the batch. Used by :meth:`generate` and by the RL reward (invalid penalty)."""
        parsed = [self.postprocess(c) for c in completions]
        valid = [i for i, (f, _) in enumerate(parsed) if f is not None]
        index = NearDuplicateIndex(_existing_keys(existing_texts), threshold=self.config.near_duplicate_threshold, ngram=self.config.near_duplicate_ngram)
        reasons = index.check([dedup_key(parsed[i][0]["text"], parsed[i][0].get("text_pair")) for i in valid])
        for i, reason in zip(valid, reasons):
            if reason is not None:
                parsed[i] = (None, reason)
        return parsed

    def completion_parser(self, real_pool: Any, existing_texts: Iterable[Any] = ()) -> Callable[[Sequence[str]], list[tuple[dict | None, str | None]]]:
        """``parse(completions)``: :meth:`parse_batch` against the real pool, ``existing_texts`` (S, L)
        and the batch itself: what :meth:`generate` keeps, and what the RL reward does not penalise."""
        pool_keys = (dedup_key(t, tp) for t, tp in zip(real_pool["text"], real_pool["text_pair"] if self.task.is_pair else [None] * len(real_pool)) if t)
        keys = [*_existing_keys(existing_texts), *pool_keys]
        return lambda completions: self.parse_batch(completions, keys)

    def generate(
        self,
        real_pool: Any,
        n: int,
        *,
        round_idx: int,
        seed: int,
        existing_texts: Iterable[Any] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[Any, GenerationStats]:
        """Write ``n`` candidates (one per prompt) and keep the valid, new ones.

        Each sampled batch logs one line (``sampled k/n``, also when output goes to a file) and
        calls ``progress(k, n)``.

        Duplicates are checked against ``existing_texts`` (S, R, L), the real pool itself and the
        batch. Returns a :class:`datasets.Dataset` with the normalised columns (``label`` = -1,
        ``source`` = ``synthetic``) plus ``prompt``, ``generator_revision`` and ``round``.
        """
        from datasets import Dataset

        if n < 0:
            raise GenerationError(f"n: cannot generate {n} candidates (fix: pass n >= 0)")
        prompts = self.build_prompts(real_pool, n, seed=seed)
        def report(done: int, total: int) -> None:
            logger.info("round %d: sampled %d/%d candidates", round_idx, done, total)
            if progress is not None:
                progress(done, total)

        sampled = self.sample(prompts, seed=seed, progress=report)
        completions = [c.text for c in sampled]
        results = self.completion_parser(real_pool, existing_texts)(completions)
        if not self.config.keep_truncated:  # cut mid-example at max_new_tokens: not a whole instance
            results = [(None, "truncated") if c.truncated and f is not None else (f, r) for (f, r), c in zip(results, sampled)]

        cols: dict[str, list] = {k: [] for k in synthetic_features(self.task)}
        dropped: Counter[str] = Counter()
        for i, ((fields, reason), prompt, raw) in enumerate(zip(results, prompts, completions)):
            if fields is None:
                dropped[reason] += 1
                logger.debug("round %d candidate %d dropped (%s): %r", round_idx, i, reason, raw[:120])
                continue
            key = dedup_key(fields["text"], fields.get("text_pair"))
            cols["id"].append(f"syn-r{round_idx}-{i}-{hashlib.sha1(key.encode()).hexdigest()[:8]}")
            cols["text"].append(fields["text"])
            if self.task.is_pair:
                cols["text_pair"].append(fields["text_pair"])
            cols["label"].append(-1)
            cols["source"].append("synthetic")
            cols["prompt"].append(prompt)
            cols["generator_revision"].append(self.revision)
            cols["round"].append(round_idx)
        stats = GenerationStats(generated=len(completions), kept=len(cols["id"]), dropped={r: dropped[r] for r in DROP_REASONS if dropped[r]})
        logger.info("round %d: generated %d candidates, kept %d, dropped %s (adapter %s)", round_idx, stats.generated, stats.kept, stats.dropped or "none", self.revision)
        cut = stats.dropped.get("truncated", 0)
        if stats.generated and cut / stats.generated >= TRUNCATION_WARNING_SHARE:
            # Measured on AG News (scripts/max_new_tokens_sweep.py): at 32 tokens 62 % were cut and the kept
            # ones were the short texts (17 words against the pool's 30); 64 tokens kept 93 %, cheaper per kept item.
            logger.warning("round %d: %d of %d candidates hit generator.max_new_tokens=%d and were dropped as truncated; the kept ones "
                           "are biased to short texts (fix: raise generator.max_new_tokens)", round_idx, cut, stats.generated, self.config.max_new_tokens)
        return Dataset.from_dict(cols, features=synthetic_features(self.task)), stats

    # ------------------------------------------------------------ persistence

    def save_adapter(self, path: str | Path) -> None:
        """Write the LoRA adapter (``adapter_config.json`` + weights) with peft's ``save_pretrained``."""
        Path(path).mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path))


def _name_or_path(model: Any) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    name = getattr(base, "name_or_path", None) or getattr(base.config, "_name_or_path", None)
    if not name:
        raise GenerationError("tokenizer: the given model has no name_or_path to load its tokenizer from (fix: pass tokenizer=...)")
    return name
