"""Recipes: parsing, overrides and one clear error per bad input, before any model loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from signal_hf.config import ExperimentConfig, config_from_dict, load_recipe, parse_overrides
from signal_hf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "accelerate_configs" not in p.parts)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_recipe_validates(path):
    cfg = load_recipe(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.acquisition.strategies


def test_paper_recipes_use_paper_settings():
    for name in ("sst2", "ag_news", "qnli"):
        cfg = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        assert cfg.classifier.model_name_or_path == "bert-base-uncased"
        assert cfg.data.pool_fraction in (0.001, 0.01)
        assert cfg.loop.step_fraction == pytest.approx(0.1)


def write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, field, hint",
    [
        ("acquisition: {k: 0}", "acquisition.k", "> 0"),
        ("acquisition: {kk: 3}", "acquisition.kk", "did you mean `acquisition.k`"),
        ("loop: {step_fraction: 0}", "loop.step_fraction", "> 0"),
        ("loop: {step_fraction: -0.1}", "loop.step_fraction", "> 0"),
        ("loop: {seeds: [1, 1]}", "loop.seeds", "twice"),
        ("loop: {seeds: [a]}", "loop.seeds[0]", "integer"),
        ("data: {pool_fraction: 0}", "data.pool_fraction", "(0, 1]"),
        ("data: {task_type: pair}", "data.text_pair_column", "two text columns"),
        ("classifier: {learning_rate: fast}", "classifier.learning_rate", "number"),
        ("acquisition: {strategies: [random, entrpy]}", "acquisition.strategies[1]", "entropy"),
        ("acquisition: {neighbours: everyone}", "acquisition.neighbours", "labeled"),
        ("acquisitoin: {k: 3}", "acquisitoin", "did you mean `acquisition`"),
        ("rl: {enabled: true}", "rl.enabled", "generator.enabled"),
        ("generator: {enabled: true}\nrl: {enabled: true, beta: 0}", "rl.beta", "> 0"),
        # PPO's fields are checked when the recipe is read, not after round 1 has trained.
        ("generator: {enabled: true}\nrl: {enabled: true, algorithm: ppo, gamma: 1.5}", "rl.gamma", "[0, 1]"),
        ("rl: {algorithm: grpo, num_generations: 1}", "rl.num_generations", ">= 2"),
        ("acquisition: {strategies: [entropy-gen]}", "acquisition.strategies[0]", "generator.enabled"),
        ("generator: {enabled: true}\nacquisition: {strategies: [cal-gen-norl]}", "acquisition.strategies[0]", "cal-gen"),
        # A budget split divides R and S, so it needs a generative method and the generator.
        ("generator: {enabled: true}\nacquisition: {strategies: [entropy-adaptive]}", "acquisition.strategies[0]", "entropy-gen-adaptive"),
        ("acquisition: {strategies: [signal-fixed]}", "acquisition.strategies[0]", "generator.enabled"),
        ("generator: {enabled: true}\nacquisition: {strategies: [signal-gen-sometimes]}", "acquisition.strategies[0]", "unknown strategy"),
        ("generator: {enabled: true}\nacquisition: {strategies: [entrpy-gen-fixed]}", "acquisition.strategies[0]", "'entropy-gen-fixed'"),
        ("store: {backend: s3}", "store.backend", "['local', 'hub']"),
        ("loop: [1, 2]", "loop", "mapping"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text, field, hint):
    with pytest.raises(ConfigError) as e:
        load_recipe(write(tmp_path, text))
    assert e.value.field == field
    assert hint in str(e.value)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML line 3"):
        load_recipe(write(tmp_path, "data:\n  dataset: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_overrides_dotted_flat_and_lists(tmp_path):
    p = write(tmp_path, "loop: {seeds: [0, 1]}\nacquisition: {k: 10}\n")
    cfg = load_recipe(p, ["--loop.seeds", "3", "4", "--k=5", "--acquisition.strategies", "random,cal", "--name", "x"])
    assert cfg.loop.seeds == [3, 4]
    assert cfg.acquisition.k == 5
    assert cfg.acquisition.strategies == ["random", "cal"]
    assert cfg.name == "x"
    assert load_recipe(p, ["--loop.seeds", "7"]).loop.seeds == [7]
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_overrides(["--enabled", "true"])
    with pytest.raises(ConfigError, match="unknown option"):
        parse_overrides(["--no_such_field", "1"])
    with pytest.raises(ConfigError) as e:
        load_recipe(p, ["--acquisition.k", "many"])
    assert e.value.field == "acquisition.k"


def test_types_are_coerced_not_trusted():
    cfg = config_from_dict({"classifier": {"learning_rate": 1, "num_train_epochs": 2}, "loop": {"seeds": [0.0]}})
    assert cfg.classifier.learning_rate == 1.0 and isinstance(cfg.classifier.learning_rate, float)
    assert cfg.classifier.num_train_epochs == 2.0
    assert cfg.loop.seeds == [0]
    with pytest.raises(ConfigError, match="integer"):
        config_from_dict({"acquisition": {"k": 2.5}})
    with pytest.raises(ConfigError, match="true/false"):
        config_from_dict({"output": {"plot": "maybe"}})
    # PyYAML reads `5e-5` (no dot) as text; that spelling of a number is the one text accepted.
    assert config_from_dict(yaml.safe_load("classifier: {learning_rate: 5e-5}")).classifier.learning_rate == 5e-5


@pytest.mark.parametrize(
    "section, values, field",
    [
        ("classifier", {"max_steps": "3"}, "classifier.max_steps"),
        ("classifier", {"num_train_epochs": "2"}, "classifier.num_train_epochs"),
        ("acquisition", {"strategies": "random"}, "acquisition.strategies"),
        ("loop", {"seeds": 3}, "loop.seeds"),
    ],
)
def test_text_where_a_number_or_list_is_expected_is_refused(section, values, field):
    with pytest.raises(ConfigError) as e:
        config_from_dict({section: values})
    assert e.value.field == field


def test_cli_overrides_are_parsed_as_yaml_and_listed(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {dataset: sst2}\n")
    cfg = load_recipe(recipe, ["--loop.seeds", "3", "--acquisition.strategies=random,cal", "--classifier.max_steps=7"])
    assert cfg.loop.seeds == [3] and cfg.acquisition.strategies == ["random", "cal"] and cfg.classifier.max_steps == 7
    cfg = load_recipe(recipe, ["--acquisition.strategies", "entropy"])
    assert cfg.acquisition.strategies == ["entropy"]


def test_an_empty_recipe_is_refused(tmp_path):
    recipe = tmp_path / "empty.yaml"
    recipe.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="is empty") as e:
        load_recipe(recipe)
    assert e.value.field == "recipe"


def test_missing_label_column_fails_before_any_model_loads(tmp_path, monkeypatch):
    import signal_hf.classifier as clf

    (tmp_path / "train.csv").write_text("sentence,y\na,pos\nb,neg\n")
    (tmp_path / "test.csv").write_text("sentence,y\nc,pos\n")
    monkeypatch.setattr(clf, "load_classifier", lambda *a, **k: pytest.fail("a model was loaded"))
    from signal_hf.data import load_task

    cfg = config_from_dict({"data": {"dataset": str(tmp_path), "text_column": "sentence", "label_column": "label"}})
    with pytest.raises(ConfigError) as e:
        load_task(cfg.data)
    assert e.value.field == "data.label_column"
    assert "['sentence', 'y']" in str(e.value)


def test_cli_prints_one_line_error(tmp_path):
    bad = write(tmp_path, "acquisition: {k: -1}\n")
    proc = subprocess.run([sys.executable, "-m", "signal_hf", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.strip().splitlines() if l]
    assert lines == ["error: acquisition.k: must be > 0, got -1 (fix: e.g. 10)"]
    assert "Traceback" not in proc.stderr


def test_every_field_is_documented_and_the_reference_is_current():
    from signal_hf.config import config_reference_markdown, undocumented_fields

    assert undocumented_fields() == []
    committed = (ROOT / "docs" / "config_reference.md").read_text()
    assert committed == config_reference_markdown(), "regenerate: signal-hf config --reference > docs/config_reference.md"


def test_pair_features_is_part_of_the_recipe_hash_only_where_it_changes_results():
    from signal_hf.loop.records import recipe_hash

    def h(dataset: str, features: str, **data) -> str:
        return recipe_hash(config_from_dict({"data": {"dataset": dataset, **data}, "classifier": {"pair_features": features}}))

    # Single-text tasks: the option changes nothing, so runs saved before it existed stay resumable.
    assert h("sst2", "interaction") == h("sst2", "joint")
    assert h("data/my.csv", "interaction", text_column="t") == h("data/my.csv", "joint", text_column="t")
    # Pair tasks: the two feature sets are different classifiers.
    assert h("qnli", "interaction") != h("qnli", "joint")
    assert h("data/pairs.csv", "interaction", text_pair_column="s") != h("data/pairs.csv", "joint", text_pair_column="s")
    # "joint" hashes as the recipe did before the field existed (no pair_features key at all).
    from signal_hf.loop import records

    cfg = config_from_dict({"data": {"dataset": "qnli"}, "classifier": {"pair_features": "joint"}})
    d = cfg.to_dict()
    d.pop("output"), d.pop("store")
    d["loop"] = {k: v for k, v in d["loop"].items() if k not in ("seeds", "max_fraction", "signal_max_fraction")}
    d["acquisition"] = {k: v for k, v in d["acquisition"].items() if k != "strategies"}
    del d["classifier"]["pair_features"]
    import hashlib, json as _json

    assert records.recipe_hash(cfg) == hashlib.sha256(_json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_budget_split_suffix_names_its_own_method():
    from signal_hf.loop.methods import parse_method

    cfg = config_from_dict({"generator": {"enabled": True}, "rl": {"enabled": True}, "loop": {"budget_split": "free"},
                            "acquisition": {"strategies": ["signal", "signal-adaptive", "signal-gen-norl-fixed", "cal-gen-free"]}})
    got = [(m.name, m.strategy, m.generate, m.self_inform, m.budget_split) for m in map(lambda e: parse_method(e, cfg), cfg.acquisition.strategies)]
    assert got == [
        ("signal-gen", "signal", True, True, None),  # the recipe's loop.budget_split
        ("signal-gen-adaptive", "signal", True, True, "adaptive"),
        ("signal-gen-norl-fixed", "signal", True, False, "fixed"),
        ("cal-gen-free", "cal", True, False, "free"),
    ]
