"""Oracles: gold labels, a fine-tuned annotator, a constrained LLM, a scripted human."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from signal_hf.errors import ConfigError, OracleError
from signal_hf.generation import OracleConfig
from signal_hf.oracles import (
    GoldOracle,
    HumanOracle,
    LLMOracle,
    ModelOracle,
    make_oracle,
)
from signal_hf.types import TaskSpec

SST2 = TaskSpec("sst2", ("negative", "positive"), task_type="sentiment")
QNLI = TaskSpec("qnli", ("entailment", "not_entailment"), task_type="pair", is_pair=True, text_field_names=("question", "sentence"))


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: competing OpenMP threads on a small shared CPU slow models ~40x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sst2_rows(n: int) -> list[dict]:
    path = Path(os.environ.get("SIGNAL_HF_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data") / "sst2" / "train.tsv"
    if not path.is_file():
        pytest.skip(f"offline dataset {path} not present")
    with path.open(newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row for _, row in zip(range(n), reader)]


def _items(texts, labels=None, pairs=None) -> Dataset:
    cols = {"id": [f"x{i}" for i in range(len(texts))], "text": list(texts)}
    if pairs is not None:
        cols["text_pair"] = list(pairs)
    cols["label"] = list(labels) if labels is not None else [-1] * len(texts)
    return Dataset.from_dict(cols)


# ---------------------------------------------------------------- gold

def test_gold_oracle_returns_hidden_labels_and_rejects_unlabeled():
    assert GoldOracle().annotate(_items(["a", "b", "c"], [1, 0, 1])) == [1, 0, 1]
    with pytest.raises(OracleError, match=r"x1.*oracle\.synthetic"):
        GoldOracle().annotate(_items(["a", "b"], [0, -1]))
    with pytest.raises(OracleError, match="no label column"):
        GoldOracle().annotate(Dataset.from_dict({"text": ["a"]}))


# ---------------------------------------------------------------- fine-tuned annotator

@pytest.fixture(scope="module")
def annotator_dir(tmp_path_factory):
    """all-MiniLM-L6-v2 fine-tuned for a few steps on 40 SST-2 rows, saved with the task's labels."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from signal_hf.bundled import resolve_model_path

    rows = _sst2_rows(40)
    texts, labels = [r["sentence"] for r in rows], torch.tensor([int(r["label"]) for r in rows])
    path = resolve_model_path("bundled:minilm")
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for step in range(4):
        sl = slice(10 * step, 10 * step + 10)
        enc = tok(texts[sl], truncation=True, max_length=64, padding=True, return_tensors="pt")
        loss = model(**enc, labels=labels[sl]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("annotator")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, texts


def test_model_oracle_reproduces_saved_classifier_argmax(annotator_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path, texts = annotator_dir
    oracle = ModelOracle(path, SST2, batch_size=7)  # 7: several batches with padding differences
    got = oracle.annotate(_items(texts))
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():  # one text at a time, no padding
        expected = [int(model(**tok(t, return_tensors="pt")).logits.argmax(-1)) for t in texts]
    assert got == expected
    assert set(got) <= {0, 1}
    assert make_oracle("model", SST2, OracleConfig(annotator_path=str(path))).annotate(_items(texts[:5])) == expected[:5]


def test_model_oracle_rejects_label_mismatch_and_bad_paths(annotator_dir, tmp_path):
    path, _ = annotator_dir
    with pytest.raises(OracleError, match=r"\['negative', 'positive'\].*\['entailment', 'not_entailment'\]"):
        ModelOracle(path, QNLI)
    flipped = TaskSpec("sst2", ("positive", "negative"))
    with pytest.raises(OracleError, match="do not match"):
        ModelOracle(path, flipped)
    with pytest.raises(OracleError, match="oracle.annotator_path"):
        ModelOracle(tmp_path / "nowhere", SST2)
    with pytest.raises(ConfigError, match="oracle.annotator_path"):
        make_oracle("model", SST2, OracleConfig(annotator_path=None))


# ---------------------------------------------------------------- LLM

@pytest.fixture(scope="module")
def smol_llm():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from signal_hf.bundled import resolve_model_path

    path = resolve_model_path("bundled:smollm2-135m")
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


OBVIOUS = [
    "this movie is wonderful , i loved every minute of it .",
    "a terrible , boring mess . i hated it .",
    "a beautiful , moving and brilliant film .",
]


def _reference_scores(model, tok, prompt: str, conts: list[list[int]], add_special: bool) -> list[float]:
    """Label log-likelihoods one sequence at a time from full logits (no padding, no logits_to_keep)."""
    p_ids = tok(prompt, add_special_tokens=add_special)["input_ids"]
    out = []
    for c in conts:
        ids = torch.tensor([p_ids + c])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        out.append(sum(float(logp[len(p_ids) + j - 1, t]) for j, t in enumerate(c)))
    return out


@pytest.mark.generator
def test_llm_oracle_scores_match_unbatched_reference_and_are_deterministic(smol_llm):
    model, tok = smol_llm
    oracle = LLMOracle(model, SST2, tokenizer=tok, batch_size=2)  # 3 items: a full and a partial batch
    items = _items(OBVIOUS)
    scores = oracle.scores(items)
    assert scores.shape == (3, 2) and torch.isfinite(scores).all() and (scores < 0).all()
    for i, text in enumerate(OBVIOUS):
        ref = _reference_scores(model, tok, oracle.prompt(text), oracle._cont_ids, add_special=False)
        assert scores[i].tolist() == pytest.approx(ref, abs=1e-3)
    labels = oracle.annotate(items)
    assert labels == scores.argmax(-1).tolist() and all(y in (0, 1) for y in labels)
    assert LLMOracle(model, SST2, tokenizer=tok, batch_size=3).annotate(items) == labels  # batch-independent


@pytest.mark.generator
def test_llm_oracle_completion_style_few_shot_and_verbalizers(smol_llm):
    import copy

    model, tok = smol_llm
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    shots = _items(["an utterly dull film", "a joyous , funny delight", "awful", "great fun"], [0, 1, 0, 1])
    oracle = LLMOracle(model, SST2, few_shot=shots, k_shot=2, tokenizer=plain, verbalizers=["bad", "good"], seed=1)
    prompt = oracle.prompt("a charming story")
    assert prompt.endswith("Text: a charming story\nLabel:") and "Options: bad, good." in prompt
    assert prompt.count("\nLabel: ") == 2
    for text, label in zip(shots["text"], shots["label"]):  # each shown example carries its own label
        if f"Text: {text}\n" in prompt:
            assert f"Text: {text}\nLabel: {['bad', 'good'][label]}\n" in prompt
    scores = oracle.scores(_items(OBVIOUS[:2]))
    ref = _reference_scores(model, plain, oracle.prompt(OBVIOUS[0]), oracle._cont_ids, add_special=True)
    assert scores[0].tolist() == pytest.approx(ref, abs=1e-3)
    # Without rows at construction, the shots come from each round's labeled set (observe).
    later = LLMOracle(model, SST2, k_shot=2, tokenizer=plain, verbalizers=["bad", "good"])
    with pytest.raises(OracleError, match="few_shot"):
        later.annotate(_items(OBVIOUS[:1]))
    later.observe(shots, seed=1)
    assert later.prompt("a charming story") == prompt  # the same rows and seed draw the same shots
    with pytest.raises(ConfigError, match="oracle.llm_verbalizers"):
        LLMOracle(model, SST2, tokenizer=tok, verbalizers=["good"])


@pytest.mark.generator
def test_llm_oracle_pair_task(smol_llm):
    model, tok = smol_llm
    oracle = LLMOracle(model, QNLI, tokenizer=tok, verbalizers=["yes", "no"])
    items = _items(["Who wrote Hamlet?"], pairs=["Hamlet was written by William Shakespeare."])
    assert "Question: Who wrote Hamlet?\nSentence: Hamlet was written" in oracle.prompt("Who wrote Hamlet?", "Hamlet was written by William Shakespeare.")
    assert oracle.annotate(items)[0] in (0, 1)


# ---------------------------------------------------------------- human

class Script:
    def __init__(self, answers):
        self.answers, self.prompts = list(answers), []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


def test_human_oracle_number_name_skip_undo_invalid_quit():
    shown: list[str] = []
    script = Script(["2", "negative", "u", "x", "3", "POSITIVE", "s", "q"])
    oracle = HumanOracle(SST2, input_fn=script, print_fn=lambda *a: shown.append(" ".join(map(str, a))))
    labels = oracle.annotate(_items(["first text", "second text", "third text", "fourth text", "fifth text"]))
    # 1 → positive; 2 → negative, undone, "x" and "3" rejected, then POSITIVE; 3 skipped; quit at 4
    assert labels == [1, 1, None, None, None]
    out = "\n".join(shown)
    assert out.count("not understood") == 2
    assert "1) negative  2) positive" in out
    assert out.count("second text") == 2  # shown again after the undo
    assert "fifth text" not in out


def test_human_oracle_undo_at_start_and_end_of_input():
    shown: list[str] = []
    oracle = HumanOracle(QNLI, input_fn=Script(["u", "1"]), print_fn=lambda *a: shown.append(" ".join(map(str, a))))
    labels = oracle.annotate(_items(["q one?", "q two?"], pairs=["s one.", "s two."]))
    assert labels == [0, None]  # end of input = quit
    out = "\n".join(shown)
    assert "nothing to undo" in out and "Question: q one?\nSentence: s one." in out


def test_make_oracle_kinds():
    assert isinstance(make_oracle("gold", SST2, OracleConfig()), GoldOracle)
    assert isinstance(make_oracle("human", SST2, OracleConfig()), HumanOracle)
    with pytest.raises(ConfigError, match="oracle.synthetic"):
        make_oracle("crowd", SST2, OracleConfig())


@pytest.mark.parametrize("kwargs, where", [
    ({"synthetic": "crowd"}, "oracle.synthetic"), ({"real": "model"}, "oracle.real"),
    ({"llm_k_shot": -1}, "oracle.llm_k_shot"), ({"batch_size": 0}, "oracle.batch_size"),
    ({"llm_verbalizers": ["yes", "yes"]}, "oracle.llm_verbalizers"),
])
def test_oracle_config_checks_its_values_when_built(kwargs, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        OracleConfig(**kwargs)
