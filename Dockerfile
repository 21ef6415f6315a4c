# syntax=docker/dockerfile:1
#
# Till: one image for every role (`serve`, `worker`, `migrate`, `seed --demo`, `create-admin`).
#
#   docker build -t till .
#   docker run --rm --env-file .env till migrate
#   docker run --rm --env-file .env -p 8080:8080 till serve
#
# Stage 1 builds the dependencies alone first (manifests + stub sources), so that editing Till's own
# code rebuilds only Till; stage 2 is a small Debian runtime running as an unprivileged user.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------- build
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0

# The dependency layer: workspace and crate manifests with empty sources. Cached until a manifest
# or Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY crates/domain/Cargo.toml crates/domain/Cargo.toml
COPY crates/db/Cargo.toml crates/db/Cargo.toml
COPY crates/cache/Cargo.toml crates/cache/Cargo.toml
COPY crates/app/Cargo.toml crates/app/Cargo.toml
COPY crates/http/Cargo.toml crates/http/Cargo.toml
COPY crates/server/Cargo.toml crates/server/Cargo.toml
COPY crates/test-support/Cargo.toml crates/test-support/Cargo.toml
RUN set -eux; \
    for c in domain db cache app http server test-support; do mkdir -p crates/$c/src && : > crates/$c/src/lib.rs; done; \
    echo 'fn main() {}' > crates/server/src/main.rs; \
    cargo build --release --locked --bin till; \
    rm -rf crates/*/src

# Till itself. The stubs above are newer than these files, so touch them: cargo must rebuild our crates.
COPY crates crates
COPY migrations migrations
RUN set -eux; \
    find crates -name '*.rs' -exec touch {} +; \
    cargo build --release --locked --bin till; \
    install -m 0755 target/release/till /usr/local/bin/till; \
    /usr/local/bin/till --version

# -------------------------------------------------------------------------------------------- runtime
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl tzdata; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 till; \
    useradd --system --uid 10001 --gid till --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin till; \
    # MEDIA_DIR: a named volume mounted here starts with this owner, so Till can write it.
    install -d -o till -g till /var/lib/till/media

COPY --from=builder /usr/local/bin/till /usr/local/bin/till
# Migrations are embedded in the binary; the copy is for operators who want to read them.
COPY migrations /srv/till/migrations
COPY web /srv/till/web

ENV BIND_ADDR=0.0.0.0:8080 \
    STATIC_DIR=/srv/till/web \
    MEDIA_DIR=/var/lib/till/media \
    APP_ENV=production \
    LOG_FORMAT=json
USER till:till
WORKDIR /srv/till
EXPOSE 8080

# Liveness of `till serve` on the port of BIND_ADDR (the worker and migrate services turn it off).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${BIND_ADDR##*:}/health/liveness" || exit 1

# SIGTERM starts the drain (readiness 503 for SHUTDOWN_DRAIN_MS, then the listener closes).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/till"]
CMD ["serve"]
