"""The target classifier M: a :class:`transformers.Trainer` subclass re-trained each round.

:class:`ClassifierTrainer` trains a sequence classifier from the pretrained checkpoint on the
labeled set, evaluates accuracy with ``evaluate`` and runs the single inference pass per round
that every query strategy shares (:meth:`ClassifierTrainer.pool_outputs`): class probabilities,
L2-normalised pooled embeddings Φ (the input of the classification head) and, when asked, BADGE
gradient embeddings.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
import numpy as np
import torch
from datasets import Dataset
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedModel,
    PrinterCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from .bundled import resolve_model_path
from .config import ClassifierConfig
from .errors import ConfigError
from .types import PoolOutputs, TaskSpec

__all__ = [
    "ClassifierTrainer",
    "fit_classifier",
    "order_for_eval",
    "load_classifier",
    "load_tokenizer",
    "accuracy_metric",
    "PretrainedEncoder",
]

logger = logging.getLogger(__name__)

_METRIC_DIR = Path(__file__).parent / "metrics" / "accuracy"
_TEXT_COLUMNS = ("id", "text", "text_pair", "source", "prompt", "generator_revision", "round")


def accuracy_metric():
    """The ``evaluate`` accuracy metric, loaded from the script shipped with the package (offline)."""
    import evaluate

    return evaluate.load(str(_METRIC_DIR))


def load_tokenizer(cfg: ClassifierConfig):
    path = resolve_model_path(cfg.model_name_or_path, "classifier.model_name_or_path")
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ConfigError("classifier.model_name_or_path", f"cannot load a tokenizer from {path!r} ({str(e).splitlines()[0]})", "give a local folder, a Hub id, or bundled:minilm") from None


def load_classifier(cfg: ClassifierConfig, task: TaskSpec, seed: int) -> PreTrainedModel:
    """A fresh classifier from the pretrained checkpoint; the new head is initialised under ``seed``."""
    path = resolve_model_path(cfg.model_name_or_path, "classifier.model_name_or_path")
    set_seed(seed)
    id2label = dict(enumerate(task.label_names))
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=task.num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()}
        )
    except OSError as e:
        raise ConfigError("classifier.model_name_or_path", f"cannot load {path!r} ({str(e).splitlines()[0]})", "give a local folder, a Hub id, or bundled:minilm") from None


def encode(dataset: Dataset, tokenizer, max_length: int) -> Dataset:
    """Tokenise the normalised ``text`` (and ``text_pair``) columns; keep ``label`` as ``labels``."""

    def tok(batch):
        pair = batch.get("text_pair") if "text_pair" in batch else None
        return tokenizer(batch["text"], pair, truncation=True, max_length=max_length)

    drop = [c for c in dataset.column_names if c in _TEXT_COLUMNS]
    out = dataset.map(tok, batched=True, remove_columns=drop, desc=None)
    if "label" in out.column_names:
        out = out.rename_column("label", "labels")
    return out


def _head_input_hook(model: PreTrainedModel):
    """Find the final linear layer of the classification head; its input is the pooled representation h."""
    head = getattr(model, "classifier", None) or getattr(model, "score", None)
    if isinstance(head, torch.nn.Linear):
        return head
    if head is not None and isinstance(getattr(head, "out_proj", None), torch.nn.Linear):
        return head.out_proj  # RoBERTa-style heads
    return None


class ClassifierTrainer(Trainer):
    """Trainer for the target classifier, configured from a :class:`ClassifierConfig`.

    Args:
        config: the recipe's classifier section.
        task: the task (label names, single text or pair).
        output_dir: scratch folder for the Trainer (no checkpoints are saved).
        seed: seeds the head initialisation, data order and dropout.
        train_dataset: normalised labeled set (``text``/``text_pair``/``label``); tokenised here.
        eval_dataset: normalised test set.
        model / tokenizer: reuse already-loaded objects instead of loading from the checkpoint.
    """

    def __init__(
        self,
        config: ClassifierConfig,
        task: TaskSpec,
        *,
        output_dir: str | os.PathLike,
        seed: int = 0,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | None = None,
        model: PreTrainedModel | None = None,
        tokenizer=None,
        disable_tqdm: bool = True,
    ):
        self.config = config
        self.task = task
        tokenizer = tokenizer or load_tokenizer(config)
        model = model or load_classifier(config, task, seed)
        extra = dict(config.training_args)
        args = TrainingArguments(
            output_dir=str(output_dir),
            num_train_epochs=config.num_train_epochs,
            max_steps=config.max_steps,
            learning_rate=config.learning_rate,
            per_device_train_batch_size=config.per_device_train_batch_size,
            per_device_eval_batch_size=config.per_device_eval_batch_size,
            weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio,
            seed=seed,
            data_seed=seed,
            save_strategy="no",
            eval_strategy="no",
            report_to=extra.pop("report_to", "none"),
            logging_strategy="no",
            disable_tqdm=disable_tqdm,
            dataloader_num_workers=0,
            use_cpu=not torch.cuda.is_available(),
            **extra,
        )
        self._metric = accuracy_metric()
        super().__init__(
            model=model,
            args=args,
            train_dataset=encode(train_dataset, tokenizer, config.max_length) if train_dataset is not None else None,
            eval_dataset=encode(eval_dataset, tokenizer, config.max_length) if eval_dataset is not None else None,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=self._compute_accuracy,
        )
        if disable_tqdm:
            # Per-round trainings are short; the experiment's own progress bar and round log lines
            # replace the Trainer's metric dict prints.
            self.remove_callback(PrinterCallback)

    def _compute_accuracy(self, eval_pred) -> dict[str, float]:
        logits, labels = eval_pred
        preds = np.asarray(logits).argmax(-1)
        return self._metric.compute(predictions=preds.tolist(), references=np.asarray(labels).tolist())

    # ------------------------------------------------------------ inference

    @torch.no_grad()
    def pool_outputs(self, dataset: Dataset, *, grad_embeddings: bool = False) -> PoolOutputs:
        """One inference pass over ``dataset`` (normalised columns): probabilities, Φ, BADGE embeddings.

        Runs on every process identically (no gather), so all ranks select the same items.
        """
        model = self.model.eval()
        device = next(model.parameters()).device
        if len(dataset) == 0:
            h = model.config.hidden_size
            return PoolOutputs(
                probs=torch.zeros(0, self.task.num_labels),
                embeddings=torch.zeros(0, h),
                grad_embeddings=torch.zeros(0, self.task.num_labels * h) if grad_embeddings else None,
            )
        head = _head_input_hook(model)
        captured: list[torch.Tensor] = []
        handle = head.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach())) if head is not None else None
        enc = encode(dataset.select_columns([c for c in ("text", "text_pair") if c in dataset.column_names]), self.processing_class, self.config.max_length)
        collate = DataCollatorWithPadding(self.processing_class)
        bs = self.config.per_device_eval_batch_size
        probs, hidden = [], []
        try:
            for start in range(0, len(enc), bs):
                batch = collate([enc[i] for i in range(start, min(start + bs, len(enc)))])
                batch = {k: v.to(device) for k, v in batch.items()}
                out = model(**batch, output_hidden_states=head is None)
                probs.append(torch.softmax(out.logits.float(), -1).cpu())
                hidden.append((captured.pop() if head is not None else out.hidden_states[-1][:, 0]).float().cpu())
        finally:
            if handle is not None:
                handle.remove()
        p = torch.cat(probs)
        h = torch.cat(hidden)
        emb = torch.nn.functional.normalize(h, dim=-1)
        g = None
        if grad_embeddings:
            from .acquisition import badge_gradient_embeddings

            g = badge_gradient_embeddings(p, h)
        return PoolOutputs(probs=p, embeddings=emb, grad_embeddings=g)

    def accuracy(self, dataset: Dataset | None = None) -> float:
        """Accuracy on ``dataset`` (default: the eval set) computed with ``evaluate``."""
        ds = self.eval_dataset if dataset is None else encode(dataset, self.processing_class, self.config.max_length)
        metrics = self.evaluate(eval_dataset=ds)
        return float(metrics["eval_accuracy"])


def order_for_eval(test: Dataset) -> Dataset:
    """``test`` sorted by text length, the order every evaluation in a run uses.

    Accuracy does not depend on row order, but length-sorted rows pad far less per eval batch, and
    the same order (hence the same batches and padding) keeps a re-evaluation bit-for-bit comparable.
    """
    lengths = [len(t) for t in test["text"]]
    if "text_pair" in test.column_names:
        lengths = [n + len(p or "") for n, p in zip(lengths, test["text_pair"])]
    # sorted() is stable: rows of equal length keep their file order.
    return test.select(sorted(range(len(test)), key=lengths.__getitem__))


def fit_classifier(
    config: ClassifierConfig,
    task: TaskSpec,
    labeled: Dataset,
    test: Dataset | None,
    *,
    output_dir: str | os.PathLike,
    seed: int,
) -> ClassifierTrainer:
    """Train the classifier from its pretrained checkpoint on ``labeled``, as each round does.

    Rows are sorted by id first, so the same labeled set (whatever order it was stored or
    acquired in) gives the same model for the same seed. ``test`` is used as given; pass it
    through :func:`order_for_eval` to evaluate as a run does.
    """
    trainer = ClassifierTrainer(config, task, output_dir=output_dir, seed=seed, train_dataset=labeled.sort("id"), eval_dataset=test)
    trainer.train()
    return trainer


class PretrainedEncoder:
    """The *pretrained* encoder (no fine-tuning) for BERT-KM: L2-normalised mean-pooled embeddings.

    Embeddings are cached by row id, so each text is encoded once per run.
    """

    def __init__(self, cfg: ClassifierConfig):
        path = resolve_model_path(cfg.model_name_or_path, "classifier.model_name_or_path")
        self.tokenizer = load_tokenizer(cfg)
        self.model = AutoModel.from_pretrained(path).eval()
        self.max_length = cfg.max_length
        self.batch_size = cfg.per_device_eval_batch_size
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(self, dataset: Dataset) -> torch.Tensor:
        ids = dataset["id"][:]
        missing = [i for i, key in enumerate(ids) if key not in self._cache]
        if missing:
            sub = dataset.select(missing)
            sub_ids = sub["id"][:]
            texts, pairs = sub["text"][:], sub["text_pair"][:] if "text_pair" in sub.column_names else None
            for start in range(0, len(sub), self.batch_size):
                end = start + self.batch_size
                batch = self.tokenizer(texts[start:end], pairs[start:end] if pairs else None, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
                for key, vec in zip(sub_ids[start:end], torch.nn.functional.normalize(pooled, dim=-1)):
                    self._cache[key] = vec
        if not ids:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.stack([self._cache[k] for k in ids])
