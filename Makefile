# mlcompile make targets. Settings come from the environment, then config/dev.env
# (config/prod.env when CI=true), then config/projects/$(PROJECT).env.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MLCOMPILE := HF_HUB_OFFLINE=1 $(BIN)/mlcompile
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
STAMP := $(VENV)/.installed
# Test workers; 0 runs in one process.
WORKERS ?= 2

.PHONY: install deps seed run download compile validate upload test test-unit test-integration test-functional \
        list bench bench-overhead bench-growth mlflow-server clean help lock test-neuron-profile lint

help:
	@echo "make install | run | test | lint | bench | mlflow-server | seed | download | compile | validate | upload | list | clean"
	@echo "make projects.build|unit|integration|functional|run/<project> COMPONENT=compile [RUNNER=local|docker]"
	@echo "make projects.run/<project> COMPONENT=compile TASK=download-model|compile-model|validate-model|upload-model"
	@echo "make projects.run/<project> COMPONENT=compile DOWNLOAD=true COMPILE=true TEST=true UPLOAD=true"

# Two fully pinned profiles (`make lock` refreshes both): constraints.txt for CPU hosts (torch 2.13),
# constraints-neuron.txt for Inferentia2 / Trainium1 (torch 2.9, the last line with the XLA-based
# torch-neuronx). NEURON=1 installs the Neuron profile, with torch-neuronx and neuronx-cc from AWS's
# index; NEURON_AWS=0 leaves those two out (the Neuron profile's torch on a machine without Neuron).
NEURON ?= 0
NEURON_AWS ?= 1
NEURON_INDEX := https://pip.repos.neuron.amazonaws.com
ifeq ($(NEURON),1)
CONSTRAINTS := constraints-neuron.txt
ifeq ($(NEURON_AWS),1)
NEURON_PACKAGES := --extra-index-url $(NEURON_INDEX) torch-neuronx neuronx-cc
endif
else
CONSTRAINTS := constraints.txt
endif
# EXTRAS= installs without the dev extra (the production image).
EXTRAS ?= [dev]
# VENV_ARGS=--system-site-packages: a venv that sees an image's preinstalled torch-neuronx.
VENV_ARGS ?=
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

install: $(STAMP)

# Every pinned package of the profile, before the project's code is there (a container layer).
deps:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_ARGS) $(VENV)
	$(PIP) -r $(CONSTRAINTS)

# torch first, pinned by the profile; then everything else with the same pins as constraints.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_ARGS) $(VENV)
	$(PIP) -c $(CONSTRAINTS) torch
	$(PIP) -c $(CONSTRAINTS) -e '.$(EXTRAS)' $(NEURON_PACKAGES)
	touch $(STAMP)

# Re-resolve both profiles from pyproject.toml and requirements/*.in (pip-tools, in its own venv).
# AWS's packages are pinned by hand from the Neuron SDK release notes (requirements/neuron-aws.txt).
LOCK_VENV := .venv-lock
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --extra dev --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check pip-tools==7.6.2; }
	$(PIP_COMPILE) -o constraints.txt pyproject.toml requirements/cpu.in
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' constraints.txt  # any 2.x.y build: CPU index or local wheel
	$(PIP_COMPILE) -o constraints-neuron.txt pyproject.toml requirements/neuron.in
	cat requirements/neuron-aws.txt >> constraints-neuron.txt

# Register the demo uncompiled model unless the registry has UNCOMPILED_WITH_ID already.
seed: install
	$(MLCOMPILE) seed --if-missing

# The full pipeline (or the stages switched on by COMPILE_PIPELINE_EXECUTION_*).
run: seed
	$(MLCOMPILE) run

download compile validate upload: install
	$(MLCOMPILE) run --stage $@

# The targets users of the reference implementation know. RUNNER=local (default) runs here in .venv;
# RUNNER=docker runs the same through docker compose: docker-compose.yaml with docker-compose.dev.yaml
# (docker-compose.ci.yaml when CI=true), and docker-compose.neuron.yaml with NEURON=1. projects.run takes TASK=
# (one stage) or the switches DOWNLOAD= COMPILE= TEST= UPLOAD= (all false by default, as in the reference).
RUNNER ?= local
COMPOSE_ENV ?= $(if $(filter true 1 yes,$(CI)),ci,dev)
COMPOSE_FILES ?= docker-compose.yaml docker-compose.$(COMPOSE_ENV).yaml $(if $(filter 1,$(NEURON)),docker-compose.neuron.yaml)
COMPOSE ?= docker compose $(addprefix -f ,$(COMPOSE_FILES))
DOWNLOAD ?= false
COMPILE ?= false
TEST ?= false
UPLOAD ?= false
STAGE_OF_download-model := download
STAGE_OF_compile-model := compile
STAGE_OF_validate-model := validate
STAGE_OF_upload-model := upload
SWITCHES = COMPILE_PIPELINE_EXECUTION_DOWNLOAD=$(DOWNLOAD) COMPILE_PIPELINE_EXECUTION_COMPILE=$(COMPILE) \
	COMPILE_PIPELINE_EXECUTION_TEST=$(TEST) COMPILE_PIPELINE_EXECUTION_UPLOAD=$(UPLOAD)
LOCAL_INSTALL := $(if $(filter local,$(RUNNER)),install)

.PHONY: project-checks
project-checks:
	@test "$(COMPONENT)" = compile || { echo "COMPONENT=$(COMPONENT): only COMPONENT=compile exists" >&2; exit 2; }
	@test "$(RUNNER)" = local || test "$(RUNNER)" = docker || { echo "RUNNER=$(RUNNER): use local or docker" >&2; exit 2; }

projects.build/%: project-checks $(LOCAL_INSTALL)
	$(if $(filter docker,$(RUNNER)),PROJECT=$* $(COMPOSE) build,@echo "$*: built .venv (RUNNER=local)")

projects.unit/% projects.integration/% projects.functional/%: project-checks $(LOCAL_INSTALL)
	$(if $(filter docker,$(RUNNER)),PROJECT=$* $(COMPOSE) run --rm compile-$(LEVEL),PROJECT=$* $(PYTEST) tests -m $(LEVEL) -p no:cacheprovider)

projects.unit/%: LEVEL = unit
projects.integration/%: LEVEL = integration
projects.functional/%: LEVEL = functional

# Checked before anything is installed or seeded.
.PHONY: run-checks
run-checks: project-checks
	@test -z "$(TASK)" || test -n "$(STAGE_OF_$(TASK))" || { echo "TASK=$(TASK): use download-model, compile-model, validate-model or upload-model" >&2; exit 2; }
	@test -n "$(TASK)" || test "$(DOWNLOAD)$(COMPILE)$(TEST)$(UPLOAD)" != falsefalsefalsefalse || { echo "nothing to run: set TASK=download-model|compile-model|validate-model|upload-model, or DOWNLOAD=true COMPILE=true TEST=true UPLOAD=true (any of them)" >&2; exit 2; }

# The project's demo model is seeded first (PROJECT=$*), when the registry lacks UNCOMPILED_WITH_ID.
projects.run/%: run-checks $(LOCAL_INSTALL)
ifeq ($(RUNNER),docker)
	PROJECT=$* $(COMPOSE) run --rm compile-seed
	PROJECT=$* $(if $(TASK),$(COMPOSE) run --rm compile-$(TASK),$(SWITCHES) $(COMPOSE) run --rm compile)
else
	PROJECT=$* $(MLCOMPILE) seed --if-missing
	PROJECT=$* $(if $(TASK),$(MLCOMPILE) run --stage $(STAGE_OF_$(TASK)),$(SWITCHES) $(MLCOMPILE) run)
endif

list: install
	$(MLCOMPILE) list

# A real MLflow tracking server for REGISTRY=mlflow: sqlite store and artifacts under $(MLFLOW_DATA).
MLFLOW_PORT ?= 5000
MLFLOW_DATA ?= mlflow-data
mlflow-server: install
	mkdir -p $(MLFLOW_DATA)
	$(BIN)/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri sqlite:///$(abspath $(MLFLOW_DATA))/mlflow.db \
		--artifacts-destination $(abspath $(MLFLOW_DATA))/artifacts

# Throughput of each compiled backend against the uncompiled pipeline, side by side (PROJECT=...).
bench: seed
	$(MLCOMPILE) bench

# The pytest pipeline cold and warm against the same steps as a plain script (PROJECT=...).
bench-overhead: seed
	$(MLCOMPILE) bench --overhead

# The validate stage as the regression set grows to 100, 1,000 and 10,000 rows (PROJECT=..., SIZES=...).
SIZES ?= 100,1000,10000
bench-growth: seed
	$(MLCOMPILE) bench --growth --sizes $(SIZES)

# Real linters on the container and CI files (no Docker engine needed); `make test` runs them too.
LINT_DOCKERFILES ?= Dockerfile
LINT_WORKFLOWS ?= $(wildcard .github/workflows/*.yaml)
LINT_COMPOSE_FILES ?= $(wildcard docker-compose*.yaml)
LINT_SCRIPTS ?= .ci/run
lint:
	$(BIN)/shellcheck $(LINT_SCRIPTS)
	$(BIN)/hadolint --config .hadolint.yaml $(LINT_DOCKERFILES)
	$(BIN)/actionlint -shellcheck $(BIN)/shellcheck $(LINT_WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec $(LINT_COMPOSE_FILES)

# The framework's own tests.
TEST_MARKERS ?=
test: install
	$(PYTEST) tests -n $(WORKERS) -p no:cacheprovider $(if $(TEST_MARKERS),-m "$(TEST_MARKERS)")

test-unit test-integration test-functional: install
	$(PYTEST) tests -m $(subst test-,,$@) -p no:cacheprovider

# The unit and integration suites on the Neuron profile's torch, in a venv of their own (CI runs this).
test-neuron-profile:
	$(MAKE) install VENV=.venv-neuron-profile NEURON=1 NEURON_AWS=0
	$(MAKE) test VENV=.venv-neuron-profile NEURON=1 NEURON_AWS=0 TEST_MARKERS="unit or integration"

clean:
	rm -rf outputs
