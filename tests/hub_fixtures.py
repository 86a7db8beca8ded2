"""Shared helpers of the store tests: small real datasets and a tiny real peft LoRA adapter."""

from __future__ import annotations

from pathlib import Path

from datasets import ClassLabel, Dataset, Features, List, Value

FEATURES = Features(
    {
        "id": Value("int64"),
        "text": Value("string"),
        "label": ClassLabel(names=["negative", "positive"]),
        "embedding": List(Value("float32")),
    }
)


def round_datasets(round_idx: int, n_labeled: int = 3, with_synthetic: bool = True) -> dict[str, Dataset]:
    """Pools of one AL round: labeled (a shuffled selection, so it carries an indices mapping),
    a real pool, and a synthetic pool that is empty unless ``with_synthetic``."""
    rows = 8
    base = Dataset.from_dict(
        {
            "id": list(range(rows)),
            "text": [f"round {round_idx} text {i} é" for i in range(rows)],
            "label": [i % 2 for i in range(rows)],
            "embedding": [[float(i), round_idx + 0.5] for i in range(rows)],
        },
        features=FEATURES,
    )
    labeled = base.shuffle(seed=round_idx).select(range(n_labeled))
    real_pool = base.select(range(n_labeled, rows))
    synthetic = Dataset.from_dict(
        {
            "id": [100 + round_idx],
            "text": [f"synthetic for round {round_idx}"],
            "label": [1],
            "embedding": [[0.25, 0.75]],
        },
        features=FEATURES,
    )
    return {
        "labeled": labeled,
        "real_pool": real_pool,
        "synthetic_pool": synthetic if with_synthetic else synthetic.select([]),
    }


def tiny_base_model(folder: Path) -> Path:
    """A randomly initialised 1-layer BERT classifier saved to ``folder`` (no download)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32, num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def tiny_lora_adapter(base_dir: Path, folder: Path, seed: int) -> dict:
    """Save a LoRA adapter with random (non-zero) A and B matrices; return its weights."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(base_dir)
    # init_lora_weights=False: B is random too, so two adapters and a broken load all differ.
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(folder)
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def lora_weights_of(peft_model) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def assert_same_datasets(got: dict[str, Dataset], expected: dict[str, Dataset]) -> None:
    assert sorted(got) == sorted(expected)
    for name, ds in expected.items():
        assert got[name].features == ds.features, name
        assert got[name].num_rows == ds.num_rows, name
        assert got[name].to_dict() == ds.to_dict(), name


def assert_same_files(a: Path, b: Path, ignore: frozenset[str] = frozenset()) -> None:
    """Both folders hold the same relative file paths (less ``ignore``) with byte-identical content."""
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    files_a = [f for f in files_a if f not in ignore]
    files_b = [f for f in files_b if f not in ignore]
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
