# base -> development -> production (CPU), and neuron (Inferentia2 / Trainium1).
# Models load from local paths only (HF_HUB_OFFLINE=1).
# BASE_IMAGE_TAG: the python image of the CPU targets. NEURON_IMAGE_TAG: AWS's Neuron inference
# image of the last SDK with the XLA-based torch-neuronx (2.31.0, torch 2.9).
ARG BASE_IMAGE_TAG=3.11-slim
ARG NEURON_IMAGE_TAG=2.9.0-neuronx-py312-sdk2.31.0-ubuntu24.04

FROM python:${BASE_IMAGE_TAG} AS base
# make takes torch's CPU wheel from PyTorch's index (TORCH_INDEX; PyPI's Linux wheels are CUDA builds)
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
RUN apt-get update && apt-get install -y --no-install-recommends make gcc git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Every pinned dependency (torch included) in a layer of its own: a code change does not reinstall them.
COPY constraints.txt Makefile ./
COPY requirements/install_pins.py ./requirements/
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

# AWS's image brings torch 2.9, torch-neuronx, neuronx-cc and Python 3.12. The venv sees them (system site
# packages) and adds mlcompile with the Neuron profile's pins, the image's own versions taking the place of
# the profile's (SYSTEM_PACKAGES=1): no second torch. Run with every /dev/neuron* of the host passed in
# (`make ... RUNNER=docker NEURON=1` does); without one it compiles (neuronx-cc needs no device) but does
# not validate.
FROM public.ecr.aws/neuron/pytorch-inference-neuronx:${NEURON_IMAGE_TAG} AS neuron
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 COMPILER=neuron
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints-neuron.txt README.md Makefile ./
COPY requirements ./requirements
COPY src ./src
RUN make install NEURON=1 SYSTEM_PACKAGES=1
COPY . .
VOLUME ["/app/registry", "/app/outputs"]
# The base image's HEALTHCHECK probes TorchServe (curl localhost:8080/ping), which this image does not run.
HEALTHCHECK NONE
ENTRYPOINT [".venv/bin/mlcompile"]
CMD ["run"]
