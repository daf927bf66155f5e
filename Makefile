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
        list bench bench-overhead bench-growth mlflow-server webhook clean help lock test-neuron-profile lint

help:
	@echo "make install | run | test | lint | bench | mlflow-server | webhook | seed | download | compile | validate | upload | list | clean"
	@echo "make projects.build|unit|integration|functional|run/<project> COMPONENT=compile [RUNNER=local|docker]"
	@echo "make projects.run/<project> COMPONENT=compile TASK=download-model|compile-model|validate-model|upload-model"
	@echo "make projects.run/<project> COMPONENT=compile DOWNLOAD=true COMPILE=true TEST=true UPLOAD=true"

# Two fully pinned profiles (`make lock` refreshes both): constraints.txt for CPU hosts (torch 2.13),
# constraints-neuron.txt for Inferentia2 / Trainium1 (torch 2.9, the last line with the XLA-based
# torch-neuronx). NEURON=1 installs the Neuron profile, with torch-neuronx and neuronx-cc from AWS's
# index; NEURON_AWS=0 leaves those two out (the Neuron profile's torch on a machine without Neuron).
# The venv remembers its profile ($(VENV)/.profile), so later make commands keep it without NEURON=;
# NEURON=0 or NEURON=1 switches it (torch is reinstalled; AWS's packages leave with the Neuron profile).
INSTALLED_PROFILE := $(shell cat $(VENV)/.profile 2>/dev/null)
NEURON ?= $(if $(filter neuron%,$(INSTALLED_PROFILE)),1,0)
NEURON_AWS ?= $(if $(filter neuron-torch,$(INSTALLED_PROFILE)),0,1)
NEURON_INDEX := https://pip.repos.neuron.amazonaws.com
AWS_PINS := requirements/neuron-aws.txt
ifeq ($(NEURON),1)
CONSTRAINTS := constraints-neuron.txt
ifeq ($(NEURON_AWS),1)
PROFILE := neuron
NEURON_PACKAGES := --extra-index-url $(NEURON_INDEX) torch-neuronx neuronx-cc
else
PROFILE := neuron-torch
PIN_OPTIONS += --drop $(AWS_PINS)
endif
else
CONSTRAINTS := constraints.txt
PROFILE := cpu
endif
STAMP := $(VENV)/.installed-$(PROFILE)
# torch's CPU build from PyTorch's index (PyPI's Linux wheels of torch are CUDA builds: 3 GB of nvidia-*
# wheels and triton). TORCH_INDEX= takes torch wherever pip finds it (a local wheel, a mirror).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_FROM := $(if $(TORCH_INDEX),--no-deps --index-url $(TORCH_INDEX))
# SYSTEM_PACKAGES=1 (AWS's Neuron image): the venv sees the system Python's packages, and the versions it
# has replace the profile's pins, so the image's torch and torch-neuronx are used, not installed twice.
SYSTEM_PACKAGES ?= 0
VENV_ARGS ?=
ifeq ($(SYSTEM_PACKAGES),1)
VENV_ARGS += --system-site-packages
PIN_OPTIONS += --prefer-installed
endif
# EXTRAS= installs without the dev extra (the production image).
EXTRAS ?= [dev]
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# The pins this install uses: the profile's, as install_pins.py adjusts them.
PINS := $(VENV)/constraints.txt

install: $(STAMP)

MAKE_VENV = test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_ARGS) $(VENV)
WRITE_PINS = $(BIN)/python requirements/install_pins.py $(CONSTRAINTS) $(PIN_OPTIONS) > $(PINS)

# Every pinned package of the profile, before the project's code is there (a container layer).
deps:
	$(MAKE_VENV)
	$(WRITE_PINS)
	$(PIP) -c $(PINS) $(TORCH_FROM) torch
	$(PIP) -r $(PINS) $(if $(NEURON_PACKAGES),--extra-index-url $(NEURON_INDEX))

# torch first (from TORCH_INDEX), pinned by the profile; then everything else with the same pins.
$(STAMP): pyproject.toml $(CONSTRAINTS) requirements/install_pins.py
	$(MAKE_VENV)
	rm -f $(VENV)/.installed-*
	$(WRITE_PINS)
	$(if $(filter neuron,$(INSTALLED_PROFILE)),$(if $(filter-out neuron,$(PROFILE)),$(BIN)/pip uninstall --quiet --yes torch-neuronx neuronx-cc libneuronxla))
	$(PIP) -c $(PINS) $(TORCH_FROM) torch
	$(PIP) -c $(PINS) -e '.$(EXTRAS)' $(NEURON_PACKAGES)
	echo $(PROFILE) > $(VENV)/.profile
	touch $(STAMP)

# Re-resolve both profiles from pyproject.toml and requirements/*.in (pip-tools, in a venv of its own).
# The Neuron profile is resolved for the Python of AWS's Neuron image (NEURON_LOCK_PYTHON, 3.12) and for
# torch's CPU build: PyPI's torch wheel is a CUDA build, so its CUDA-only requirements (nvidia-*, triton)
# are dropped from the result. AWS's packages are pinned by hand from the Neuron SDK release notes
# (requirements/neuron-aws.txt).
NEURON_LOCK_PYTHON ?= python3.12
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --extra dev --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
CUDA_ONLY := ^(nvidia-|triton==)
lock:
	$(MAKE) lock-venv LOCK_VENV=.venv-lock LOCK_PYTHON=$(PYTHON)
	$(MAKE) lock-venv LOCK_VENV=.venv-lock-neuron LOCK_PYTHON=$(NEURON_LOCK_PYTHON)
	$(MAKE) lock-profile LOCK_VENV=.venv-lock OUT=constraints.txt IN=requirements/cpu.in
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' constraints.txt  # any 2.x.y build: CPU index or local wheel
	$(MAKE) lock-profile LOCK_VENV=.venv-lock-neuron OUT=constraints-neuron.txt IN=requirements/neuron.in
	awk '/^[^ ]/ { cuda = ($$0 ~ /$(CUDA_ONLY)/) } !cuda' constraints-neuron.txt > constraints-neuron.tmp
	mv constraints-neuron.tmp constraints-neuron.txt
	cat $(AWS_PINS) >> constraints-neuron.txt

.PHONY: lock-venv lock-profile
lock-venv:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(LOCK_PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check pip-tools==7.6.2; }
lock-profile:
	$(PIP_COMPILE) -o $(OUT) pyproject.toml $(IN)

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
# NEURON=1: the neuron image, and every Neuron device of this host (NEURON_DEVICES) passed to its containers
# through a compose file written here (docker-compose.neuron.yaml alone passes /dev/neuron0).
NEURON_DEVICES ?= $(wildcard /dev/neuron*)
DEVICES_COMPOSE := .neuron-devices.compose.yaml
DOCKER_NEURON := $(and $(filter docker,$(RUNNER)),$(filter 1,$(NEURON)))
COMPOSE_FILES ?= docker-compose.yaml docker-compose.$(COMPOSE_ENV).yaml $(if $(filter 1,$(NEURON)),docker-compose.neuron.yaml $(DEVICES_COMPOSE))
COMPOSE ?= docker compose $(addprefix -f ,$(COMPOSE_FILES))
DOWNLOAD ?= false
COMPILE ?= false
TEST ?= false
UPLOAD ?= false
TASKS := download-model compile-model validate-model upload-model
comma := ,
STAGE_OF_download-model := download
STAGE_OF_compile-model := compile
STAGE_OF_validate-model := validate
STAGE_OF_upload-model := upload
SWITCHES = COMPILE_PIPELINE_EXECUTION_DOWNLOAD=$(DOWNLOAD) COMPILE_PIPELINE_EXECUTION_COMPILE=$(COMPILE) \
	COMPILE_PIPELINE_EXECUTION_TEST=$(TEST) COMPILE_PIPELINE_EXECUTION_UPLOAD=$(UPLOAD)
LOCAL_INSTALL := $(if $(filter local,$(RUNNER)),install)$(if $(DOCKER_NEURON), $(DEVICES_COMPOSE))

.PHONY: $(DEVICES_COMPOSE)
$(DEVICES_COMPOSE):
	printf '%s\n' '# Written by make (NEURON_DEVICES): the Neuron devices of this host, for every service.' \
		'x-devices: &devices' '  devices: [$(subst $(eval) ,$(comma) ,$(strip $(NEURON_DEVICES)))]' 'services:' \
		$(foreach service,compile compile-seed $(addprefix compile-,$(TASKS) unit integration functional),'  $(service): *devices') > $@

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

# A real MLflow tracking server for REGISTRY=mlflow: sqlite store and artifacts under $(MLFLOW_DATA). Registry
# webhooks may post to a receiver on this host or network (`make webhook`: http, private addresses); MLflow
# encrypts the webhooks' secrets with a key kept in $(MLFLOW_DATA)/webhook-secret.key (so they survive a restart)
# and rereads its webhooks every 5 s (MLflow's default: 60 s).
MLFLOW_PORT ?= 5000
MLFLOW_DATA ?= mlflow-data
MLFLOW_WEBHOOK_ENV ?= MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true MLFLOW_WEBHOOK_CACHE_TTL=5
mlflow-server: install
	mkdir -p $(MLFLOW_DATA)
	test -s $(MLFLOW_DATA)/webhook-secret.key || (umask 077 && $(BIN)/python -c \
		'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' > $(MLFLOW_DATA)/webhook-secret.key)
	$(MLFLOW_WEBHOOK_ENV) MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY="$$(cat $(MLFLOW_DATA)/webhook-secret.key)" \
	$(BIN)/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri sqlite:///$(abspath $(MLFLOW_DATA))/mlflow.db \
		--artifacts-destination $(abspath $(MLFLOW_DATA))/artifacts

# Compile when a version is registered: the webhook receiver (mlcompile webhook serve) for PROJECT, compiling each
# new version of its UNCOMPILED_MODEL (REGISTRY=mlflow, MLFLOW_TRACKING_URI and WEBHOOK_SECRET from the environment;
# `mlcompile webhook create --url http://127.0.0.1:$(WEBHOOK_PORT)/` once, with the same secret).
WEBHOOK_PORT ?= 8765
webhook: install
	$(MLCOMPILE) webhook serve --port $(WEBHOOK_PORT)

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
	$(BIN)/actionlint -config-file .github/actionlint.yaml -shellcheck $(BIN)/shellcheck $(LINT_WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec $(LINT_COMPOSE_FILES)

# The framework's own tests.
TEST_MARKERS ?=
test: install
	$(PYTEST) tests -n $(WORKERS) -p no:cacheprovider $(if $(TEST_MARKERS),-m "$(TEST_MARKERS)")

test-unit test-integration test-functional: install
	$(PYTEST) tests -m $(subst test-,,$@) -p no:cacheprovider

# A registered model in fresh environments MLflow builds from the model's own requirements (uv), and the
# table of those environments' build times and sizes beside the uncompiled models' libraries.
.PHONY: test-serving serving-sizes
test-serving: install
	$(PYTEST) tests -m serving_env -p no:cacheprovider

serving-sizes: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tests.serving_env

# The unit and integration suites on the Neuron profile's torch, in a venv of their own (CI runs this).
test-neuron-profile:
	$(MAKE) install VENV=.venv-neuron-profile NEURON=1 NEURON_AWS=0
	$(MAKE) test VENV=.venv-neuron-profile NEURON=1 NEURON_AWS=0 TEST_MARKERS="unit or integration"

clean:
	rm -rf outputs
