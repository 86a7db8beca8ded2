"""The classifier backends (finetune / probe / setfit), pooling, the head, the step budget, MC dropout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset

from signal_hf.acquisition import badge_gradient_embeddings, get_strategy
from signal_hf.bundled import resolve_model_path
from signal_hf.classifier import ClassifierTrainer, LogisticHead, MeanPooledClassifier, fit_classifier
from signal_hf.classifier.head import select_c
from signal_hf.config import ClassifierConfig, DataConfig
from signal_hf.data import load_task
from signal_hf.encoder import SentenceEncoder, get_encoder, resolve_pooling
from signal_hf.types import AcquisitionState, MCDropout, TaskSpec


@pytest.fixture(scope="module")
def sst2():
    return load_task(DataConfig(dataset="sst2", max_test_samples=48))


def _finetune_cfg(steps: int, **kw) -> ClassifierConfig:
    return ClassifierConfig(backend="finetune", min_steps=steps, max_steps=steps, max_length=32, per_device_train_batch_size=8, per_device_eval_batch_size=16, **kw)


@pytest.fixture(scope="module")
def trained(sst2, tmp_path_factory):
    cfg = _finetune_cfg(6, pooling="cls", learning_rate=1e-4)
    tr = ClassifierTrainer(cfg, sst2.spec, output_dir=tmp_path_factory.mktemp("clf"), seed=0, train_dataset=sst2.train.select(range(24)), eval_dataset=sst2.test)
    before = {k: v.clone() for k, v in tr.model.named_parameters() if "classifier" in k}
    tr.train()
    return tr, before


def test_training_changes_weights_and_accuracy_matches_predictions(trained, sst2):
    tr, before = trained
    after = dict(tr.model.named_parameters())
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert tr.state.global_step == 6  # min_steps = max_steps = 6: exactly 6
    acc = tr.accuracy()
    out = tr.pool_outputs(sst2.test)
    manual = float((out.probs.argmax(-1).numpy() == np.asarray(sst2.test["label"][:])).mean())
    assert acc == pytest.approx(manual)


def test_pool_outputs_are_consistent(trained, sst2):
    tr, _ = trained
    rows = sst2.train.select(range(30, 40))
    out = tr.pool_outputs(rows, grad_embeddings=True)
    assert out.probs.shape == (10, 2) and torch.allclose(out.probs.sum(-1), torch.ones(10), atol=1e-5)
    assert torch.allclose(out.embeddings.norm(dim=-1), torch.ones(10), atol=1e-5)
    g = out.grad_embeddings
    assert g.shape == (10, 2 * out.embeddings.shape[1])
    # Recompute h by hand through the model: pooler output of BERT feeds the classifier.
    enc = tr.processing_class(rows["text"][:], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        h = tr.model.bert(**enc).pooler_output
        logits = tr.model.classifier(h)
    assert torch.allclose(torch.softmax(logits, -1), out.probs, atol=1e-5)
    assert torch.allclose(torch.log_softmax(logits, -1), out.log_probs, atol=1e-5)
    assert torch.allclose(badge_gradient_embeddings(torch.softmax(logits, -1), h), g, atol=1e-4)
    assert torch.allclose(torch.nn.functional.normalize(h, dim=-1), out.embeddings, atol=1e-5)
    again = tr.pool_outputs(rows.select(list(range(9, -1, -1))))
    assert torch.allclose(again.probs.flip(0), out.probs, atol=1e-5)


def test_same_seed_same_model(sst2, tmp_path):
    cfg = _finetune_cfg(3)
    probs = []
    for _ in range(2):
        tr = ClassifierTrainer(cfg, sst2.spec, output_dir=tmp_path, seed=5, train_dataset=sst2.train.select(range(16)))
        tr.train()
        probs.append(tr.pool_outputs(sst2.test.select(range(8))).probs)
    assert torch.equal(probs[0], probs[1])


def test_pooling_auto_reads_the_checkpoint(tmp_path):
    minilm = resolve_model_path("bundled:minilm")
    assert resolve_pooling(minilm, "auto") == "mean"  # sentence-transformers 1_Pooling/config.json
    assert resolve_pooling(minilm, "cls") == "cls"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert resolve_pooling(str(plain), "auto") == "cls"  # a plain encoder: BERT's [CLS] pooler
    (plain / "1_Pooling").mkdir()
    (plain / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    assert resolve_pooling(str(plain), "auto") == "cls"


def test_mean_pooled_finetune_head_reads_the_mean(sst2, tmp_path):
    """With pooling auto the bundled encoder trains a head on its mean-pooled tokens, and Φ is that mean."""
    tr = ClassifierTrainer(_finetune_cfg(2), sst2.spec, output_dir=tmp_path, seed=0, train_dataset=sst2.train.select(range(8)))
    assert isinstance(tr.model, MeanPooledClassifier)
    tr.train()
    rows = sst2.train.select(range(40, 46))
    out = tr.pool_outputs(rows)
    enc = tr.processing_class(rows["text"][:], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        hidden = tr.model.encoder(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        mean = (hidden * m).sum(1) / m.sum(1)
    assert torch.allclose(torch.nn.functional.normalize(mean, dim=-1), out.embeddings, atol=1e-5)
    assert torch.allclose(torch.softmax(tr.model.classifier(mean), -1), out.probs, atol=1e-5)


def test_train_steps_scale_with_the_labeled_set():
    c = ClassifierConfig(num_train_epochs=10, min_steps=100, max_steps=1000, per_device_train_batch_size=16)
    assert c.train_steps(7) == 100  # floor: tiny sets still train
    assert c.train_steps(673) == 10 * 43  # epochs: ceil(673 / 16) = 43 steps each
    assert c.train_steps(5000) == 1000  # ceiling
    assert ClassifierConfig(min_steps=100, max_steps=25).train_steps(7) == 25  # the ceiling wins
    assert ClassifierConfig(min_steps=0, max_steps=-1, num_train_epochs=1).train_steps(64) == 4


def test_logistic_head_matches_scikit_learn_and_keeps_missing_classes():
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(60, 8, generator=g), dim=-1)
    y = (x @ torch.randn(8, 3, generator=g)).argmax(1)
    assert set(y.tolist()) == {0, 1, 2}
    y_skew = torch.where(torch.arange(60) < 45, y, torch.zeros_like(y))  # mostly class 0
    for cw, ref_cw in (("none", None), ("balanced", "balanced")):
        for labels in (y, y_skew):
            head = LogisticHead(3, C=2.0, class_weight=cw).fit(x, labels)
            ref = LogisticRegression(C=2.0, class_weight=ref_cw, max_iter=5000, tol=1e-10).fit(x.numpy(), labels.numpy())
            ours = torch.softmax(head.logits(x), -1).numpy()
            assert np.allclose(ours, ref.predict_proba(x.numpy()), atol=2e-4), (cw, labels is y)
    # Balancing moves the skewed fit away from the majority class: the test can fail.
    skew_none = LogisticHead(3, class_weight="none").fit(x, y_skew).logits(x).argmax(1)
    skew_bal = LogisticHead(3, class_weight="balanced").fit(x, y_skew).logits(x).argmax(1)
    assert int((skew_bal != 0).sum()) > int((skew_none != 0).sum())
    # Class 3 never appears in y: it still gets a column, with a small but finite probability.
    head4 = LogisticHead(4).fit(x, y)
    logp = torch.log_softmax(head4.logits(x), -1)
    assert logp.shape == (60, 4) and bool(torch.isfinite(logp).all()) and float(logp[:, 3].exp().max()) < 0.2


def test_c_is_chosen_by_cross_validation_on_the_labeled_set():
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(40, 6, generator=g), dim=-1)
    separable = (x[:, 0] > 0).long()
    noise = torch.randint(0, 2, (40,), generator=g)
    grid = [0.1, 1.0, 10.0, 100.0]
    assert select_c(x, separable, 2, grid) == 100.0  # clean labels: the weakest penalty validates best
    assert select_c(x, noise, 2, grid) == 0.1  # labels unrelated to x: the strongest
    assert select_c(x[:3], torch.tensor([0, 0, 1]), 2, grid) == 1.0  # one row of a class: nothing to validate


def _toy_task() -> tuple[TaskSpec, Dataset, Dataset]:
    """A separable two-topic task: football match reports vs. baking recipes."""
    sport = ["the striker scored a late goal", "the keeper saved a penalty", "the team won the league match",
             "fans cheered the winning goal", "the coach praised his defenders", "a red card changed the game",
             "the midfielder hit the post twice", "the derby ended in a draw", "the club signed a new forward",
             "the referee added five minutes", "a hat trick sealed the title", "the away side scored first"]
    bake = ["whisk the eggs with the sugar", "bake the cake for forty minutes", "knead the dough until smooth",
            "add butter and a pinch of salt", "let the bread rise overnight", "sift the flour into the bowl",
            "melt the chocolate over water", "roll the pastry thin and chill it", "fold the cream into the batter",
            "preheat the oven to two hundred", "brush the loaf with milk", "cool the cookies on a rack"]
    texts = sport + bake
    labels = [0] * len(sport) + [1] * len(bake)
    ds = Dataset.from_dict({"id": [f"t{i}" for i in range(len(texts))], "text": texts, "label": labels})
    train_idx = [i for i in range(len(texts)) if i % 3 != 0]
    test_idx = [i for i in range(len(texts)) if i % 3 == 0]
    return TaskSpec(name="toy", label_names=("sport", "baking"), task_type="topic"), ds.select(train_idx), ds.select(test_idx)


@pytest.mark.parametrize(
    "cfg",
    [
        ClassifierConfig(backend="probe", max_length=32),
        ClassifierConfig(backend="finetune", max_length=32, min_steps=30, max_steps=30, per_device_train_batch_size=8),
        ClassifierConfig(backend="setfit", max_length=32, setfit_iterations=4, per_device_train_batch_size=16),
    ],
    ids=["probe", "finetune", "setfit"],
)
def test_each_backend_learns_a_separable_task(cfg, tmp_path):
    spec, train, test = _toy_task()
    clf = fit_classifier(cfg, spec, train, test, output_dir=tmp_path, seed=0)
    assert clf.accuracy() > 0.9
    out = clf.pool_outputs(test, grad_embeddings=True)
    # Every backend gives the strategies the same outputs: probabilities, exact log-probabilities,
    # unit-norm Φ, and BADGE embeddings of its head.
    assert out.probs.shape == (len(test), 2) and torch.allclose(out.log_probs.exp(), out.probs, atol=1e-6)
    assert torch.allclose(out.embeddings.norm(dim=-1), torch.ones(len(test)), atol=1e-5)
    assert out.grad_embeddings.shape == (len(test), 2 * out.embeddings.shape[1])


def test_probe_feature_is_the_encoders_mean_pooled_embedding(sst2):
    cfg = ClassifierConfig(backend="probe", max_length=32)
    clf = fit_classifier(cfg, sst2.spec, sst2.train.select(range(20)), sst2.test, output_dir="unused", seed=0)
    rows = sst2.test.select(range(5))
    enc = get_encoder(cfg.model_name_or_path, "auto", 32)
    assert enc.pooling == "mean"
    assert torch.allclose(clf.pool_outputs(rows).embeddings, enc.embed_dataset(rows), atol=1e-6)
    assert clf.accuracy() == pytest.approx(float((clf.pool_outputs(sst2.test).probs.argmax(-1).numpy() == np.asarray(sst2.test["label"][:])).mean()))


def test_encoder_rows_do_not_depend_on_the_call(tmp_path):
    """A text's vector is the same alone, with other texts of any length, and read back from the disk cache."""
    enc = SentenceEncoder("bundled:minilm", max_length=32, cache=tmp_path)
    a = "a quiet film"
    alone = enc._encode([a], None)[0]
    mixed = enc._encode(["a much longer sentence that is padded in an ordinary batch", a], None)[1]
    assert torch.equal(alone, mixed)
    first = enc.embed([a, "another text"])
    enc.save()
    again = SentenceEncoder("bundled:minilm", max_length=32, cache=tmp_path)
    assert len(again._vectors) == 2 and torch.equal(again.embed([a, "another text"]), first)
    # Pairs: the pair is part of the key.
    assert not torch.equal(enc.embed(["q"], ["s1"]), enc.embed(["q"], ["s2"]))


def test_mpnet_vectors_do_not_depend_on_their_companions():
    """With all-mpnet-base-v2 a batched forward of equal-length rows rounds ~half the rows ~1e-7 away
    from their vector alone (the BERT-KM drift of the demo); the encoder runs every text alone."""
    enc = SentenceEncoder("bundled:mpnet", max_length=64)
    texts = load_task(DataConfig(dataset="sst2")).test["text"][:16]
    together = torch.stack(enc._encode(texts, None))
    shuffled = torch.stack(enc._encode(texts[::-1], None)).flip(0)
    alone = torch.stack([enc._encode([t], None)[0] for t in texts[:8]])
    assert torch.equal(together, shuffled) and torch.equal(together[:8], alone)
    # The check can fail: the same rows run as one padded batch do differ.
    batch = enc.tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        hidden = enc.model(**batch).last_hidden_state
    batched = torch.nn.functional.normalize(enc._pool(hidden, batch["attention_mask"]), dim=-1)
    assert not torch.equal(batched, together)


def test_pair_task_backends(tmp_path):
    task = load_task(DataConfig(dataset="qnli", max_test_samples=16))
    cfg = ClassifierConfig(backend="finetune", min_steps=2, max_steps=2, max_length=48, per_device_train_batch_size=4)
    tr = fit_classifier(cfg, task.spec, task.train.select(range(8)), task.test, output_dir=tmp_path, seed=0)
    assert tr.pool_outputs(task.test).probs.shape == (16, 2)
    probe = fit_classifier(ClassifierConfig(backend="probe", max_length=48), task.spec, task.train.select(range(8)), task.test, output_dir=tmp_path, seed=0)
    out = probe.pool_outputs(task.test)
    assert out.probs.shape == (16, 2) and 0.0 <= probe.accuracy() <= 1.0


def test_interaction_pair_features_are_the_two_texts_encoded_alone():
    task = load_task(DataConfig(dataset="qnli", max_test_samples=6))
    enc = get_encoder("bundled:minilm", "auto", 48)
    rows = task.test
    u, v = enc.embed(rows["text"][:]), enc.embed(rows["text_pair"][:])
    feats = enc.embed_dataset(rows, "interaction")
    assert feats.shape == (6, 2 * enc.dim)
    assert torch.equal(feats, torch.cat([u * v, (u - v).abs()], 1))
    joint = enc.embed_dataset(rows, "joint")
    assert joint.shape == (6, enc.dim) and torch.equal(joint, enc.embed(rows["text"][:], rows["text_pair"][:]))
    # A single-text dataset has one vector per text whichever pair option is set.
    single = rows.remove_columns("text_pair")
    assert torch.equal(enc.embed_dataset(single, "interaction"), u)
    probe = fit_classifier(ClassifierConfig(backend="probe", max_length=48), task.spec, task.train.select(range(8)), rows, output_dir="unused", seed=0)
    assert torch.allclose(probe.pool_outputs(rows).embeddings, torch.nn.functional.normalize(feats, dim=-1), atol=1e-6)


def test_probe_learns_qnli_from_a_0_1_percent_pool_only_with_interaction_features():
    """The few-label QNLI probe: 105 labeled pairs, MiniLM. Encoded as one tokenizer pair, the frozen
    bi-encoder's vector stays at chance; each text encoded alone, [u ⊙ v, |u − v|] learns."""
    from signal_hf.data import sample_pool

    task = load_task(DataConfig(dataset="qnli", max_test_samples=300))
    pool = sample_pool(task, 0.001, 0)
    acc = {}
    for features in ("interaction", "joint"):
        cfg = ClassifierConfig(backend="probe", max_length=128, pair_features=features)
        acc[features] = fit_classifier(cfg, task.spec, pool, task.test, output_dir="unused", seed=0).accuracy()
    assert len(pool) == 105
    assert acc["interaction"] > 0.62 and acc["interaction"] - acc["joint"] > 0.08, acc


def test_encoder_vectors_do_not_depend_on_the_thread_count():
    """Matrix products round differently on 1 and 2 threads; the encoder always uses one."""
    texts = load_task(DataConfig(dataset="sst2")).test["text"][:120]
    enc = SentenceEncoder("bundled:minilm", max_length=64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = torch.stack(enc._encode(texts, None))
        torch.set_num_threads(2)
        two = torch.stack(enc._encode(texts, None))
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


# ------------------------------------------------------------------ MC dropout (BALD)


def test_finetune_mc_dropout_runs_the_networks_own_dropout(trained, sst2):
    tr, _ = trained
    rows = sst2.train.select(range(30, 40))  # one eval batch
    plain = tr.pool_outputs(rows)
    attention = [m for m in tr.model.modules() if type(m).__name__ == "BertSelfAttention"]
    seen: list[bool] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(m.training)) for m in attention]
    rng = torch.get_rng_state()
    try:
        out = tr.pool_outputs(rows, mc_dropout=MCDropout(samples=4, rate=0.5, seed=7))
    finally:
        for h in hooks:
            h.remove()
    assert torch.equal(torch.get_rng_state(), rng)  # seeded without moving the global random state
    assert not any(m.training for m in tr.model.modules())  # back in evaluation mode
    assert torch.equal(out.probs, plain.probs) and plain.mc_probs is None
    # The deterministic pass, then 4 with attention in training mode: BERT's attention-probability
    # dropout is gated by the attention module's own flag, not by an nn.Dropout module's.
    k = len(attention)
    assert k and seen == [False] * k + [True] * (4 * k)
    mc = out.mc_probs
    assert mc.shape == (4, 10, 2) and torch.allclose(mc.sum(-1), torch.ones(4, 10), atol=1e-5)
    assert not torch.allclose(mc[0], mc[1], atol=1e-4) and not torch.allclose(mc[0], plain.probs, atol=1e-4)
    # The same seed gives the same passes; the rate is the network's own (mc.rate is for head backends).
    assert torch.equal(tr.pool_outputs(rows, mc_dropout=MCDropout(4, 0.1, 7)).mc_probs, mc)
    assert not torch.equal(tr.pool_outputs(rows, mc_dropout=MCDropout(4, 0.5, 8)).mc_probs, mc)
    assert tr.pool_outputs(rows.select([]), mc_dropout=MCDropout(4, 0.5, 7)).mc_probs.shape == (4, 0, 2)


def test_head_backend_mc_dropout_drops_the_heads_input(tmp_path):
    spec, train, test = _toy_task()
    clf = fit_classifier(ClassifierConfig(backend="probe", max_length=32), spec, train, test, output_dir=tmp_path, seed=0)
    out = clf.pool_outputs(test, mc_dropout=MCDropout(samples=6, rate=0.3, seed=11))
    plain = clf.pool_outputs(test)
    assert torch.equal(out.probs, plain.probs) and plain.mc_probs is None
    # By hand: pass t keeps feature j of row i when its uniform draw is below 1 − p, scaled by 1/(1 − p).
    h = clf._embed(test)
    g = torch.Generator().manual_seed(11)
    by_hand = torch.stack([torch.softmax(clf.head.logits(h * (torch.rand(h.shape, generator=g) < 0.7).float() / 0.7), -1) for _ in range(6)])
    assert out.mc_probs.shape == (6, len(test), 2) and torch.allclose(out.mc_probs, by_hand, atol=1e-6)
    assert not torch.allclose(out.mc_probs[0], plain.probs, atol=1e-4)
    assert torch.equal(clf.pool_outputs(test, mc_dropout=MCDropout(6, 0.3, 11)).mc_probs, out.mc_probs)


def test_bald_on_real_probe_embeddings_is_valid_and_seeded(sst2):
    clf = fit_classifier(ClassifierConfig(backend="probe", max_length=32), sst2.spec, sst2.train.select(range(20)), sst2.test, output_dir="unused", seed=0)
    pool, labeled = sst2.train.select(range(20, 120)), sst2.train.select(range(20))

    def bald(seed: int) -> tuple[list[int], torch.Tensor]:
        mc = MCDropout(samples=10, rate=0.1, seed=seed)
        acq = AcquisitionState(unlabeled=clf.pool_outputs(pool, mc_dropout=mc), labeled=clf.pool_outputs(labeled, mc_dropout=mc), seed=seed)
        strategy = get_strategy("bald")
        return strategy.query(acq, 10).tolist(), strategy.scores(acq)

    picks, scores = bald(0)
    assert len(set(picks)) == 10 and all(0 <= i < 100 for i in picks)
    assert float(scores.min()) > -1e-9 and float(scores.max()) > 0  # mutual information: >= 0, not all 0
    assert picks == torch.sort(scores, descending=True, stable=True).indices[:10].tolist()
    again, again_scores = bald(0)
    assert again == picks and torch.equal(again_scores, scores)
    assert not torch.equal(bald(1)[1], scores)


def test_only_balds_trial_runs_mc_dropout_in_the_loop(tmp_path, monkeypatch):
    from signal_hf.classifier import ProbeClassifier
    from signal_hf.config import config_from_dict
    from signal_hf.loop import run_experiment
    from signal_hf.results import read_results

    calls: list[MCDropout | None] = []
    original = ProbeClassifier.pool_outputs
    monkeypatch.setattr(ProbeClassifier, "pool_outputs", lambda self, ds, **kw: calls.append(kw.get("mc_dropout")) or original(self, ds, **kw))
    cfg = config_from_dict({
        "name": "bald", "data": {"dataset": "sst2", "pool_fraction": 0.0005, "max_test_samples": 16},  # |R| = 34
        "classifier": {"backend": "probe", "max_length": 32},
        "acquisition": {"strategies": ["entropy", "bald"], "bald_mc_samples": 4},
        "loop": {"seeds": [0], "initial_fraction": 0.2, "step_fraction": 0.2, "max_fraction": 0.6},
        "output": {"output_dir": str(tmp_path), "plot": False},
    })
    run_experiment(cfg, show_progress=False)
    rows = {(r["method"], r["round"]): r for r in read_results(tmp_path)}
    # entropy's 3 rounds without MC, then bald's round 0 fitted apart (same seed: same model) and 2 more.
    assert [c is None for c in calls] == [True] * 3 + [False] * 3
    assert len({c.seed for c in calls[3:]}) == 3 and {c.samples for c in calls[3:]} == {4}
    assert rows[("bald", 0)]["accuracy"] == rows[("entropy", 0)]["accuracy"]
    assert [rows[("bald", r)]["labeled"] for r in range(3)] == [7, 14, 20]
    assert len(set(rows[("bald", 1)]["selected_ids"])) == 7


def test_finetune_reports_each_step_to_callbacks_and_the_round_progress(sst2, tmp_path, caplog):
    """The finetune backend's training curve reaches TrainerCallbacks (the tracker's), and the loop's
    StepProgress shows the steps on the progress line and as log lines."""
    import logging

    from transformers import TrainerCallback

    from signal_hf.classifier import fit_classifier
    from signal_hf.loop.training import StepProgress

    class Recorder(TrainerCallback):
        def __init__(self):
            self.logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append((state.global_step, dict(logs or {})))

    rec, phases = Recorder(), []
    with caplog.at_level(logging.INFO, logger="signal_hf.loop.training"):
        fit_classifier(_finetune_cfg(3), sst2.spec, sst2.train.select(range(16)), None, output_dir=tmp_path, seed=0,
                       callbacks=[rec, StepProgress(phases.append, 2, 16)])
    assert [s for s, logs in rec.logs if "loss" in logs] == [1, 2, 3]
    assert phases == [f"round 2: train on 16, step {k}/3" for k in (1, 2, 3)]
    assert [m for m in caplog.messages if "training step" in m] == [f"round 2: training step {k}/3" for k in (1, 2, 3)]
    # Logs are built only for a callback that reads them: the step progress alone leaves logging off.
    quiet = ClassifierTrainer(_finetune_cfg(3), sst2.spec, output_dir=tmp_path, seed=0, train_dataset=sst2.train.select(range(16)),
                              callbacks=[StepProgress(phases.append, 2, 16)])
    assert quiet.args.logging_strategy == "no"
