"""The classifier Trainer: training, evaluate-based accuracy, the shared inference pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from signal_hf.acquisition import badge_gradient_embeddings
from signal_hf.classifier import ClassifierTrainer, PretrainedEncoder
from signal_hf.config import ClassifierConfig, DataConfig
from signal_hf.data import load_task


@pytest.fixture(scope="module")
def sst2():
    return load_task(DataConfig(dataset="sst2", max_test_samples=48))


@pytest.fixture(scope="module")
def trained(sst2, tmp_path_factory):
    cfg = ClassifierConfig(max_steps=6, max_length=32, learning_rate=1e-4, per_device_train_batch_size=8, per_device_eval_batch_size=16)
    tr = ClassifierTrainer(cfg, sst2.spec, output_dir=tmp_path_factory.mktemp("clf"), seed=0, train_dataset=sst2.train.select(range(24)), eval_dataset=sst2.test)
    before = {k: v.clone() for k, v in tr.model.named_parameters() if "classifier" in k}
    tr.train()
    return tr, before


def test_training_changes_weights_and_accuracy_matches_predictions(trained, sst2):
    tr, before = trained
    after = dict(tr.model.named_parameters())
    assert any(not torch.equal(before[k], after[k]) for k in before)
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
    # BADGE embeddings come from the un-normalised head input h: ‖g‖ = ‖h‖·‖onehot(ŷ) − p‖.
    g = out.grad_embeddings
    assert g.shape == (10, 2 * out.embeddings.shape[1])
    # Recompute h by hand through the model: pooler output of BERT feeds the classifier.
    enc = tr.processing_class(rows["text"][:], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        h = tr.model.bert(**enc).pooler_output
        probs = torch.softmax(tr.model.classifier(h), -1)
    assert torch.allclose(probs, out.probs, atol=1e-5)
    assert torch.allclose(badge_gradient_embeddings(probs, h), g, atol=1e-4)
    assert torch.allclose(torch.nn.functional.normalize(h, dim=-1), out.embeddings, atol=1e-5)
    # Order and batch size do not change the result.
    again = tr.pool_outputs(rows.select(list(range(9, -1, -1))))
    assert torch.allclose(again.probs.flip(0), out.probs, atol=1e-5)


def test_same_seed_same_model(sst2, tmp_path):
    cfg = ClassifierConfig(max_steps=3, max_length=32, per_device_train_batch_size=8)
    probs = []
    for _ in range(2):
        tr = ClassifierTrainer(cfg, sst2.spec, output_dir=tmp_path, seed=5, train_dataset=sst2.train.select(range(16)))
        tr.train()
        probs.append(tr.pool_outputs(sst2.test.select(range(8))).probs)
    assert torch.equal(probs[0], probs[1])


def test_pair_task_and_pretrained_encoder(tmp_path):
    task = load_task(DataConfig(dataset="qnli", max_test_samples=16))
    cfg = ClassifierConfig(max_steps=2, max_length=48, per_device_train_batch_size=4)
    tr = ClassifierTrainer(cfg, task.spec, output_dir=tmp_path, seed=0, train_dataset=task.train.select(range(8)))
    tr.train()
    out = tr.pool_outputs(task.test)
    assert out.probs.shape == (16, 2)
    enc = PretrainedEncoder(cfg)
    a = enc.embed(task.test.select(range(4)))
    b = enc.embed(task.test.select([3, 2, 1, 0]))  # cached by id, same vectors
    assert torch.allclose(a.flip(0), b) and torch.allclose(a.norm(dim=-1), torch.ones(4), atol=1e-5)
