"""Generator: prompts, post-processing, near-duplicates, seeded LoRA generation, adapters."""

from __future__ import annotations

import copy
import csv
import os
import random
import re
import time
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from signal_hf.errors import ConfigError, EmptyPoolError, GenerationError
from signal_hf.generation import GeneratorConfig
from signal_hf.generation.decoding import Completion
from signal_hf.generation.postprocess import (
    NearDuplicateIndex,
    normalize_text,
    parse_completion,
)
from signal_hf.generation.prompts import default_instruction, sample_example_indices
from signal_hf.types import TaskSpec

SST2 = TaskSpec("sst2", ("negative", "positive"), task_type="sentiment")
AGNEWS = TaskSpec("ag_news", ("World", "Sports", "Business", "Sci/Tech"), task_type="topic")
QNLI = TaskSpec("qnli", ("entailment", "not_entailment"), task_type="pair", is_pair=True, text_field_names=("question", "sentence"))


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a small shared CPU, OpenMP threads competing with other processes
    made SmolLM2 sampling ~40x slower (measured 85 s vs 2 s for 4x20 tokens)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data_dir() -> Path:
    return Path(os.environ.get("SIGNAL_HF_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _read_tsv(rel: str, n: int) -> list[dict]:
    path = _data_dir() / rel
    if not path.is_file():
        pytest.skip(f"offline dataset {path} not present")
    with path.open(newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row for _, row in zip(range(n), reader)]


@pytest.fixture(scope="module")
def sst2_pool() -> Dataset:
    rows = _read_tsv("sst2/train.tsv", 60)
    return Dataset.from_dict({
        "id": [f"sst2-{i}" for i in range(len(rows))],
        "text": [r["sentence"].strip() for r in rows],
        "label": [int(r["label"]) for r in rows],
        "source": ["real"] * len(rows),
    })


@pytest.fixture(scope="module")
def qnli_pool() -> Dataset:
    rows = _read_tsv("qnli/validation.tsv", 20)
    return Dataset.from_dict({
        "id": [f"qnli-{r['index']}" for r in rows],
        "text": [r["question"] for r in rows],
        "text_pair": [r["sentence"] for r in rows],
        "label": [0 if r["label"] == "entailment" else 1 for r in rows],
        "source": ["real"] * len(rows),
    })


@pytest.fixture(scope="module")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from signal_hf.bundled import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("bundled:smollm2-135m"))


def _tiny_generator(tokenizer, task: TaskSpec, **cfg):
    """A Generator around a 1-layer random Llama: fast, for prompt/bookkeeping tests (no LM quality)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from signal_hf.generation import Generator

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, eos_token_id=tokenizer.eos_token_id))
    return Generator(GeneratorConfig(**cfg), task, model=model, tokenizer=tokenizer)


# ---------------------------------------------------------------- post-processing

def test_parse_completion_cleans_prefixes_quotes_boundaries_and_echo():
    p = lambda c, **kw: parse_completion(c, SST2, instruction="Write one new text.", **kw)
    assert p(' "A truly moving film."\nExample 5: other') == ({"text": "A truly moving film."}, None)
    assert p("Example 4: great acting and a clever script Example 5: dull") == ({"text": "great acting and a clever script"}, None)
    assert p("Write one new text. the plot is thin but charming") == ({"text": "the plot is thin but charming"}, None)
    assert p("Here is a new example:\n\n“The film is a delight from start to finish.”") == ({"text": "The film is a delight from start to finish."}, None)
    assert p("Sure! Here's one: 'Sharp, funny and far too short.'") == ({"text": "Sharp, funny and far too short."}, None)
    assert p("Example 4:\nText: a dull , lifeless remake<|im_end|>") == ({"text": "a dull , lifeless remake"}, None)
    assert p(" 'an opening quote that never closes") == ({"text": "an opening quote that never closes"}, None)


def test_parse_completion_drop_reasons():
    p = lambda c, **kw: parse_completion(c, SST2, **kw)
    assert p("   \n ") == (None, "empty")
    assert p('""') == (None, "empty")
    assert p("Example 4:") == (None, "empty")
    assert p("Bad movie.", min_words=3) == (None, "too_short")
    assert p("Bad movie.", min_words=2) == ({"text": "Bad movie."}, None)
    assert p(" ".join(["word"] * 11), max_words=10) == (None, "too_long")
    assert p(" ".join(["word"] * 10), max_words=10)[1] is None
    assert p("a " * 5 + "x" * 100, max_chars=80) == (None, "too_long")


def test_parse_completion_pairs():
    p = lambda c: parse_completion(c, QNLI, min_words=2)
    assert p(" Question: Who wrote Hamlet? Sentence: Hamlet was written by Shakespeare.") == (
        {"text": "Who wrote Hamlet?", "text_pair": "Hamlet was written by Shakespeare."}, None)
    # second field on the next line, a next example after it, field names in other case
    assert p('question: When did the war end?\nSENTENCE: "The war ended in 1945." Example 5: Question: x') == (
        {"text": "When did the war end?", "text_pair": "The war ended in 1945."}, None)
    assert p("Question: Who wrote Hamlet?") == (None, "unparseable_pair")
    assert p("Hamlet was written by Shakespeare.") == (None, "unparseable_pair")
    assert p("Question: Who? Sentence: It was him.") == (None, "too_short")


def test_normalize_text_matches_tokenised_and_raw_forms():
    assert normalize_text("It's GREAT!") == normalize_text("it 's great") == "it s great"
    assert normalize_text("  Ｆｕｌｌ-width\ttext ") == "full width text"


# ---------------------------------------------------------------- near-duplicates

def _brute_jaccard(a: str, b: str, n: int) -> float:
    def grams(t: str) -> set[str]:
        t = normalize_text(t).ljust(n)
        return {t[i : i + n] for i in range(len(t) - n + 1)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_near_duplicate_jaccard_hand_computed_and_brute_force():
    idx = NearDuplicateIndex(["abcde"], ngram=4)
    # {abcd, bcde} vs {abcd, bcdf}: 1 shared of 3
    assert idx.max_similarity(["abcdf"]).tolist() == pytest.approx([1 / 3])
    assert idx.max_similarity(["abcde", "zzzzz"]).tolist() == pytest.approx([1.0, 0.0])
    # a text shorter than n is padded, so it still has one n-gram: "ab  "
    assert NearDuplicateIndex(["ab"], ngram=4).max_similarity(["AB!"]).tolist() == pytest.approx([1.0])

    rng = random.Random(0)
    words = ["the", "a", "movie", "film", "great", "bad", "plot", "acting", "dull", "charming", "story", "script", "fun", "sad"]
    refs = [" ".join(rng.choices(words, k=rng.randint(2, 9))) for _ in range(40)]
    cands = [" ".join(rng.choices(words, k=rng.randint(2, 9))) for _ in range(25)] + ["é ünïcode çafé"]
    index = NearDuplicateIndex(refs, ngram=3)
    expected = [max(_brute_jaccard(c, r, 3) for r in refs) for c in cands]
    assert index.max_similarity(cands).tolist() == pytest.approx(expected, abs=1e-6)


def test_near_duplicate_check_reasons_within_batch_and_against_references():
    idx = NearDuplicateIndex(["the movie was great fun from start to finish"], threshold=0.8, ngram=4)
    reasons = idx.check([
        "The movie was GREAT fun, from start to finish!",   # same normal form as the reference
        "the movie was great fun from start to finish .. really",  # near the reference
        "a completely different and original text here",
        "A completely different and original text here.",  # exact dup of the previous one
        "a completely different and original text here ok",  # near dup of the kept one
        "nothing like the others at all",
    ], add=True)
    assert reasons == ["duplicate", "near_duplicate", None, "duplicate", "near_duplicate", None]
    assert _brute_jaccard("the movie was great fun from start to finish .. really", "the movie was great fun from start to finish", 4) >= 0.8
    assert _brute_jaccard("a completely different and original text here ok", "a completely different and original text here", 4) >= 0.8
    # kept texts joined the references
    assert len(idx) == 3
    assert idx.check(["nothing like the others at all"]) == ["duplicate"]


def test_near_duplicate_scales_to_large_reference_sets():
    rng = random.Random(1)
    alphabet = "abcdefghijklmnopqrstuvwxyz     "
    refs = ["".join(rng.choices(alphabet, k=rng.randint(30, 200))) for _ in range(3000)]
    cands = ["".join(rng.choices(alphabet, k=rng.randint(30, 200))) for _ in range(300)] + [refs[17] + "!"]
    t = time.perf_counter()
    reasons = NearDuplicateIndex(refs).check(cands)
    assert time.perf_counter() - t < 10  # one sparse product (~1 s on 2 busy cores); guards against a blow-up
    assert reasons[-1] == "duplicate" and reasons[:-1].count(None) >= 290


# ---------------------------------------------------------------- prompts

def test_sample_example_indices_seeded_distinct_rows():
    a = sample_example_indices(50, 20, 3, seed=0)
    assert a.shape == (20, 3)
    assert (a == sample_example_indices(50, 20, 3, seed=0)).all()
    assert not (a == sample_example_indices(50, 20, 3, seed=1)).all()
    assert all(len(set(r)) == 3 for r in a.tolist()) and a.min() >= 0 and a.max() < 50
    small = sample_example_indices(2, 4, 3, seed=0)  # pool smaller than p: every row, shuffled
    assert small.shape == (4, 2) and all(sorted(r) == [0, 1] for r in small.tolist())
    with pytest.raises(EmptyPoolError):
        sample_example_indices(0, 4, 3, seed=0)


def test_default_instructions_name_label_sets_never_example_labels():
    assert "World, Sports, Business, Sci/Tech" in default_instruction(AGNEWS)
    assert "negative or positive" in default_instruction(SST2)
    assert "Question: ... Sentence: ..." in default_instruction(QNLI)
    with pytest.raises(ConfigError, match="data.task_type"):
        default_instruction(TaskSpec("x", ("a", "b"), task_type="regression"))


def _example_lines(prompt: str) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(r"^Example (\d+): (.+)$", prompt, re.MULTILINE)]


def test_build_prompts_chat_template_seeded_no_labels(smol_tokenizer, sst2_pool):
    gen = _tiny_generator(smol_tokenizer, SST2, num_examples=3)
    assert gen.chat
    kw = gen.generation_kwargs()  # one example per line: newline ends it, but cannot start it
    newline = smol_tokenizer.encode("\n", add_special_tokens=False)
    assert len(newline) == 1 and newline[0] in kw["eos_token_id"] and smol_tokenizer.eos_token_id in kw["eos_token_id"]
    assert newline[0] in kw["begin_suppress_tokens"]
    prompts = gen.build_prompts(sst2_pool, 6, seed=0)
    assert prompts == gen.build_prompts(sst2_pool, 6, seed=0)
    assert prompts != gen.build_prompts(sst2_pool, 6, seed=1)
    texts = set(sst2_pool["text"])
    for prompt in prompts:
        assert prompt.startswith("<|im_start|>") and "<|im_start|>assistant\n" in prompt
        assert prompt.endswith("<|im_start|>assistant\nExample 4:")
        examples = _example_lines(prompt)
        assert [k for k, _ in examples] == [1, 2, 3]
        assert all(t in texts for _, t in examples) and len({t for _, t in examples}) == 3
        assert "label" not in prompt.lower()
    # the draws differ across prompts (seeded, not one fixed set)
    assert len({tuple(t for _, t in _example_lines(p)) for p in prompts}) > 1


def test_build_prompts_completion_style_without_chat_template(smol_tokenizer, sst2_pool):
    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = None
    gen = _tiny_generator(tok, SST2, num_examples=2)
    assert not gen.chat
    prompt = gen.build_prompts(sst2_pool, 1, seed=3)[0]
    assert prompt.startswith(default_instruction(SST2) + "\n\nExample 1: ")
    assert prompt.endswith("\nExample 3:") and "<|im_start|>" not in prompt
    assert len(_example_lines(prompt)) == 2
    with pytest.raises(ConfigError, match="generator.prompt_style"):
        _tiny_generator(tok, SST2, prompt_style="chat")


def test_build_prompts_pair_task_and_topic(smol_tokenizer, qnli_pool, sst2_pool):
    gen = _tiny_generator(smol_tokenizer, QNLI, num_examples=2)
    prompt = gen.build_prompts(qnli_pool, 1, seed=0)[0]
    pairs = {f"Question: {q} Sentence: {s}" for q, s in zip(qnli_pool["text"], qnli_pool["text_pair"])}
    assert all(t in pairs for _, t in _example_lines(prompt))
    assert "entailment" not in prompt
    topic = _tiny_generator(smol_tokenizer, AGNEWS).build_prompts(sst2_pool, 1, seed=0)[0]
    assert "World, Sports, Business, Sci/Tech" in topic


def test_generate_counts_every_drop_reason(smol_tokenizer, sst2_pool, monkeypatch):
    gen = _tiny_generator(smol_tokenizer, SST2, min_words=3, max_words=12)
    existing = "a brand new film about nothing in particular"
    pool_text = next(t for t in sst2_pool["text"] if 4 <= len(t.split()) <= 12)
    crafted = [
        " A warm and witty comedy that never stops.",           # kept
        "   ",                                                  # empty
        " Dull.",                                               # too_short
        " " + " ".join(["long"] * 13),                          # too_long
        " " + pool_text,                                        # duplicate of the real pool
        " A brand new film about nothing in particular!!",      # duplicate of existing (normal form)
        " a warm and witty comedy that never stops at all",     # near-duplicate of the first
        ' "Another fresh, clever and moving story."',          # kept
    ]
    monkeypatch.setattr(gen, "sample", lambda prompts, *, seed, **kw: [Completion(c, False, 1) for c in crafted[: len(prompts)]])
    ds, stats = gen.generate(sst2_pool, len(crafted), round_idx=3, seed=0, existing_texts=[existing])
    assert stats.generated == 8 and stats.kept == 2
    assert stats.dropped == {"empty": 1, "too_short": 1, "too_long": 1, "duplicate": 2, "near_duplicate": 1}
    assert stats.generated == stats.kept + sum(stats.dropped.values())
    assert ds["text"] == ["A warm and witty comedy that never stops.", "Another fresh, clever and moving story."]
    assert ds.column_names == ["id", "text", "label", "source", "prompt", "generator_revision", "round"]
    assert ds["label"] == [-1, -1] and ds["source"] == ["synthetic"] * 2 and ds["round"] == [3, 3]
    assert re.fullmatch(r"syn-r3-0-[0-9a-f]{8}", ds["id"][0]) and re.fullmatch(r"syn-r3-7-[0-9a-f]{8}", ds["id"][1])
    assert ds["generator_revision"] == ["base", "base"]
    assert ds["prompt"][0] == gen.build_prompts(sst2_pool, 8, seed=0)[0]


def test_completion_parser_is_what_the_rl_reward_penalises(smol_tokenizer, sst2_pool):
    """The reward's parser drops what generation drops: duplicates of R, of S/L (``existing``) and of
    an earlier completion of the same batch, besides malformed text."""
    gen = _tiny_generator(smol_tokenizer, SST2, min_words=3, max_words=12)
    pool_text = next(t for t in sst2_pool["text"] if 4 <= len(t.split()) <= 12)
    parse = gen.completion_parser(sst2_pool, ["a brand new film about nothing in particular"])
    got = parse([
        " A warm and witty comedy that never stops.",
        " " + pool_text,
        " A brand new film about nothing in particular!",
        " A warm and witty comedy that never stops.",
        " Dull.",
    ])
    assert got[0] == ({"text": "A warm and witty comedy that never stops."}, None)
    assert [reason for _, reason in got[1:]] == ["duplicate", "duplicate", "duplicate", "too_short"]


def test_the_policy_stops_rollouts_at_the_example_boundary(smol_tokenizer):
    """TRL (and PPO) sample until, and mask after, the first of ``model.generation_config.eos_token_id``:
    the generator sets it to its own stop tokens (EOS and newline tokens), so RL rollouts are single
    examples like generated candidates, not text sampled on to ``max_new_tokens``."""
    gen = _tiny_generator(smol_tokenizer, SST2)
    stops = set(gen.model.generation_config.eos_token_id)
    assert stops == set(gen.generation_kwargs()["eos_token_id"])
    assert smol_tokenizer.eos_token_id in stops
    newline = smol_tokenizer.encode("\n", add_special_tokens=False)[-1]
    assert newline in stops


def test_pair_generation_rows_have_text_pair(smol_tokenizer, qnli_pool, monkeypatch):
    gen = _tiny_generator(smol_tokenizer, QNLI, min_words=2)
    crafted = [" Question: Where is the Eiffel Tower? Sentence: The Eiffel Tower is in Paris.", " no fields here at all"]
    monkeypatch.setattr(gen, "sample", lambda prompts, *, seed, **kw: [Completion(c, False, 1) for c in crafted[: len(prompts)]])
    ds, stats = gen.generate(qnli_pool, 2, round_idx=0, seed=0)
    assert stats.dropped == {"unparseable_pair": 1} and stats.kept == 1
    assert ds[0]["text"] == "Where is the Eiffel Tower?" and ds[0]["text_pair"] == "The Eiffel Tower is in Paris."
    assert "text_pair" in ds.column_names


def test_config_checks_and_4bit_on_cpu_fails_clearly():
    with pytest.raises(ConfigError, match="generator.near_duplicate_threshold"):
        GeneratorConfig(near_duplicate_threshold=0.0)
    with pytest.raises(ConfigError, match="generator.prompt_style"):
        GeneratorConfig(prompt_style="fancy")
    for bad, where in [({"dtype": "int8"}, "generator.dtype"), ({"device": "cuda:x"}, "generator.device"),
                       ({"candidates_per_round": 0.0}, "generator.candidates_per_round"), ({"max_words": 2, "min_words": 3}, "generator.max_words")]:
        with pytest.raises(ConfigError, match=re.escape(where)):
            GeneratorConfig(**bad)  # checked when built, even with enabled: false
    assert GeneratorConfig(device="cuda:1").device == "cuda:1"  # whether that GPU exists is checked at load
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: 4-bit is allowed")
    from signal_hf.generation import Generator

    with pytest.raises(GenerationError, match=r"generator\.load_in_4bit.*CUDA.*load_in_4bit: false"):
        Generator(GeneratorConfig(model_name_or_path="bundled:smollm2-135m", load_in_4bit=True), SST2)
    with pytest.raises(GenerationError, match=r"generator\.load_in_4bit"):
        Generator(GeneratorConfig(model_name_or_path="bundled:smollm2-135m", load_in_4bit=True, device="cpu"), SST2)


# ---------------------------------------------------------------- real generation (SmolLM2-135M)

GEN_CFG = {"max_new_tokens": 20, "batch_size": 4, "num_examples": 3, "min_words": 2}


@pytest.fixture(scope="module")
def smol_generator():
    from signal_hf.generation import Generator

    return Generator.from_pretrained("bundled:smollm2-135m", task=SST2, config=GeneratorConfig(**GEN_CFG))


@pytest.mark.generator
def test_real_generation_rows_stats_and_seeding(smol_generator, sst2_pool):
    from peft import PeftModel

    gen = smol_generator
    assert isinstance(gen.model, PeftModel) and gen.revision == "base"
    assert any(p.requires_grad for n, p in gen.model.named_parameters() if "lora_" in n)
    existing = list(sst2_pool["text"][:10])
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    ds, stats = gen.generate(sst2_pool, 4, round_idx=1, seed=7, existing_texts=existing)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    assert stats.generated == 4 and stats.generated == stats.kept + sum(stats.dropped.values()) and len(ds) == stats.kept
    assert set(ds.column_names) == {"id", "text", "label", "source", "prompt", "generator_revision", "round"}
    pool_norm = {normalize_text(t) for t in sst2_pool["text"]}
    for row in ds:
        assert row["label"] == -1 and row["source"] == "synthetic" and row["round"] == 1
        assert row["id"].startswith("syn-r1-") and row["text"].strip() == row["text"] and "\n" not in row["text"]
        assert normalize_text(row["text"]) not in pool_norm
    ds2, stats2 = gen.generate(sst2_pool, 4, round_idx=1, seed=7, existing_texts=existing)
    assert ds2["text"] == ds["text"] and ds2["id"] == ds["id"] and stats2 == stats


@pytest.mark.generator
def test_adapter_roundtrip_and_lora_weights_change_outputs(smol_generator, sst2_pool, tmp_path):
    from signal_hf.generation import Generator

    gen = smol_generator
    prompts = gen.build_prompts(sst2_pool, 4, seed=11)
    base_out = gen.generate_raw(prompts, seed=5)
    assert gen.generate_raw(prompts, seed=5) == base_out  # same adapter + seed ⇒ same completions
    lora_b = [p for n, p in gen.model.named_parameters() if "lora_B" in n]
    saved = [p.detach().clone() for p in lora_b]
    try:
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            for p in lora_b:  # a fresh adapter has B = 0 (identity); make it matter
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
        changed = gen.generate_raw(prompts, seed=5)
        assert changed != base_out
        gen.save_adapter(tmp_path / "adapter")
        assert (tmp_path / "adapter" / "adapter_config.json").is_file()
        reloaded = Generator.from_pretrained("bundled:smollm2-135m", task=SST2, config=GeneratorConfig(**GEN_CFG), adapter=tmp_path / "adapter")
        assert reloaded.revision == str(tmp_path / "adapter")
        assert any(p.requires_grad for n, p in reloaded.model.named_parameters() if "lora_B" in n)  # trainable
        assert reloaded.generate_raw(prompts, seed=5) == changed
    finally:
        with torch.no_grad():
            for p, s in zip(lora_b, saved):
                p.copy_(s)
    with pytest.raises(GenerationError, match="generator.adapter_name_or_path"):
        Generator.from_pretrained("bundled:smollm2-135m", task=SST2, config=GeneratorConfig(**GEN_CFG), adapter=tmp_path / "missing")


@pytest.mark.generator
@pytest.mark.slow
def test_gemma_base_completion_style_generation(sst2_pool):
    from signal_hf.generation import Generator

    gen = Generator.from_pretrained("bundled:gemma3-270m", task=SST2, config=GeneratorConfig(max_new_tokens=24, batch_size=3, min_words=2))
    assert not gen.chat
    ds, stats = gen.generate(sst2_pool, 3, round_idx=0, seed=0)
    assert all(p.endswith("\nExample 4:") for p in gen.build_prompts(sst2_pool, 3, seed=0))
    assert stats.generated == 3 == stats.kept + sum(stats.dropped.values())
    assert all("\n" not in t and t for t in ds["text"])


# ---------------------------------------------------------------- the fast sampling loop (generator.decoding)

def _hf_nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    from transformers.generation.logits_process import TopPLogitsWarper

    return torch.isfinite(TopPLogitsWarper(top_p)(None, logits.clone()))


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.95, 0.999])
def test_nucleus_sample_keeps_transformers_top_p_set_and_its_distribution(top_p):
    from signal_hf.generation.decoding import nucleus_sample

    g = torch.Generator().manual_seed(0)
    # Peaked and flat rows over a 5,000-token vocabulary; start_k=8 forces the widening for flat rows.
    logits = torch.cat([torch.randn(3, 5000, generator=g) * 6, torch.randn(3, 5000, generator=g) * 0.3])
    kept = _hf_nucleus(logits, top_p)
    draws = torch.stack([nucleus_sample(logits, temperature=1.0, top_p=top_p, generator=g, start_k=8) for _ in range(300)], 1)
    for row in range(logits.shape[0]):
        assert kept[row, draws[row]].all()  # never outside transformers' nucleus
    # Frequencies on a small vocabulary match the renormalised nucleus distribution.
    small = torch.tensor([[2.0, 1.5, 1.0, 0.2, -1.0, -3.0]])
    mask = _hf_nucleus(small, top_p)
    want = torch.softmax(small.masked_fill(~mask, float("-inf")), -1)[0]
    n = 20000
    got = torch.bincount(torch.cat([nucleus_sample(small.expand(200, -1), temperature=1.0, top_p=top_p, generator=g, start_k=2) for _ in range(n // 200)]), minlength=6) / n
    assert torch.allclose(got, want, atol=0.015), (got, want)


def test_nucleus_sample_temperature_scales_like_transformers():
    from signal_hf.generation.decoding import nucleus_sample

    g = torch.Generator().manual_seed(1)
    small = torch.tensor([[1.0, 0.5, 0.0]])
    got = torch.bincount(torch.cat([nucleus_sample(small.expand(500, -1), temperature=0.5, top_p=1.0, generator=g) for _ in range(40)]), minlength=3) / 20000
    assert torch.allclose(got, torch.softmax(small / 0.5, -1)[0], atol=0.015)


def test_row_major_head_is_the_same_product_and_training_keeps_linear():
    from signal_hf.generation.model import use_row_major_head

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(16, 300, bias=False)

        def get_output_embeddings(self):
            return self.head

    m = Tiny()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        want = torch.nn.functional.linear(x, m.head.weight)
        assert use_row_major_head(m)
        got = m.head(x)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    y = m.head(x.requires_grad_())  # grad enabled: plain linear, gradients flow
    y.sum().backward()
    assert m.head.weight.grad is not None and x.grad is not None


@pytest.mark.generator
def test_fast_decoding_matches_transformers_generate_at_greedy(smol_generator, sst2_pool):
    """With a vanishing top_p both loops pick the argmax every step, so they must write the same
    tokens: left padding, positions, the KV cache and dropping finished rows are checked on real
    prompts of different lengths (one batch), with the newline stop and the length cap both hit."""
    from signal_hf.generation.decoding import SamplingSettings, sample_completions

    gen = smol_generator
    prompts = gen.build_prompts(sst2_pool, 5, seed=3)
    prompts[1] = prompts[1] + " The"  # different lengths inside the batch
    settings = SamplingSettings(max_new_tokens=12, temperature=1.0, top_p=1e-9, stop_ids=tuple(gen._stop_ids),
                                suppress_first=tuple(gen._newline_ids), batch_size=5)
    fast = sample_completions(gen.model.get_base_model(), gen.tokenizer, prompts, settings, seed=0, add_special_tokens=not gen.chat)
    kw = {**gen.generation_kwargs(), "top_p": 1e-9, "max_new_tokens": 12}
    enc = gen.tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=not gen.chat)
    gen.model.eval()
    with torch.no_grad():
        new = gen.model.generate(**enc, **kw)[:, enc["input_ids"].shape[1]:]
    hf = gen.tokenizer.batch_decode(new, skip_special_tokens=True)
    assert [c.text for c in fast] == hf
    for c, row in zip(fast, new.tolist()):
        first_stop = next((j for j, t in enumerate(row) if t in gen._stop_ids), None)
        assert c.truncated == (first_stop is None)
        assert c.tokens == (12 if first_stop is None else first_stop + 1)


@pytest.mark.generator
def test_fast_decoding_is_seeded_order_independent_of_batching_and_drops_truncated(smol_generator, sst2_pool, caplog):
    import dataclasses
    import logging

    gen = smol_generator
    prompts = gen.build_prompts(sst2_pool, 6, seed=4)
    a = gen.sample(prompts, seed=9)
    assert gen.sample(prompts, seed=9) == a and gen.sample(prompts, seed=10) != a
    assert [c.text for c in a] == gen.generate_raw(prompts, seed=9)
    old = gen.config
    try:
        gen.config = dataclasses.replace(old, max_new_tokens=2, min_words=0)  # every completion is cut at 2 tokens
        cut = gen.sample(prompts, seed=9)
        with caplog.at_level(logging.WARNING, logger="signal_hf.generation.generator"):
            ds, stats = gen.generate(sst2_pool, 6, round_idx=0, seed=9)
        n_cut = sum(c.truncated for c in cut)
        assert n_cut >= 3 and stats.dropped.get("truncated", 0) >= 3
        # half or more cut: one warning naming the field and the fix
        assert [r.message for r in caplog.records if "generator.max_new_tokens=2" in r.message and "raise generator.max_new_tokens" in r.message]
        caplog.clear()
        gen.config = dataclasses.replace(old, max_new_tokens=2, min_words=0, keep_truncated=True)
        with caplog.at_level(logging.WARNING, logger="signal_hf.generation.generator"):
            _, kept_stats = gen.generate(sst2_pool, 6, round_idx=0, seed=9)
        assert "truncated" not in kept_stats.dropped and kept_stats.kept >= stats.kept
        assert not [r for r in caplog.records if "max_new_tokens" in r.message]
    finally:
        gen.config = old


def test_max_example_words_cuts_long_in_context_examples(smol_tokenizer):
    from datasets import Dataset

    long_doc = " ".join(f"w{i}" for i in range(300))
    pool = Dataset.from_dict({"id": ["a", "b"], "text": [long_doc, "short one here"], "label": [0, 1], "source": ["real"] * 2})
    gen = _tiny_generator(smol_tokenizer, SST2, num_examples=2, max_example_words=20)
    prompt = gen.build_prompts(pool, 1, seed=0)[0]
    assert "w19 …" in prompt and "w20" not in prompt and "short one here" in prompt
    uncut = _tiny_generator(smol_tokenizer, SST2, num_examples=2).build_prompts(pool, 1, seed=0)[0]
    assert "w299" in uncut
    with pytest.raises(ConfigError, match="generator.max_example_words"):
        GeneratorConfig(max_example_words=-1)
