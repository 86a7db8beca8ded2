"""The few-shot generator: a causal LM with a LoRA adapter that writes unlabeled candidates.

Each round it builds ``n`` prompts (instruction + p seeded real examples, see :mod:`.prompts`),
samples one completion per prompt in left-padded batches under a fixed seed, cleans them and drops
invalid ones and (near-)duplicates of S, R, L and of each other (:mod:`.postprocess`). The model is
always a :class:`peft.PeftModel` so the RL module can train the adapter in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..bundled import resolve_model_path
from ..errors import ConfigError, DataError, GenerationError
from ..types import TaskSpec
from .config import GeneratorConfig, check_generator_config
from .postprocess import DROP_REASONS, NearDuplicateIndex, dedup_key, parse_completion
from .prompts import (
    default_instruction,
    render_example,
    render_prompt,
    sample_example_indices,
    uses_chat_template,
)

__all__ = ["GenerationStats", "Generator", "load_base_model", "synthetic_features"]

logger = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    """What one :meth:`Generator.generate` call produced.

    Attributes:
        generated: completions sampled (one per prompt).
        kept: candidates returned.
        dropped: reason → count for the rest (``empty``, ``unparseable_pair``, ``too_short``,
            ``too_long``, ``duplicate``, ``near_duplicate``); ``generated == kept + sum(dropped)``.
    """

    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"generated": self.generated, "kept": self.kept, "dropped": dict(self.dropped)}


def synthetic_features(task: TaskSpec):
    """``datasets.Features`` of the synthetic rows (normalised columns + generation metadata)."""
    from datasets import Features, Value

    # Same order as the real pool's columns (signal_hf.data), then the generation metadata.
    cols = {"id": Value("string"), "text": Value("string"), "label": Value("int64"), "source": Value("string")}
    if task.is_pair:
        cols["text_pair"] = Value("string")
    cols.update(prompt=Value("string"), generator_revision=Value("string"), round=Value("int64"))
    return Features(cols)


def _device(config: GeneratorConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(config.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GenerationError(f"generator.device: {config.device!r} asked for but no CUDA GPU is available (fix: set generator.device: auto or cpu)")
    return dev


def _dtype(config: GeneratorConfig, device: torch.device) -> torch.dtype:
    if config.dtype != "auto":
        return getattr(torch, config.dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_base_model(config: GeneratorConfig, *, field_prefix: str = "generator") -> tuple[Any, Any]:
    """Load the base causal LM and tokenizer the config names (no adapter yet).

    ``load_in_4bit`` quantises with bitsandbytes NF4 (bf16 compute) and prepares the model for
    k-bit training; it needs CUDA and fails with a :class:`GenerationError` otherwise.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = _device(config)
    kwargs: dict[str, Any] = {}
    if config.load_in_4bit:
        # Checked before resolving the model: converting a bundled GGUF takes a minute.
        if device.type != "cuda":
            raise GenerationError(
                f"{field_prefix}.load_in_4bit: 4-bit NF4 quantisation (bitsandbytes) needs a CUDA GPU, but the generator runs on {device.type} "
                f"(fix: set {field_prefix}.load_in_4bit: false on CPU — LoRA then trains on the full-precision model)"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise GenerationError(f"{field_prefix}.load_in_4bit: needs the bitsandbytes package (fix: pip install 'signal_hf[gpu]')") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": device.index if device.index is not None else torch.cuda.current_device()}
    else:
        kwargs["dtype"] = _dtype(config, device)
    path = resolve_model_path(config.model_name_or_path, f"{field_prefix}.model_name_or_path", gguf_file=config.gguf_file)
    if config.revision:
        kwargs["revision"] = config.revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **({"revision": config.revision} if config.revision else {}))
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise GenerationError(
            f"{field_prefix}.model_name_or_path: cannot load causal LM {config.model_name_or_path!r}: {e} "
            "(fix: give a local folder, a Hub model id (with generator.revision), or bundled:gemma3-270m / bundled:smollm2-135m)"
        ) from e
    if config.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model.to(device)
    return model, tokenizer


def _attach_lora(base: Any, config: GeneratorConfig) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(base, PeftModel):
        return base
    if config.adapter_name_or_path:
        extra = {"revision": config.adapter_revision} if config.adapter_revision else {}
        try:
            return PeftModel.from_pretrained(base, str(config.adapter_name_or_path), is_trainable=True, **extra)
        except (OSError, ValueError) as e:
            raise GenerationError(
                f"generator.adapter_name_or_path: cannot load the LoRA adapter {config.adapter_name_or_path!r}"
                f"{' at revision ' + repr(config.adapter_revision) if config.adapter_revision else ''}: {e} "
                "(fix: give a folder written by Generator.save_adapter or a Hub adapter repo and its revision)"
            ) from e
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules) or None,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(base, lora)
    except ValueError as e:
        raise ConfigError("generator.lora_target_modules", str(e), "name modules of this architecture (e.g. [q_proj, v_proj]) or leave it empty") from e


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
        check_generator_config(config)
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
        self.model = _attach_lora(model, config)
        if config.adapter_name_or_path:
            self.revision = config.adapter_revision or str(config.adapter_name_or_path)
        else:
            self.revision = "base"
        self.instruction = config.instruction or default_instruction(task)
        self.chat = uses_chat_template(tokenizer, config.prompt_style)
        self._stop_ids = _stop_token_ids(self.model, tokenizer)
        self._newline_ids = _newline_token_ids(tokenizer)

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
        rendered = [render_example(t, tp, self.task) for t, tp in zip(texts, pairs) if t and str(t).strip()]
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
        """One sampled completion per prompt (the new tokens only, decoded), batched, seeded.

        The global RNG state is restored afterwards; the same adapter, prompts, seed and batch
        size give the same completions.
        """
        prompts = list(prompts)
        if not prompts:
            return []
        cfg = self.config
        device = self.device
        gen_kwargs = self.generation_kwargs()
        was_training = self.model.training
        self.model.eval()  # no LoRA dropout while sampling
        out: list[str] = []
        try:
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
                    seqs = self.model.generate(**enc, **gen_kwargs)
                    out.extend(self.tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True))
        finally:
            self.model.train(was_training)
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

    def generate(
        self,
        real_pool: Any,
        n: int,
        *,
        round_idx: int,
        seed: int,
        existing_texts: Iterable[Any] = (),
    ) -> tuple[Any, GenerationStats]:
        """Write ``n`` candidates (one per prompt) and keep the valid, new ones.

        Duplicates are checked against ``existing_texts`` (S, R, L), the real pool itself and the
        batch. Returns a :class:`datasets.Dataset` with the normalised columns (``label`` = -1,
        ``source`` = ``synthetic``) plus ``prompt``, ``generator_revision`` and ``round``.
        """
        from datasets import Dataset

        if n < 0:
            raise GenerationError(f"n: cannot generate {n} candidates (fix: pass n >= 0)")
        prompts = self.build_prompts(real_pool, n, seed=seed)
        completions = self.generate_raw(prompts, seed=seed)
        pool_keys = (dedup_key(t, tp) for t, tp in zip(real_pool["text"], real_pool["text_pair"] if self.task.is_pair else [None] * len(real_pool)) if t)
        results = self.parse_batch(completions, [*_existing_keys(existing_texts), *pool_keys])

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
