# base -> development -> production (CPU), and neuron (Inferentia2 / Trainium1).
# Models load from local paths only (HF_HUB_OFFLINE=1).
# AWS's Neuron inference image of the last SDK with the XLA-based torch-neuronx (2.31.0, torch 2.9).
ARG NEURON_IMAGE_TAG=2.9.0-neuronx-py312-sdk2.31.0-ubuntu24.04

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
RUN apt-get update && apt-get install -y --no-install-recommends make gcc git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md Makefile ./
COPY src ./src
RUN make install

FROM base AS development
COPY . .
RUN make install
CMD ["make", "test"]

FROM development AS production
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
