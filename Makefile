# SA-SLM — every target sets up its own virtual environment first (.venv, CPU torch pinned first).
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo bench eval paper-mini corpus corpus-codes stage0 stage1 stage2 stage3 clean

# Training stages: make stage0 CONFIG=configs/stage0_tiny.yaml [LAUNCH=accelerate|deepspeed|torchrun] [ARGS="key=value ..."]
CONFIG ?=
LAUNCH ?= python
NPROC  ?= 1
ifeq ($(LAUNCH),accelerate)
  RUN := $(VENV)/bin/accelerate launch --num_processes $(NPROC)
else ifeq ($(LAUNCH),deepspeed)
  RUN := $(VENV)/bin/deepspeed --num_gpus $(NPROC)
else ifeq ($(LAUNCH),torchrun)
  RUN := $(VENV)/bin/torchrun --nproc_per_node $(NPROC)
else
  RUN := $(PY)
endif

$(STAMP): pyproject.toml scripts/setup_venv.sh
	VENV=$(VENV) bash scripts/setup_venv.sh
	touch $(STAMP)

setup: $(STAMP)

## make test: the whole suite (slow end-to-end tests included)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: skip the tests marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## make demo: answer a shipped spoken question with the built-in tiny model
demo: $(STAMP)
	$(VENV)/bin/sa-slm demo --out outputs/demo

## make bench: rollouts (batched vs transformers generate), stage-1 step (vs plain Talker), critic (vs free text),
## stage-3 step (time per phase)
bench: $(STAMP)
	$(PY) benchmarks/rollouts.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/critic.py
	$(PY) benchmarks/stage3_step.py

## make eval CONFIG=...: models over an eval manifest -> wavs, items.jsonl, summary, report/index.html
eval: $(STAMP)
	$(VENV)/bin/sa-slm eval --config $(or $(CONFIG),configs/eval_tiny.yaml) $(ARGS)

## make paper-mini [CONFIG=paper_mini_ci] [ARGS="seeds=[0]"]: the paper's tables in miniature on CPU (< 60 min on
## 2 cores): synthetic corpus (espeak-ng), stages 0-3 and the ablations over 3 seeds -> outputs/paper_mini/report/index.html
paper-mini: $(STAMP)
	$(VENV)/bin/sa-slm paper-mini --config $(or $(CONFIG),paper_mini) $(ARGS)

## make corpus: re-synthesise data/tiny_corpus (needs Debian espeak-ng; the result is committed)
corpus: $(STAMP)
	$(PY) scripts/make_tiny_corpus.py

## make stage0 CONFIG=...: speech tokenizer into the Talker code space (self-bootstrapped pairs)
stage0: $(STAMP)
	$(RUN) stages/stage0.py --config $(or $(CONFIG),configs/stage0_tiny.yaml) $(ARGS)

## make stage1 / stage2 CONFIG=...: SFT of the Talker + intent bridge (stage 2: + last Thinker layer, text CE)
stage1: $(STAMP)
	$(RUN) stages/stage1.py --config $(or $(CONFIG),configs/stage1_tiny.yaml) $(ARGS)

stage2: $(STAMP)
	$(RUN) stages/stage2.py --config $(or $(CONFIG),configs/stage2_tiny.yaml) $(ARGS)

## make stage3 CONFIG=...: closed-loop self-reward (UAPO) with the rubric critic
stage3: $(STAMP)
	$(RUN) stages/stage3.py --config $(or $(CONFIG),configs/stage3_tiny.yaml) $(ARGS)

## make corpus-codes: re-create data/tiny_corpus/manifest_codes.jsonl (stage 0 on tiny, then tokenize)
corpus-codes: $(STAMP)
	$(PY) stages/stage0.py --config configs/stage0_tiny.yaml
	$(VENV)/bin/sa-slm tokenize --manifest data/tiny_corpus/manifest.jsonl \
	  --out data/tiny_corpus/manifest_codes.jsonl --tokenizer outputs/stage0_tiny/tokenizer

clean:
	rm -rf $(VENV) outputs .pytest_cache
