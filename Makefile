# The pipeline: make folds train ensemble submit. `make help` lists every target.
# Artifacts are real files, so make skips finished work; each script also refuses to
# overwrite finished work made from a different spec (FORCE=1 rebuilds it).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
# GPU=1: the CUDA-enabled build of the same TensorFlow pin (tensorflow[and-cuda]); its own stamp, so it installs once
# CLUSTER=1 (or BACKEND=dask): also dask[distributed] for fold jobs on a Dask cluster (requirements-cluster.txt)
CLUSTER_DEPS := $(if $(filter 1,$(CLUSTER))$(filter dask,$(BACKEND)),requirements-cluster.txt)
STAMP  := $(VENV)/.installed$(if $(filter 1,$(GPU)),-gpu)$(if $(CLUSTER_DEPS),-cluster)
TF_PIN := $(shell sed -n 's/^tensorflow==\([^ ]*\).*/\1/p' requirements.txt)
# Artifacts live under the workspace: the repo itself unless PIPELINE_ROOT says otherwise.
W      := $(or $(PIPELINE_ROOT),$(CURDIR))
CONFIG ?= $(CURDIR)/pipeline.toml
# make test: pytest-xdist worker processes (0: the whole suite in this one process)
TEST_JOBS ?= 2
# VERBOSE=1: TensorFlow's C++ start-up lines too (core/quiet.py keeps them out otherwise)
export CONFIG PIPELINE_ROOT FORCE N_JOBS BACKEND DASK_SCHEDULER DEVICES PRECISION BUDGET VERBOSE

show    = $(shell [ -x $(PY) ] && $(PY) -m core.show $(1))
# The competition's files, each seen through the fingerprint of its bytes (input/.<file>.sha256): what depends on
# a file is rebuilt when its content changes, whatever its timestamp (an unzip keeps the archive's), and not when
# it is only touched. test.csv replaced (Kaggle's stage 2): the models predict it anew, the blends and the
# submission follow; sample_submission.csv: the submission is written again; train.csv: the folds are checked.
FILES  := $(or $(shell [ -x $(PY) ] && $(PY) -m core.show files 2>/dev/null),train.csv test.csv sample_submission.csv)
print   = $(W)/input/.$(1).sha256
TRAIN  := $(call print,$(word 1,$(FILES)))
TEST   := $(call print,$(word 2,$(FILES)))
SAMPLE := $(call print,$(word 3,$(FILES)))
FOLDS  := $(W)/folds/folds.csv
# MODELS=a,b (or "a b") on the command line: only those models; `models.catalogue` refuses a name not in it.
# Unset: the models the run's plan takes (models.plan: BUDGET minutes and measured speeds; models/plan.json)
comma  := ,
ASKED  := $(if $(filter command line,$(origin MODELS)),$(subst $(comma), ,$(MODELS)))
override MODELS = $(or $(ASKED),$(shell [ -x $(PY) ] && $(PY) -m models.plan names))
MODULES = $(shell $(PY) -m models.catalogue modules $(ASKED) 2>/dev/null)
BLENDS  = $(call show,blends)
# The configuration and the base file it names (`base = "pipeline.toml"`): a change to either reruns what reads it
CONFIG_FILES := $(or $(call show,config-files),$(CONFIG))
BLEND  ?= $(shell [ -x $(PY) ] && $(PY) -m ensembles.blend --chosen)

.PHONY: help setup doctor plan data demo local-competition folds modules module train predict clean-model ensemble \
        submit leaderboard report kaggle-submit kaggle-status kaggle-leaderboard kernel kernel-push kernel-submit \
        kernel-status kernel-output kernel-dataset kernel-dataset-upload kernel-standins tensorboard test bench clean \
        ALWAYS

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv with the pinned dependencies (idempotent); GPU=1 adds TensorFlow's CUDA libraries, CLUSTER=1 Dask
$(STAMP): requirements.txt $(CLUSTER_DEPS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(if $(filter 1,$(GPU)),$(PY) -m pip install --quiet "tensorflow[and-cuda]==$(TF_PIN)")
	$(if $(CLUSTER_DEPS),$(PY) -m pip install --quiet -r $(CLUSTER_DEPS))
	touch $@

doctor: $(STAMP) ## Which devices TensorFlow sees, and why not a GPU; what DEVICES / PRECISION select
	$(PY) -m models.devices

# ---- input ----
data: $(STAMP) ## Download the competition into input/ with the kaggle CLI (needs credentials)
	$(PY) -m input.download

demo: $(STAMP) ## Offline default: a synthetic demo competition (unless input/ holds one), then the whole pipeline and its report
	$(PY) -m input.demo
	$(MAKE) folds train ensemble submit leaderboard report

local-competition: $(STAMP) ## Split a labelled CSV into a local competition: SOURCE=file.csv [TEST_FRACTION=0.2]
	$(PY) -m input.local_competition --source "$(SOURCE)" $(if $(TEST_FRACTION),--test-fraction $(TEST_FRACTION))

# ---- folds ----
folds: $(FOLDS) ## Stratified K-fold assignment: folds/folds.csv
$(FOLDS): $(TRAIN) $(CONFIG_FILES) | $(STAMP)
	$(PY) -m folds.make_folds

.SECONDARY: $(TRAIN) $(TEST) $(SAMPLE)      # kept, though only pattern rules name them
$(W)/input/.%.sha256: ALWAYS
	@test -f "$(W)/input/$*" || { echo "error: $(W)/input/$* not found. Get a competition first: make data (Kaggle), make demo (offline), or make local-competition SOURCE=file.csv" >&2; exit 2; }
	@sha256sum < "$(W)/input/$*" > "$@.tmp" && { cmp -s "$@.tmp" "$@" && rm "$@.tmp" || mv "$@.tmp" "$@"; }

# ---- models ----
modules: $(STAMP) ## Build the local hub modules into models/hub/ (skips those already built; MODELS=a,b: only theirs)
ifeq ($(ASKED),)
	$(PY) -m models.modules.build
else
	@$(PY) -m models.catalogue models $(ASKED) > /dev/null
	$(if $(MODULES),$(PY) -m models.modules.build $(addprefix --name ,$(MODULES)),@echo "$(ASKED): no local hub module to build")
endif

module: $(STAMP) ## Build one word-vector module: VECTORS=path NAME=name [OPTS="--lowercase --vocab-limit N --oov-buckets N --combine mean --weights 0.7 0.3"]; VECTORS="a b" combines files
	$(PY) -m models.modules.word_vectors --vectors $(if $(VECTORS),$(foreach v,$(VECTORS),"$(v)"),"") --name "$(NAME)" $(OPTS)

train: $(STAMP) ## Train the models the plan takes (BUDGET=minutes), or MODELS=a,b, on every fold: models/<model>/ (N_JOBS=n; BACKEND=dask [DASK_SCHEDULER=tcp://host:port]; DEVICES=cpu:2, PRECISION=...)
	@$(PY) -m models.catalogue models $(ASKED) > /dev/null
	@$(PY) -m models.devices --line
	$(MAKE) modules MODELS="$(MODELS)"
	$(MAKE) $(foreach m,$(MODELS),$(W)/models/$(m)/metrics.json)
$(W)/models/%/metrics.json: $(FOLDS) $(CONFIG_FILES) $(TEST) | $(STAMP)
	$(PY) -m models.train --model $*

predict: $(STAMP) ## A new test set (Kaggle's stage 2): the trained models' fold models predict it, the blends score it, the submission follows; nothing trains
	$(PY) -m models.train --predict-only $(addprefix --model ,$(MODELS))
	$(MAKE) submit

clean-model: ## Delete one model's artifacts so it retrains: MODEL=name
	@test -n "$(MODEL)" || { echo "usage: make clean-model MODEL=name" >&2; exit 2; }
	rm -rf "$(W)/models/$(MODEL)"

# ---- ensembles ----
ensemble: $(STAMP) ## Blend the models: ensembles/<blend>/ with OOF-tuned thresholds
	$(MAKE) $(foreach b,$(BLENDS),$(W)/ensembles/$(b)/metrics.json)
$(W)/ensembles/%/metrics.json: $(CONFIG_FILES) $(foreach m,$(MODELS),$(W)/models/$(m)/metrics.json) | $(STAMP)
	$(PY) -m ensembles.blend --blend $*

# ---- submit ----
submit: $(STAMP) ## Write the validated submission of the blend sent ([ensemble] default, else the best nested score; submit/sent.json says why), or BLEND=name: submit/<BLEND>.csv
	$(MAKE) $(W)/submit/$(BLEND).csv
$(W)/submit/%.csv: $(W)/ensembles/%/metrics.json $(TEST) $(SAMPLE) | $(STAMP)
	$(PY) -m submit.make_submission --blend $*

leaderboard: $(STAMP) ## Compare every model and blend: submit/leaderboard.md [PUBLIC_LB=leaderboard.csv]
	$(PY) -m submit.leaderboard $(if $(PUBLIC_LB),--public "$(PUBLIC_LB)")

report: $(STAMP) ## One offline HTML page with curves, thresholds and the leaderboard: submit/report.html
	$(PY) -m submit.report

kaggle-submit: $(STAMP) ## Send a submission file to Kaggle: BLEND=name MESSAGE="..."
	$(PY) -m submit.kaggle_cli submit --blend "$(BLEND)" --message "$(MESSAGE)"

kaggle-status: $(STAMP) ## List your recent Kaggle submissions and scores
	$(PY) -m submit.kaggle_cli status

kaggle-leaderboard: $(STAMP) ## Download the public leaderboard, then: make leaderboard PUBLIC_LB=<the zip>
	$(PY) -m submit.kaggle_cli leaderboard

plan: $(STAMP) ## The models a BUDGET (minutes; default [plan] budget_minutes) takes here, each one's predicted minutes, and why the others are left out; the kernel's plan
	$(PY) -m models.plan

kernel: $(STAMP) ## Write a ready-to-push Kaggle kernel folder: submit/kernel/ (refuses what the kernel cannot run)
	$(PY) -m submit.kernel write

kernel-push: $(STAMP) ## Push the kernel folder as a new version (Kaggle's refusal is an error)
	$(PY) -m submit.kernel push

kernel-status: $(STAMP) ## Poll the kernel's latest run until complete or failed (a failure shows the log's tail)
	$(PY) -m submit.kernel status

kernel-output: $(STAMP) ## Download the kernel's latest output: submit/kernel-output/
	$(PY) -m submit.kernel output

kernel-submit: $(STAMP) ## Submit a kernel version's output: VERSION=n MESSAGE="..." (refused if its run failed)
	$(PY) -m submit.kernel submit --version "$(VERSION)" --message "$(MESSAGE)"

kernel-dataset: $(STAMP) ## Write the built modules the kernel needs as a dataset folder: submit/kernel-dataset/
	$(PY) -m submit.kernel dataset

kernel-dataset-upload: $(STAMP) ## Create (or version) that dataset on Kaggle [NOTES="..."]
	$(PY) -m submit.kernel dataset --upload --notes "$(NOTES)"

kernel-standins: $(STAMP) ## For running here only: GloVe 6B 50-d written where the competition's embeddings go
	$(PY) -m input.standins

tensorboard: $(STAMP) ## Serve the training logs on 127.0.0.1
	$(VENV)/bin/tensorboard --logdir "$(W)/models" --host 127.0.0.1

# ---- quality ----
test: $(STAMP) ## Run the test suite (TEST_JOBS=2 worker processes, a test file each at a time)
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile tests

bench: $(STAMP) ## Benchmarks on the shared real sample: submit/bench.md [ONLY=quality,notebook,cache,use,minilm|mpnet|scale|finetune] [CATALOGUE=1: every candidate, recorded for the plan] [COLD=1: modules built and timed]
	$(PY) -m tests.benchmarks.run $(if $(ONLY),--only $(ONLY)) $(if $(filter 1,$(CATALOGUE)),--catalogue) $(if $(filter 1,$(COLD)),--cold-modules)

clean: ## Delete every artifact (keeps input/ and built modules)
	rm -rf "$(W)"/folds/folds.* "$(W)"/ensembles/*/ "$(W)"/submit/*.csv "$(W)"/submit/*.json \
	       "$(W)"/submit/*.md "$(W)"/submit/*.html "$(W)"/submit/kernel
	find "$(W)/models" -mindepth 1 -maxdepth 1 -type d ! -name hub ! -name modules ! -name .cache -exec rm -rf {} +
