# pyudf's container image: Go binaries that embed CPython (libpython) and the
# Python packages their UDFs use. A standard Dockerfile: `docker build .` builds
# it with Docker and a registry; `make image` builds it here with buildah and
# offline stand-ins for the two base images (docker/stand-in-bases.sh).
#
# Targets:
#   runtime (the last stage, so the default)  the binaries, as a non-root user;
#            runs the CDN application
#   worker   a Beam Go SDK harness image on the same base (libpython, the
#            virtualenv, the user) for connect/beam's pipelines' workers

ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# ---- build: Go, gcc and Debian's CPython headers (python3-embed.pc) ----
FROM ${GO_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config python3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Debian's python3-dev installs python3-embed.pc where pkg-config looks by default,
# and libpython3.11.so in the default library path: no rpath needed.
# The quickstart and the CLI are in the core module; each application under
# examples/ with a go.mod of its own (cdn, features, inference) is a module
# whose main package is its directory, built into a binary of that name
# (a module without a main package there, the shared examples/appkit, is a library).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -o /out/bin/ ./examples/quickstart ./cmd/pyudf \
 && for mod in examples/*/go.mod; do \
      app=$(dirname "$mod"); \
      grep -qs '^package main$' "$app"/*.go || continue; \
      (cd "$app" && CGO_ENABLED=1 go build -trimpath -o "/out/bin/$(basename "$app")" .) || exit 1; \
    done \
 && mkdir -p /out/share/examples \
 && cp -r examples/quickstart /out/share/examples/ \
 && cp requirements.txt /out/share/

# ---- base: slim Debian, libpython, a virtualenv with requirements.txt, the user ----
FROM ${BASE_IMAGE} AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libpython3.11 python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/share/requirements.txt /opt/pyudf/requirements.txt
# The engine embeds the base interpreter's libpython with this virtualenv's
# site-packages (PYUDF_PYTHON); Debian's own interpreter stays untouched (PEP 668).
RUN python3 -m venv /opt/pyudf/venv \
 && /opt/pyudf/venv/bin/pip install --no-cache-dir --disable-pip-version-check -q -r /opt/pyudf/requirements.txt
ENV PYUDF_PYTHON=/opt/pyudf/venv/bin/python
RUN useradd --system --create-home --uid 10001 pyudf
USER pyudf
WORKDIR /home/pyudf
# The engine's cache (PYUDF_CACHE_DIR: requirements, archives, the process
# workers' runtime), owned by the user.
ENV PYUDF_CACHE_DIR=/home/pyudf/.cache/pyudf

# ---- beam-build: the Beam Go SDK's boot (the SDK version connect/beam's go.mod
# pins) and a pipeline of connect/beam built against this image's libpython ----
FROM build AS beam-build
WORKDIR /src/connect/beam
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /out/beam/boot github.com/apache/beam/sdks/v2/go/container \
 && CGO_ENABLED=1 go build -trimpath -o /out/beam/ ./cmd/pyudf-beam-orders

# ---- worker: a Beam Go SDK harness image (apache/beam_go_sdk's layout: boot at
# /opt/apache/beam/boot as the entrypoint) with libpython and the virtualenv.
# The runner stages the pipeline's worker binary (--worker_binary, built with cgo
# against this libpython); boot fetches it and runs it as the pyudf user.
# `--worker_pool` runs boot as an EXTERNAL environment's worker pool on port 50000.
FROM base AS worker
COPY --from=beam-build /out/beam/boot /opt/apache/beam/boot
COPY --from=beam-build /out/beam/pyudf-beam-orders /usr/local/bin/
ENTRYPOINT ["/opt/apache/beam/boot"]

# ---- runtime: the default target ----
# The default command is the CDN log analysis on its embedded defaults: an
# embedded nats-server, 100,000 generated log lines, the SQLite file
# ~/cdn.db (examples/cdn/README.md). Others: `quickstart -udf
# /opt/pyudf/examples/quickstart/enrich.py`, `features`, `inference`, `pyudf`.
FROM base AS runtime
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/share/examples/ /opt/pyudf/examples/
# The inference application installs scikit-learn into the cache through the
# engine's requirements mechanism and trains its models now, so that the
# container starts without network.
RUN inference -prepare
CMD ["cdn"]
