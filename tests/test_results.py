"""Results: the SIGnAL-vs-baselines comparison (hand-computed) and its place in the report."""

from __future__ import annotations

import pytest

from importlib.metadata import version

from signal_hf.results import ResultsLog, compare_endpoints, compare_methods, write_report


def _rows(method: str, curve: dict[int, list[float]]) -> list[dict]:
    return [
        {"method": method, "seed": seed, "round": step // 10 - 1, "step_percent": step, "accuracy": acc}
        for step, accs in curve.items()
        for seed, acc in enumerate(accs)
    ]


# signal: 10% band [.80, .82] above random's [.70, .72] (win); 20% [.70, .72] overlaps [.70, .74] (tie);
# 40% [.50, .50] below [.60, .62] (loss); 30% only signal has (not compared).
SIGNAL = _rows("signal", {10: [0.80, 0.82], 20: [0.70, 0.72], 30: [0.9, 0.9], 40: [0.50, 0.50]})
RANDOM = _rows("random", {10: [0.70, 0.72], 20: [0.70, 0.74], 40: [0.60, 0.62]})


def test_compare_methods_hand_computed():
    (c,) = compare_methods(SIGNAL + RANDOM)
    assert (c["method"], c["other"], c["steps"]) == ("signal", "random", [10, 20, 40])
    assert c["verdicts"] == ["win", "tie", "loss"]
    assert (c["wins"], c["ties"], c["losses"], c["n"]) == (1, 1, 1, 2)
    # per-seed averages over 10/20/40: signal 2/3 and .68; random 2/3 and 2.08/3
    assert c["mean"] == pytest.approx((2.0 / 3 + 0.68) / 2)
    assert c["std"] == pytest.approx((0.68 - 2.0 / 3) / 2)
    assert c["other_mean"] == pytest.approx(0.68)
    assert c["other_std"] == pytest.approx((2.08 / 3 - 2.0 / 3) / 2)


def test_compare_methods_every_signal_variant_against_every_other():
    gen = _rows("signal-gen", {10: [0.5, 0.5], 110: [0.9, 0.9]})
    pairs = [(c["method"], c["other"]) for c in compare_methods(SIGNAL + RANDOM + gen)]
    assert pairs == [("signal", "random"), ("signal", "signal-gen"), ("signal-gen", "random"), ("signal-gen", "signal")]
    # 110% is only reached by signal-gen: never compared
    assert all(c["steps"] == [10] for c in compare_methods(gen + RANDOM))
    assert compare_methods(RANDOM) == []


def test_compare_endpoints_hand_computed():
    # signal-gen ends at 110 % ([.80, .84]); random ends at 40 % ([.60, .62]); signal ends at 40 % too.
    gen = _rows("signal-gen", {10: [0.5, 0.5], 110: [0.80, 0.84]})
    out = compare_endpoints(SIGNAL + RANDOM + gen)
    assert [(c["method"], c["other"]) for c in out] == [("signal-gen", "random"), ("signal-gen", "signal")]
    c = out[0]
    assert (c["at"], c["other_at"], c["verdict"]) == (110, 40, "win")
    assert c["seed_diffs"] == pytest.approx([0.20, 0.22])
    assert (c["diff"], c["diff_std"]) == pytest.approx((0.21, 0.01))
    # against signal's [.50, .50] at 40 %: per seed +.30 and +.34
    assert out[1]["seed_diffs"] == pytest.approx([0.30, 0.34])
    # a lower end that overlaps is a tie, one wholly below a loss
    low = _rows("signal-gen", {110: [0.58, 0.62]})
    assert compare_endpoints(RANDOM + low)[0]["verdict"] == "tie"
    lower = _rows("signal-gen", {110: [0.40, 0.42]})
    assert compare_endpoints(RANDOM + lower)[0]["verdict"] == "loss"
    # methods that end at the same checkpoint are the checkpoint table's business, not this one's
    assert compare_endpoints(SIGNAL + RANDOM) == []


def test_report_states_wins_ties_losses(tmp_path):
    log = ResultsLog(tmp_path)
    for r in SIGNAL + RANDOM:
        log.append(r)
    write_report(tmp_path, title="t")
    text = (tmp_path / "summary.md").read_text()
    assert "| signal | random | 10–40% (3) | 1 | 1 | 1 | 67.3 ± 0.7 | 68.0 ± 1.3 |" in text
    assert "at its last checkpoint" not in text  # both end at 40 %: no end-point table
    assert f"torch {version('torch')}, transformers {version('transformers')}" in text
    only_random = tmp_path / "r"
    log = ResultsLog(only_random)
    for r in RANDOM:
        log.append(r)
    write_report(only_random)
    assert "| vs |" not in (only_random / "summary.md").read_text()


def test_report_states_the_end_point_comparison(tmp_path):
    log = ResultsLog(tmp_path)
    for r in RANDOM + _rows("signal-gen", {10: [0.5, 0.5], 110: [0.80, 0.84]}):
        log.append(r)
    write_report(tmp_path, title="t")
    text = (tmp_path / "summary.md").read_text()
    assert "| signal-gen | 110% | 82.0 ± 2.0 | random | 40% | 61.0 ± 1.0 | win | +21.0 ± 1.0 | +20.0, +22.0 |" in text


def test_grid_folder_is_read_through_its_seeds_and_merges_with_a_run(tmp_path):
    # A grid's output folder: one results.jsonl per seed under seeds/seed-<s>, none of its own.
    for seed in (0, 1):
        log = ResultsLog(tmp_path / "grid" / "seeds" / f"seed-{seed}")
        for r in RANDOM:
            if r["seed"] == seed:
                log.append(r)
    run = ResultsLog(tmp_path / "run")
    for r in SIGNAL:
        run.append(r)
    table, _ = write_report(tmp_path / "merged", sources=[tmp_path / "grid", tmp_path / "run"])
    assert "| random | 71.0 ± 1.0 | 72.0 ± 2.0 |" in table
    assert "| signal | random | 10–40% (3) | 1 | 1 | 1 |" in (tmp_path / "merged" / "summary.md").read_text()
    # Without keep_rows the merged folder holds no rows of its own; a grid's report (written into the
    # grid folder itself) must not either, or it would hide the seeds' files from later reads.
    assert not (tmp_path / "merged" / "results.jsonl").exists()
    write_report(tmp_path / "grid", sources=[tmp_path / "grid" / "seeds" / "seed-0", tmp_path / "grid" / "seeds" / "seed-1"])
    assert not (tmp_path / "grid" / "results.jsonl").exists()
    with pytest.raises(ValueError, match="one of the runs it reads"):
        write_report(tmp_path / "run", sources=[tmp_path / "grid", tmp_path / "run"], keep_rows=True)
    (tmp_path / "empty" / "seeds").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="output_dir of a run or of a grid"):
        write_report(tmp_path / "m2", sources=[tmp_path / "empty"])


def test_plot_draws_the_two_signal_variants_apart(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from signal_hf.results import plot_learning_curves, summarize

    styles: dict[str, str] = {}
    looks: dict[str, tuple] = {}
    original = Axes.plot

    def spy(self, *args, **kwargs):
        styles[kwargs.get("label")] = kwargs.get("ls", "-")
        looks[kwargs.get("label")] = (kwargs.get("ls", "-"), kwargs.get("marker"), kwargs.get("color"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", spy)
    gen = [dict(r, method="signal-gen") for r in SIGNAL]
    plot_learning_curves(summarize(SIGNAL + gen + RANDOM), tmp_path / "a.png")
    assert styles == {"random": "-", "signal": "--", "signal-gen": "-"}
    styles.clear()
    plot_learning_curves(summarize(SIGNAL + RANDOM), tmp_path / "b.png")  # one variant: solid
    assert styles == {"random": "-", "signal": "-"} and (tmp_path / "b.png").stat().st_size > 0
    # Three variants (pool, generative, frozen generator), or four tagged ones with none named *-gen:
    # every variant black, and no two alike (the frozen ablation once drew exactly like the pool signal).
    for names in (["signal-gen", "signal-gen-norl"], ["signal-gen @32", "signal-gen @64", "signal-gen-norl @32", "signal-gen-norl @64"]):
        looks.clear()
        rows = SIGNAL + RANDOM + [dict(r, method=n) for n in names for r in SIGNAL]
        rows = [r for r in rows if r["method"] != "signal" or names[0] == "signal-gen"]
        plot_learning_curves(summarize(rows), tmp_path / "c.png")
        variants = {k: v for k, v in looks.items() if k.startswith("signal")}
        assert len(variants) == len(set(variants.values())) == len(names) + (names[0] == "signal-gen")
        assert {color for _, _, color in variants.values()} == {"black"} and sum(ls == "-" for ls, _, _ in variants.values()) == 1


def test_a_merge_of_runs_on_different_datasets_is_refused(tmp_path):
    for name, rows, dataset in (("a", RANDOM, "sst2"), ("b", SIGNAL, "ag_news")):
        log = ResultsLog(tmp_path / name)
        for r in rows:
            log.append({**r, "dataset": dataset})
    with pytest.raises(ValueError, match=r"different datasets \(ag_news, sst2\)"):
        write_report(tmp_path / "merged", sources=[tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "merged").exists()  # refused before anything is written


def test_the_report_shows_the_probe_of_the_rl_effect(tmp_path):
    from signal_hf.probe_report import probe_table

    rows = [dict(r) for r in RANDOM]
    for seed, (on, off, low) in enumerate(((1.0, 0.5, 0.2), (0.8, 0.6, -0.1))):
        rows.append({"method": "signal-gen", "seed": seed, "round": 1, "step_percent": 20, "accuracy": 0.7,
                     "probe_reward_on": on, "probe_reward_off": off, "probe_gain": on - off, "probe_gain_low": low})
    table = probe_table(rows)
    assert "| signal-gen | 1 | 0.9 ± 0.1 | 0.55 ± 0.05 | 0.35 | 1 of 2 (0) |" in table
    log = ResultsLog(tmp_path)
    for r in rows:
        log.append(r)
    write_report(tmp_path, title="t")
    assert table in (tmp_path / "summary.md").read_text() and (tmp_path / "probe_rewards.png").stat().st_size > 0
    assert probe_table(RANDOM) == ""  # no generative rows, no section


def test_rows_by_seed_keys_one_methods_rows_by_seed_and_checkpoint():
    from signal_hf.results import rows_by_seed

    rows = [{"method": "a", "seed": 0, "step_percent": 10, "accuracy": 0.5}, {"method": "a", "seed": 1, "step_percent": 10, "accuracy": 0.6},
            {"method": "a", "seed": 0, "step_percent": 20, "accuracy": 0.7}, {"method": "b", "seed": 0, "step_percent": 10, "accuracy": 0.9}]
    got = rows_by_seed(rows, "a")
    assert sorted(got) == [0, 1] and sorted(got[0]) == [10, 20]
    assert got[0][20]["accuracy"] == 0.7 and got[1][10]["accuracy"] == 0.6
    assert rows_by_seed(rows, "c") == {}


def test_seed_interval_is_student_t_over_seeds():
    from signal_hf.results import seed_interval

    # [1, 2, 3]: mean 2, sd 1, t(0.975, 2) = 4.3027 → half-width 4.3027 / sqrt(3) = 2.4841.
    mean, low, high = seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and abs(low - (2 - 2.4841)) < 1e-3 and abs(high - (2 + 2.4841)) < 1e-3
    assert seed_interval([5.0, 5.0]) == (5.0, 5.0, 5.0)
    from signal_hf.results import format_seed_interval

    assert format_seed_interval([1.0, 2.0, 3.0]) == "+2.0 [-0.5, +4.5]; per seed +1.0, +2.0, +3.0"
    assert format_seed_interval([1.0, 2.0, 3.0], digits=2) == "+2.00 [-0.48, +4.48]; per seed +1.0, +2.0, +3.0"
    with pytest.raises(ValueError, match="at least 2"):
        seed_interval([1.0])
