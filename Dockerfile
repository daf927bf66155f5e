# base -> development -> production. Models load from local paths only (HF_HUB_OFFLINE=1).
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
