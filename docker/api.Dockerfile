# ponder's API server (also the ToolServer manager: same package, other command). Build from the repository root:
#   docker build -f docker/api.Dockerfile -t ponder-api:latest .                          # talks to vLLM
#   docker build -f docker/api.Dockerfile --build-arg EXTRAS=embedded,model -t ponder-api:cpu .  # embedded model
# Hosts without a registry: build the same file on a base image made from Debian packages (see DESIGN.md).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG EXTRAS=""
# llama-cpp-python compiles from source for the embedded extra; curl serves the health check
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl $( [ -n "$EXTRAS" ] && echo build-essential cmake ) \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 ponder \
 && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin ponder
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
 && if echo "$EXTRAS" | grep -q model; then \
      su ponder -s /bin/sh -c "python -c 'from ponder.config import Settings; from ponder.llm.embedded._model_files import ensure_default_model; ensure_default_model(Settings().llm.cache_dir)'"; \
    fi
USER 1000:1000
ENV PONDER_API__HOST=0.0.0.0 \
    PONDER_API__PORT=8000 \
    PONDER_DATA_DIR=/home/ponder/data \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
  CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["ponder", "serve"]
