"""Oracles: who labels the items the acquisition function picks.

All share :class:`Oracle`'s one method, ``annotate(items) -> list[int | None]`` (a label index per
row of a normalised dataset, ``None`` = skipped):

* :class:`GoldOracle` — real items: the hidden gold ``label`` column.
* :class:`ModelOracle` — a fine-tuned sequence classifier (the paper's annotator for synthetic text).
* :class:`LLMOracle` — a causal LM constrained to the label set: each label's continuation
  log-likelihood is scored in one batched forward pass and the argmax wins.
* :class:`HumanOracle` — asks in the terminal (number or name, ``s`` skip, ``u`` undo, ``q`` quit).
* :class:`~signal_hf.labelstudio.LabelStudioOracle` — a labelling team in a Label Studio project
  (``labelstudio``; its own module, :mod:`signal_hf.labelstudio`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, OracleError
from .generation.config import OracleConfig
from .types import TaskSpec

__all__ = ["GoldOracle", "HumanOracle", "LLMOracle", "ModelOracle", "Oracle", "make_oracle"]

logger = logging.getLogger(__name__)


def _check_columns(items: Any, task: TaskSpec | None, who: str) -> None:
    need = ["text"] + (["text_pair"] if task is not None and task.is_pair else [])
    missing = [c for c in need if c not in items.column_names]
    if missing:
        raise OracleError(f"{who}: items lack the column(s) {missing} (has {items.column_names}; fix: pass rows with the normalised columns of signal_hf.data)")


def _pairs(items: Any, task: TaskSpec) -> tuple[list[str], list[str] | None]:
    texts = [str(t) for t in items["text"]]
    return texts, ([str(t) for t in items["text_pair"]] if task.is_pair else None)


def _load(model_fn: Callable[[], Any], tokenizer_fn: Callable[[], Any], what: str, fix: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from their loaders, a loading failure as one OracleError line."""
    try:
        return model_fn(), tokenizer_fn()
    except (OSError, ValueError) as e:
        raise OracleError(f"{what}: {e} (fix: {fix})") from e


def _given(model: Any, tokenizer: Any, who: str) -> tuple[Any, Any]:
    if tokenizer is None:
        raise OracleError(f"{who}: a model object needs its tokenizer (fix: pass tokenizer=...)")
    return model, tokenizer


class Oracle(ABC):
    """Labels items. ``name`` identifies it in results (``gold``, ``model``, ``llm``, ``human``,
    ``labelstudio``); ``asks_people`` marks the oracles whose labels come from a person, which the
    loop must only ask about items it acquires (never about probe or reward samples)."""

    name: str = "oracle"
    asks_people: bool = False

    @abstractmethod
    def annotate(self, items: Any) -> list[int | None]:
        """One label index (into ``task.label_names``) per row of ``items``; ``None`` = skipped."""

    def observe(self, labeled: Any, *, seed: int) -> None:
        """See the round's labeled set before annotating (the llm oracle draws its few-shot
        examples from it); most oracles need nothing."""


class GoldOracle(Oracle):
    """The dataset's own labels: for real items whose gold ``label`` is hidden from the learner."""

    name = "gold"

    def annotate(self, items: Any) -> list[int | None]:
        if "label" not in items.column_names:
            raise OracleError(f"gold oracle: items have no label column (has {items.column_names}; fix: the gold oracle labels real pool rows only)")
        labels = [int(x) for x in items["label"]]
        bad = [i for i, y in enumerate(labels) if y < 0]
        if bad:
            ids = items["id"] if "id" in items.column_names else list(range(len(labels)))
            shown = ", ".join(str(ids[i]) for i in bad[:5]) + (" …" if len(bad) > 5 else "")
            raise OracleError(
                f"gold oracle: {len(bad)} item(s) have no gold label (label -1), e.g. {shown} "
                "(fix: synthetic items need oracle.synthetic: model, llm, human or labelstudio)"
            )
        return list(labels)


class ModelOracle(Oracle):
    """A fine-tuned sequence classifier as annotator (argmax of its logits).

    Args:
        path_or_model: a folder with ``AutoModelForSequenceClassification`` weights and tokenizer, or
            a loaded model (then pass ``tokenizer``).
        task: the task; the model's ``config.id2label`` must list ``task.label_names`` in order.
        batch_size: items per forward pass.
        tokenizer: the tokenizer when a model object is given.
        max_length: truncation length.
    """

    name = "model"

    def __init__(self, path_or_model: str | Path | Any, task: TaskSpec, batch_size: int = 64, *, tokenizer: Any = None, max_length: int = 256):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if batch_size <= 0:
            raise ConfigError("oracle.batch_size", f"must be > 0, got {batch_size}", "e.g. 64")
        self.task, self.batch_size, self.max_length = task, batch_size, max_length
        if isinstance(path_or_model, (str, Path)):
            path = Path(path_or_model)
            if not (path / "config.json").is_file():
                raise OracleError(f"oracle.annotator_path: {str(path)!r} is not a classifier folder (no config.json) (fix: train one with `signal-hf train-annotator RECIPE` and point oracle.annotator_path at its folder)")
            self.model, self.tokenizer = _load(
                lambda: AutoModelForSequenceClassification.from_pretrained(str(path)), lambda: tokenizer or AutoTokenizer.from_pretrained(str(path)),
                f"oracle.annotator_path: cannot load a sequence classifier from {str(path)!r}", "point it at a folder saved by save_pretrained",
            )
        else:
            self.model, self.tokenizer = _given(path_or_model, tokenizer, "ModelOracle")
        cfg = self.model.config
        labels = [str(cfg.id2label.get(i, cfg.id2label.get(str(i), f"LABEL_{i}"))) for i in range(cfg.num_labels)]
        if labels != list(task.label_names):
            raise OracleError(
                f"annotator labels {labels} do not match the task's {list(task.label_names)} "
                "(fix: train the annotator on this task with `signal-hf train-annotator RECIPE`, whose config.id2label lists the task's labels in order)"
            )
        self.model.eval()

    @torch.no_grad()
    def annotate(self, items: Any) -> list[int | None]:
        _check_columns(items, self.task, "model oracle")
        texts, pairs = _pairs(items, self.task)
        device = next(self.model.parameters()).device
        out: list[int | None] = []
        for lo in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[lo : lo + self.batch_size],
                pairs[lo : lo + self.batch_size] if pairs is not None else None,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            out.extend(self.model(**enc).logits.argmax(-1).tolist())
        return out


_LLM_INSTRUCTIONS = {
    "sentiment": "Classify the sentiment of the text.",
    "topic": "Classify the topic of the news text.",
    "pair": "Decide whether the sentence contains the answer to the question.",
}


class LLMOracle(Oracle):
    """Zero/few-shot labelling by a causal LM, constrained to the label set.

    For each item the prompt (instruction, options, optional labeled examples, the item) is
    followed by each label's verbaliser; the sum of the verbaliser tokens' log-probabilities is
    computed for all (item, label) pairs of a batch in one forward pass, and the argmax is the
    label. With a chat template (instruct models) the prompt is a user turn and the verbaliser is
    the assistant's answer; otherwise it is ``…\\nLabel:`` + `` <verbaliser>``.

    Args:
        model_name_or_path: a folder, Hub id or ``bundled:…`` causal LM, or a loaded model (then
            pass ``tokenizer``).
        task: the task.
        few_shot: labeled rows (normalised columns) to draw the ``k_shot`` examples from.
        k_shot: examples shown before every item (the same seeded draw for all items).
        verbalizers: words scored per label, in label order (default: the label names).
        batch_size: items per forward pass (× number of labels sequences).
        tokenizer: the tokenizer when a model object is given.
        seed: seed of the few-shot draw.
        length_normalize: score by mean instead of summed token log-probability.
    """

    name = "llm"

    def __init__(
        self,
        model_name_or_path: str | Any,
        task: TaskSpec,
        few_shot: Any = None,
        k_shot: int = 0,
        *,
        verbalizers: Sequence[str] | None = None,
        batch_size: int = 8,
        tokenizer: Any = None,
        seed: int = 0,
        length_normalize: bool = False,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .bundled import resolve_model_path

        self.task, self.batch_size, self.length_normalize = task, batch_size, length_normalize
        if batch_size <= 0:
            raise ConfigError("oracle.batch_size", f"must be > 0, got {batch_size}", "e.g. 8")
        if isinstance(model_name_or_path, str):
            path = resolve_model_path(model_name_or_path, "oracle.llm_model_name_or_path")
            self.model, self.tokenizer = _load(
                lambda: AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), lambda: tokenizer or AutoTokenizer.from_pretrained(path),
                f"oracle.llm_model_name_or_path: cannot load causal LM {model_name_or_path!r}", "give a local folder, Hub id or bundled:gemma3-270m / bundled:smollm2-135m",
            )
        else:
            self.model, self.tokenizer = _given(model_name_or_path, tokenizer, "LLMOracle")
        self.model.eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.verbalizers = list(verbalizers) if verbalizers else list(task.label_names)
        if len(self.verbalizers) != task.num_labels or len(set(self.verbalizers)) != len(self.verbalizers):
            raise ConfigError("oracle.llm_verbalizers", f"needs {task.num_labels} distinct words (one per label {list(task.label_names)}), got {self.verbalizers}", "list one word per label, in label order, or leave it empty")
        if task.task_type not in _LLM_INSTRUCTIONS:
            raise ConfigError("data.task_type", f"the llm oracle has no instruction for task type {task.task_type!r}", "use sentiment, topic or pair")
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        if k_shot < 0:
            raise ConfigError("oracle.llm_k_shot", f"must be >= 0, got {k_shot}", "e.g. 0 (zero-shot) or 4")
        self.k_shot = k_shot
        # Without rows yet, the shots are drawn when the loop shows the round's labeled set (observe).
        self.shots = self._draw_shots(few_shot, k_shot, seed) if few_shot is not None or k_shot == 0 else None
        # Continuations are tokenised alone and appended, so every prompt shares their tokens.
        lead = "" if self.chat else " "
        self._cont_ids = [self.tokenizer.encode(lead + v, add_special_tokens=False) for v in self.verbalizers]
        if any(len(c) == 0 for c in self._cont_ids):
            raise ConfigError("oracle.llm_verbalizers", "a verbaliser encodes to no tokens", "use non-empty words")

    def observe(self, labeled: Any, *, seed: int) -> None:
        """Draw this round's ``k_shot`` examples from the labeled set (seeded: a resumed run draws alike)."""
        if self.k_shot:
            self.shots = self._draw_shots(labeled, self.k_shot, seed)

    def _draw_shots(self, few_shot: Any, k_shot: int, seed: int) -> list[tuple[str, str | None, int]]:
        if k_shot == 0:
            return []
        _check_columns(few_shot, self.task, "llm oracle few_shot")
        labels = [int(y) for y in few_shot["label"]]
        usable = [i for i, y in enumerate(labels) if 0 <= y < self.task.num_labels]
        if len(usable) < k_shot:
            raise OracleError(f"LLMOracle: k_shot={k_shot} but few_shot has only {len(usable)} labeled rows (fix: lower oracle.llm_k_shot)")
        pick = torch.randperm(len(usable), generator=torch.Generator().manual_seed(seed))[:k_shot].tolist()
        texts, pairs = _pairs(few_shot, self.task)
        return [(texts[usable[i]], pairs[usable[i]] if pairs else None, labels[usable[i]]) for i in pick]

    def _render_item(self, text: str, pair: str | None) -> str:
        if self.task.is_pair:
            from .generation.prompts import pair_field_names

            a, b = pair_field_names(self.task)
            return f"{a.capitalize()}: {text}\n{b.capitalize()}: {pair}"
        return f"Text: {text}"

    def prompt(self, text: str, pair: str | None = None) -> str:
        """The prompt the verbalisers are appended to."""
        if self.shots is None:
            raise OracleError(f"LLMOracle: k_shot={self.k_shot} but no labeled rows to draw examples from (fix: pass few_shot=<labeled dataset>, call observe(labeled, seed=...), or set oracle.llm_k_shot: 0)")
        head = f"{_LLM_INSTRUCTIONS[self.task.task_type]} Options: {', '.join(self.verbalizers)}."
        shots = "".join(f"{self._render_item(t, p)}\nLabel: {self.verbalizers[y]}\n\n" for t, p, y in self.shots)
        item = self._render_item(text, pair)
        if self.chat:
            content = f"{head}\n\n{shots}{item}\n\nAnswer with one option only."
            return self.tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
        return f"{head}\n\n{shots}{item}\nLabel:"

    @torch.no_grad()
    def scores(self, items: Any) -> torch.Tensor:
        """``(n, C)`` log-likelihood of each label's verbaliser after each item's prompt."""
        _check_columns(items, self.task, "llm oracle")
        texts, pairs = _pairs(items, self.task)
        C = self.task.num_labels
        device = next(self.model.parameters()).device
        cont_len = torch.tensor([len(c) for c in self._cont_ids])
        L = int(cont_len.max())
        out = []
        for lo in range(0, len(texts), self.batch_size):
            prompts = [self.prompt(t, pairs[lo + i] if pairs else None) for i, t in enumerate(texts[lo : lo + self.batch_size])]
            p_ids = self.tokenizer(prompts, add_special_tokens=not self.chat)["input_ids"]
            seqs = [p + c for p in p_ids for c in self._cont_ids]  # item-major: row = item * C + label
            # Left padding puts every continuation at the end, so only the last L+1 logits are needed
            # (Gemma's 262k vocabulary makes full logits costly).
            enc = self.tokenizer.pad({"input_ids": seqs}, padding=True, padding_side="left", return_tensors="pt")
            ids, mask = enc["input_ids"], enc["attention_mask"]
            T = ids.shape[1]
            # positions that skip the padding (absolute-position models; RoPE is shift-invariant anyway)
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(
                input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=position_ids.to(device), logits_to_keep=L + 1
            ).logits[:, :L].float()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[:, T - L :].to(device).unsqueeze(-1)).squeeze(-1).cpu()
            lens = cont_len.repeat(len(prompts))  # (rows,)
            in_cont = torch.arange(L).unsqueeze(0) >= (L - lens).unsqueeze(1)
            total = (logp * in_cont).sum(-1)
            if self.length_normalize:
                total = total / lens
            out.append(total.view(len(prompts), C))
        return torch.cat(out) if out else torch.zeros(0, C)

    def annotate(self, items: Any) -> list[int | None]:
        return self.scores(items).argmax(-1).tolist()


class HumanOracle(Oracle):
    """Asks a person in the terminal.

    For each item it prints the text (both fields for pair tasks) and the numbered labels, then
    reads an answer: a label number (1-based) or name (case-insensitive), ``s`` to skip (None),
    ``u`` to go back one item and relabel it, ``q`` to stop (this and all remaining items None).
    Anything else is reported and asked again. End of input counts as ``q``.

    Args:
        task: the task (label names, pair fields).
        input_fn: reads one answer given a prompt string (``input``; tests pass a scripted one).
        print_fn: shows text (``print``).
    """

    name = "human"
    asks_people = True

    def __init__(self, task: TaskSpec, input_fn: Callable[[str], str] = input, print_fn: Callable[..., None] = print):
        self.task, self.input_fn, self.print_fn = task, input_fn, print_fn

    def _parse(self, answer: str) -> int | str | None:
        a = answer.strip()
        if a.lower() in ("s", "u", "q"):
            return a.lower()
        if a.isdigit() and 1 <= int(a) <= self.task.num_labels:
            return int(a) - 1
        names = [n.lower() for n in self.task.label_names]
        if a.lower() in names:
            return names.index(a.lower())
        return None

    def annotate(self, items: Any) -> list[int | None]:
        _check_columns(items, self.task, "human oracle")
        texts, pairs = _pairs(items, self.task)
        n = len(texts)
        labels: list[int | None] = [None] * n
        options = "  ".join(f"{i + 1}) {name}" for i, name in enumerate(self.task.label_names))
        i = 0
        while i < n:
            self.print_fn(f"\n[{i + 1}/{n}]")
            if self.task.is_pair:
                from .generation.prompts import pair_field_names

                a, b = pair_field_names(self.task)
                self.print_fn(f"{a.capitalize()}: {texts[i]}\n{b.capitalize()}: {pairs[i]}")
            else:
                self.print_fn(texts[i])
            self.print_fn(options)
            while True:
                try:
                    answer = self.input_fn("label (number or name; s skip, u undo, q quit): ")
                except EOFError:
                    answer = "q"
                choice = self._parse(answer)
                if choice is None:
                    self.print_fn(f"not understood: {answer!r}; type 1-{self.task.num_labels}, a label name, s, u or q")
                    continue
                break
            if choice == "q":
                labels[i:] = [None] * (n - i)
                logger.info("human oracle stopped at item %d of %d", i + 1, n)
                return labels
            if choice == "u":
                if i == 0:
                    self.print_fn("nothing to undo")
                    continue
                i -= 1
                labels[i] = None
                continue
            labels[i] = None if choice == "s" else int(choice)
            i += 1
        return labels


def make_oracle(kind: str, task: TaskSpec, config: OracleConfig, *, few_shot: Any = None) -> Oracle:
    """Build the oracle ``kind`` (``gold``, ``model``, ``llm``, ``human`` or ``labelstudio``) from the ``oracle`` section.

    ``few_shot`` (labeled rows) feeds the llm oracle's ``llm_k_shot`` examples; without it they are
    drawn from each round's labeled set (:meth:`Oracle.observe`).
    """
    if kind == "gold":
        return GoldOracle()
    if kind == "model":
        if not config.annotator_path:
            raise ConfigError("oracle.annotator_path", "the model oracle needs a fine-tuned annotator", "train one with `signal-hf train-annotator RECIPE` and set oracle.annotator_path to its folder")
        return ModelOracle(config.annotator_path, task, batch_size=config.batch_size)
    if kind == "llm":
        return LLMOracle(
            config.llm_model_name_or_path, task, few_shot=few_shot, k_shot=config.llm_k_shot,
            verbalizers=config.llm_verbalizers or None, batch_size=max(1, config.batch_size // max(task.num_labels, 1)),
        )
    if kind == "human":
        return HumanOracle(task)
    if kind == "labelstudio":
        from .labelstudio import LabelStudioOracle

        return LabelStudioOracle(
            task, url=config.labelstudio_url, api_key_env=config.labelstudio_api_key_env, project=config.labelstudio_project,
            poll_interval=config.labelstudio_poll_interval, timeout=config.labelstudio_timeout,
        )
    raise ConfigError("oracle.synthetic", f"unknown oracle {kind!r}", "use gold, model, llm, human or labelstudio")
