# base -> development -> production (CPU), and neuron (Inferentia2 / Trainium1).
# Models load from local paths only (HF_HUB_OFFLINE=1).
# BASE_IMAGE_TAG: the python image of the CPU targets. NEURON_IMAGE_TAG: AWS's Neuron inference
# image of the last SDK with the XLA-based torch-neuronx (2.31.0, torch 2.9).
ARG BASE_IMAGE_TAG=3.11-slim
ARG NEURON_IMAGE_TAG=2.9.0-neuronx-py312-sdk2.31.0-ubuntu24.04

FROM python:${BASE_IMAGE_TAG} AS base
# torch's CPU wheel from PyTorch's index (PyPI's Linux wheels are CUDA builds)
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN apt-get update && apt-get install -y --no-install-recommends make gcc git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Every pinned dependency (torch included) in a layer of its own: a code change does not reinstall them.
COPY constraints.txt Makefile ./
RUN make deps
COPY pyproject.toml README.md ./
COPY src ./src
RUN make install EXTRAS=

FROM base AS development
COPY . .
RUN make install
CMD ["make", "test"]

# The pipeline only: no framework tests; runs as a non-root user.
FROM base AS production
COPY pytest.ini conftest.py ./
COPY pipeline_tests ./pipeline_tests
COPY fixtures ./fixtures
COPY config ./config
RUN useradd --create-home --uid 10001 mlcompile && mkdir -p registry outputs && chown mlcompile registry outputs
USER 10001
# Registry and outputs are volumes, so runs keep their artifacts and registered versions.
VOLUME ["/app/registry", "/app/outputs"]
ENTRYPOINT [".venv/bin/mlcompile"]
CMD ["run"]

# AWS's image brings torch 2.9, torch-neuronx and neuronx-cc; the venv sees them (system site packages)
# and adds mlcompile with the Neuron profile's pins. Run with --device=/dev/neuron0 (one per chip).
FROM public.ecr.aws/neuron/pytorch-inference-neuronx:${NEURON_IMAGE_TAG} AS neuron
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 COMPILER=neuron
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints-neuron.txt README.md Makefile ./
COPY src ./src
RUN make install NEURON=1 NEURON_AWS=0 VENV_ARGS=--system-site-packages
COPY . .
VOLUME ["/app/registry", "/app/outputs"]
ENTRYPOINT [".venv/bin/mlcompile"]
CMD ["run"]
