# syntax=docker/dockerfile:1
#
# One image with every latency-lab service binary:
#   user-service, order-service (both from the mock-service package), profile-aggregator
#   and latency-lab.
# No ENTRYPOINT/CMD picks a service: the caller names the binary, e.g.
#   docker run --rm latency-lab:local user-service --listen 0.0.0.0:5001
# (docker-compose.yml does this for each service).
#
# Stages: chef (toolchain + cargo-chef) -> planner (recipe of the dependency graph) ->
# builder (dependencies cooked in their own layer, then the workspace) -> runtime.
# A source-only change rebuilds from the second COPY in `builder`; the cooked dependency layer
# stays cached while Cargo.toml/Cargo.lock don't change.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG CARGO_CHEF_VERSION
# make: the services' allocator, jemalloc (tikv-jemalloc-sys), is built from
# its C sources; the slim image has the compiler but not make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# Dependencies only: this layer is reused until the recipe (manifests, lock file) changes.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN set -eux; \
    bins="user-service order-service profile-aggregator latency-lab"; \
    targets=""; \
    for bin in $bins; do targets="$targets --bin $bin"; done; \
    cargo build --release --locked --workspace $targets; \
    mkdir -p /out; \
    for bin in $bins; do cp "target/release/$bin" /out/; done

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# curl: for the compose health checks (GET /healthz).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 latency-lab \
    && useradd --system --uid 10001 --gid latency-lab --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin latency-lab
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
# The services listen on 127.0.0.1 by default; in a container pass --listen 0.0.0.0:PORT.
EXPOSE 5001 5002 8080
