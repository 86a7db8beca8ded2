"""``classifier.backend: finetune`` — a :class:`transformers.Trainer` subclass re-trained each round.

:class:`ClassifierTrainer` fine-tunes the encoder and a linear head from the pretrained checkpoint
on the labeled set, for a step budget that scales with |L| (:meth:`ClassifierConfig.train_steps`),
evaluates accuracy with ``evaluate`` and runs the single inference pass per round that every query
strategy shares (:meth:`ClassifierTrainer.pool_outputs`): class probabilities, L2-normalised pooled
embeddings Φ (the input of the classification head) and, when asked, BADGE gradient embeddings and
BALD's MC-dropout passes (the network's own dropout, active at inference).

The head reads the pooling the checkpoint was trained with (``classifier.pooling``): mean pooling
for the bundled sentence-transformers encoders, BERT's [CLS] pooler for a plain BERT (the paper).
"""

from __future__ import annotations

import logging
import os

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
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from ..bundled import resolve_model_path
from ..config import ClassifierConfig
from ..encoder import resolve_pooling
from ..errors import ConfigError
from ..types import MCDropout, PoolOutputs, TaskSpec
from .base import Classifier, accuracy_metric, outputs_from_logits

__all__ = ["ClassifierTrainer", "MeanPooledClassifier", "load_classifier", "load_tokenizer"]

logger = logging.getLogger(__name__)

_TEXT_COLUMNS = ("id", "text", "text_pair", "source", "prompt", "generator_revision", "round")


class MeanPooledClassifier(torch.nn.Module):
    """Encoder + mean pooling over non-padding tokens + a linear head (a sentence-transformers
    checkpoint's own representation, which its [CLS] pooler was never trained to give)."""

    def __init__(self, encoder: PreTrainedModel, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **_):
        from transformers.modeling_outputs import SequenceClassifierOutput

        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        logits = self.classifier(self.dropout(pooled))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def load_tokenizer(cfg: ClassifierConfig):
    path = resolve_model_path(cfg.model_name_or_path, "classifier.model_name_or_path")
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ConfigError("classifier.model_name_or_path", f"cannot load a tokenizer from {path!r} ({str(e).splitlines()[0]})", "give a local folder, a Hub id, or bundled:minilm") from None


def load_classifier(cfg: ClassifierConfig, task: TaskSpec, seed: int) -> torch.nn.Module:
    """A fresh classifier from the pretrained checkpoint; the new head is initialised under ``seed``."""
    path = resolve_model_path(cfg.model_name_or_path, "classifier.model_name_or_path")
    set_seed(seed)
    id2label = dict(enumerate(task.label_names))
    try:
        if resolve_pooling(path, cfg.pooling) == "mean":
            encoder = AutoModel.from_pretrained(path)
            set_seed(seed)  # the head's init must not depend on what loading consumed
            return MeanPooledClassifier(encoder, task.num_labels)
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


_ENCODED_TESTS: dict[tuple, Dataset] = {}


def _encoded_test(dataset: Dataset, tokenizer, max_length: int) -> Dataset:
    """The tokenised test set, once per run: every round evaluates the same rows."""
    key = (dataset._fingerprint, tokenizer.name_or_path, max_length)
    if key not in _ENCODED_TESTS:
        if len(_ENCODED_TESTS) >= 4:
            _ENCODED_TESTS.clear()
        _ENCODED_TESTS[key] = encode(dataset, tokenizer, max_length)
    return _ENCODED_TESTS[key]


def _head_input_hook(model: PreTrainedModel):
    """Find the final linear layer of the classification head; its input is the pooled representation h."""
    head = getattr(model, "classifier", None) or getattr(model, "score", None)
    if isinstance(head, torch.nn.Linear):
        return head
    if head is not None and isinstance(getattr(head, "out_proj", None), torch.nn.Linear):
        return head.out_proj  # RoBERTa-style heads
    return None


#: Modules whose training mode changes more than dropout: running statistics would be updated.
_STATEFUL_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.instancenorm._InstanceNorm)


def _dropout_mode(model: torch.nn.Module) -> None:
    """Training mode for dropout, evaluation mode for stateful normalisation.

    Not only the ``nn.Dropout`` modules: transformers' attention passes its dropout rate to the
    attention function gated by the attention module's own ``training`` flag (BERT:
    ``dropout=0.0 if not self.training else self.dropout.p``), so enabling the dropout modules
    alone would leave the attention-probability dropout the network was trained with off.
    """
    model.train()
    for m in model.modules():
        if isinstance(m, _STATEFUL_NORMS):
            m.eval()


def _reads_logs(callback) -> bool:
    """Whether a TrainerCallback (class or instance) overrides ``on_log``."""
    cls = callback if isinstance(callback, type) else type(callback)
    return cls.on_log is not TrainerCallback.on_log


class ClassifierTrainer(Trainer, Classifier):
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
        callbacks: list | None = None,
    ):
        self.config = config
        self.task = task
        tokenizer = tokenizer or load_tokenizer(config)
        model = model or load_classifier(config, task, seed)
        extra = dict(config.training_args)
        args = TrainingArguments(
            output_dir=str(output_dir),
            # The budget scales with |L|: epochs, floored and capped in steps (ClassifierConfig).
            max_steps=config.train_steps(len(train_dataset)) if train_dataset is not None else 1,
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
            # Logs are built only when a callback reads them (a tracker); the loop's step progress does not.
            logging_strategy=extra.pop("logging_strategy", "steps" if any(_reads_logs(cb) for cb in callbacks or ()) else "no"),
            logging_steps=extra.pop("logging_steps", 1),
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
            eval_dataset=_encoded_test(eval_dataset, tokenizer, config.max_length) if eval_dataset is not None else None,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=self._compute_accuracy,
            callbacks=callbacks,
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
    def pool_outputs(self, dataset: Dataset, *, grad_embeddings: bool = False, mc_dropout: MCDropout | None = None) -> PoolOutputs:
        """One inference pass over ``dataset`` (normalised columns): probabilities, Φ, BADGE embeddings,
        and with ``mc_dropout`` its ``samples`` passes with the network's dropout active
        (:meth:`_mc_dropout_logits`).

        Runs on every process identically (no gather), so all ranks select the same items.
        """
        model = self.model.eval()
        device = next(model.parameters()).device
        if len(dataset) == 0:
            empty = torch.zeros(0, self.task.num_labels), torch.zeros(0, model.config.hidden_size)
            mc = None if mc_dropout is None else torch.zeros(mc_dropout.samples, 0, self.task.num_labels)
            return outputs_from_logits(*empty, grad_embeddings=grad_embeddings, mc_logits=mc)
        head = _head_input_hook(model)
        captured: list[torch.Tensor] = []
        handle = head.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach())) if head is not None else None
        enc = encode(dataset.select_columns([c for c in ("text", "text_pair") if c in dataset.column_names]), self.processing_class, self.config.max_length)
        collate = DataCollatorWithPadding(self.processing_class)
        bs = self.config.per_device_eval_batch_size

        def batches():
            for start in range(0, len(enc), bs):
                yield {k: v.to(device) for k, v in collate([enc[i] for i in range(start, min(start + bs, len(enc)))]).items()}

        logits, hidden = [], []
        try:
            for batch in batches():
                out = model(**batch, output_hidden_states=head is None)
                logits.append(out.logits.float().cpu())
                hidden.append((captured.pop() if head is not None else out.hidden_states[-1][:, 0]).float().cpu())
        finally:
            if handle is not None:
                handle.remove()
        mc = None if mc_dropout is None else self._mc_dropout_logits(batches, mc_dropout)
        return outputs_from_logits(torch.cat(logits), torch.cat(hidden), grad_embeddings=grad_embeddings, mc_logits=mc)

    def _mc_dropout_logits(self, batches, mc: MCDropout) -> torch.Tensor:
        """``(T, n, C)`` logits of ``T = mc.samples`` passes with the network's dropout active at the
        rates it was trained with (MC dropout), seeded with ``mc.seed`` without touching the global
        random state; the model is back in evaluation mode afterwards. ``mc.rate`` does not apply."""
        model = self.model
        device = next(model.parameters()).device
        passes: list[list[torch.Tensor]] = [[] for _ in range(mc.samples)]
        devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(mc.seed))
            _dropout_mode(model)
            try:
                for batch in batches():
                    for t in range(mc.samples):
                        passes[t].append(model(**batch).logits.float().cpu())
            finally:
                model.eval()
        return torch.stack([torch.cat(p) for p in passes])

    def accuracy(self, dataset: Dataset | None = None) -> float:
        """Accuracy on ``dataset`` (default: the eval set) computed with ``evaluate``."""
        ds = self.eval_dataset if dataset is None else encode(dataset, self.processing_class, self.config.max_length)
        metrics = self.evaluate(eval_dataset=ds)
        return float(metrics["eval_accuracy"])
