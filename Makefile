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

.PHONY: install seed run download compile validate upload test test-unit test-integration test-functional \
        list bench mlflow-server clean help

help:
	@echo "make install | run | test | bench | mlflow-server | seed | download | compile | validate | upload | list | clean"
	@echo "make projects.run/<project> COMPONENT=compile TASK=download-model|compile-model|validate-model|upload-model"

install: $(STAMP)

# torch is pinned to the CPU wheel first, then everything else installs with that pin as a constraint.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt torch
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Register the demo uncompiled model unless the registry has UNCOMPILED_WITH_ID already.
seed: install
	@$(MLCOMPILE) has-uncompiled || $(MLCOMPILE) seed

# The full pipeline (or the stages switched on by COMPILE_PIPELINE_EXECUTION_*).
run: seed
	$(MLCOMPILE) run

download compile validate upload: install
	$(MLCOMPILE) run --stage $@

# The form users of the reference implementation know.
STAGE_OF_download-model := download
STAGE_OF_compile-model := compile
STAGE_OF_validate-model := validate
STAGE_OF_upload-model := upload
projects.run/%: install
	@test "$(COMPONENT)" = compile || { echo "COMPONENT=$(COMPONENT): only COMPONENT=compile exists" >&2; exit 2; }
	@test -n "$(STAGE_OF_$(TASK))" || { echo "TASK=$(TASK): use download-model, compile-model, validate-model or upload-model" >&2; exit 2; }
	PROJECT=$* $(MLCOMPILE) run --stage $(STAGE_OF_$(TASK))

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

# The framework's own tests.
test: install
	$(PYTEST) tests -n $(WORKERS) -p no:cacheprovider

test-unit test-integration test-functional: install
	$(PYTEST) tests -m $(subst test-,,$@) -p no:cacheprovider

clean:
	rm -rf outputs
