"""``classifier.backend: setfit`` — SetFit's contrastive fine-tuning of the sentence encoder + a head.

The body is tuned with the real ``setfit`` package (``setfit.Trainer.train_embeddings``: pairs of
labeled sentences, cosine-similarity loss), then the same :class:`LogisticHead` as the ``probe``
backend is fitted on the tuned body's embeddings. SetFit's own scikit-learn head is not used
because it drops classes missing from a small labeled set. Φ is the tuned body's normalised
embedding, the head's input. Pair tasks join the two texts with the tokenizer's separator.
"""

from __future__ import annotations

import logging
import os

import torch
from datasets import Dataset

from ..bundled import resolve_model_path
from ..config import ClassifierConfig
from ..errors import ConfigError
from ..types import TaskSpec
from .base import HeadOnEmbeddings
from .head import LogisticHead, fit_head

__all__ = ["SetFitClassifier"]


def _require_setfit():
    try:
        import setfit
    except ImportError:
        raise ConfigError("classifier.backend", "setfit needs the setfit package", "pip install -e '.[setfit]' (or `make install`)") from None
    return setfit


class SetFitClassifier(HeadOnEmbeddings):
    """SetFit body tuning (``setfit_iterations`` pairs per sentence, ``setfit_epochs``) + a logistic head."""

    def __init__(self, config: ClassifierConfig, task: TaskSpec, *, output_dir: str | os.PathLike, seed: int = 0, eval_dataset: Dataset | None = None):
        self.config = config
        self.task = task
        self.seed = seed
        self.output_dir = str(output_dir)
        self.eval_dataset = eval_dataset
        self.head: LogisticHead | None = None
        self.body = None

    def _texts(self, dataset: Dataset) -> list[str]:
        texts = dataset["text"][:]
        if "text_pair" not in dataset.column_names:
            return texts
        sep = self.body.tokenizer.sep_token or "\n"
        return [f"{t} {sep} {p}" for t, p in zip(texts, dataset["text_pair"][:])]

    def _embed(self, dataset: Dataset) -> torch.Tensor:
        if len(dataset) == 0:
            return torch.zeros(0, self.body.get_sentence_embedding_dimension())
        vecs = self.body.encode(self._texts(dataset), batch_size=self.config.per_device_eval_batch_size, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
        return vecs.float().cpu()

    def fit(self, labeled: Dataset) -> "SetFitClassifier":
        setfit = _require_setfit()
        from transformers import set_seed

        path = resolve_model_path(self.config.model_name_or_path, "classifier.model_name_or_path")
        set_seed(self.seed)
        logging.getLogger("setfit.modeling").setLevel(logging.ERROR)  # "model_head.pkl not found": ours is fitted below
        model = setfit.SetFitModel.from_pretrained(path)
        self.body = model.model_body
        labels = labeled["label"][:]
        args = setfit.TrainingArguments(
            output_dir=self.output_dir, batch_size=self.config.per_device_train_batch_size,
            num_epochs=self.config.setfit_epochs, num_iterations=self.config.setfit_iterations,
            body_learning_rate=self.config.learning_rate, max_length=self.config.max_length,
            warmup_proportion=self.config.warmup_ratio, seed=self.seed, report_to="none",
            show_progress_bar=False, save_strategy="no", logging_strategy="no",
        )
        if len(set(labels)) >= 2:  # contrastive pairs need two classes; one class: the head alone
            trainer = setfit.Trainer(model=model, args=args)
            # A round's training is one phase of the experiment's own progress display.
            from transformers import PrinterCallback, ProgressCallback

            trainer.st_trainer.args.disable_tqdm = True
            for cb in (PrinterCallback, ProgressCallback):
                trainer.st_trainer.remove_callback(cb)
            logging.getLogger("setfit").setLevel(logging.WARNING)
            trainer.train_embeddings(self._texts(labeled), labels, args=args)
        self.body.eval()
        self.head = fit_head(self.config, self.task.num_labels, self._embed(labeled), torch.tensor(labels))
        return self
