# bcgate container image.
#
#   docker build -t bcgate:local .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:9090:9090 \
#     -v "$PWD/config/compose:/etc/bcgate:ro" \
#     -v "$PWD/secrets/bc_token_abc123:/run/secrets/bc_token_abc123:ro" bcgate:local
#
# The config is not baked in: mount a directory holding bcgate.toml at /etc/bcgate,
# and each store token as the file its token_file names.
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.
# scripts/check-image checks that this builder has every tool the build needs
# (and builds the image when a docker daemon is reachable).

# --- build ---------------------------------------------------------------------
# The official Rust image on Debian 12. Its slim variant has gcc (ring, rustls'
# crypto, compiles C) but no make, which tikv-jemalloc-sys (the default
# `jemalloc` feature) runs to build jemalloc.
FROM rust:1-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Dependency caching: the cargo registry and target/ live in BuildKit cache
# mounts, so a rebuild after a source change recompiles only bcgate itself
# (no stub-crate layer to keep in step with the workspace). The binary is copied
# out in the same step because the cache mount is not part of the image.
# Without the default `dev` feature: the image has no mock BigCommerce and no
# certificate generator (`bcgate dev` is for a workstation).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p bcgate --no-default-features --features jemalloc \
    && install -m 0755 target/release/bcgate /usr/local/bin/bcgate

# --- runtime -------------------------------------------------------------------
# glibc and libgcc only, no shell, no package manager. No CA bundle is needed:
# bcgate trusts the compiled-in webpki (Mozilla) roots, plus upstream.ca_file
# if the config names one.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /usr/local/bin/bcgate /usr/local/bin/bcgate
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# 8080: the proxy; 9090: admin (/healthz, /readyz). Both default to 127.0.0.1 in
# bcgate; a container config must listen on 0.0.0.0 (or set
# BCGATE__SERVER__LISTEN / BCGATE__ADMIN__LISTEN).
EXPOSE 8080 9090
# No curl in distroless: bcgate checks itself (GET http://127.0.0.1:9090/healthz,
# exit 0 on 200). Needs [admin] listen on port 9090.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/bcgate", "healthcheck"]
# SIGTERM drains in-flight requests for up to 30 s: give `docker stop` -t 35.
ENTRYPOINT ["/usr/local/bin/bcgate"]
CMD ["run", "--config", "/etc/bcgate/bcgate.toml"]
