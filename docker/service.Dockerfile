# syntax=docker/dockerfile:1

# One image recipe for every service of the workspace; the service is chosen at build time.
# Build from the repository root (the whole workspace is the build context):
#
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=auth -t buytickets/auth:dev .
#
# SERVICE is one of auth, tickets, orders, expiration, payments, notifications, web: the crate in
# services/<SERVICE> and its binary of the same name.
#
# Stages:
#   chef     the Rust toolchain with cargo-chef
#   planner  reduces the workspace to a recipe: its manifests and Cargo.lock, no source
#   builder  compiles the service's dependencies from the recipe alone (a layer that is
#            reused until a manifest or the lock file changes), then the service itself
#   runtime  the binary alone on distroless (glibc, libgcc, CA certificates; no shell, no
#            package manager), as an unprivileged user
# Everything a service needs at run time is compiled into its binary: the SQL migrations, the
# checked queries' metadata, and the web service's templates and static files.

# Base images are pinned by digest (the tag says what it is, the digest what is pulled);
# Renovate refreshes the digests (.github/renovate.json5).
ARG CARGO_CHEF_VERSION=0.2.0

FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /app
# sqlx's checked queries (query!) read the committed .sqlx/ caches: no database during the build.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG SERVICE
RUN if [ -z "${SERVICE}" ]; then \
        echo "choose the service to build with --build-arg SERVICE=<name>" >&2; \
        exit 1; \
    fi
COPY --from=planner /app/recipe.json recipe.json
# The recipe carries Cargo.lock, so the dependencies built here are the locked ones.
RUN cargo chef cook --release --package "${SERVICE}" --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package "${SERVICE}" --bin "${SERVICE}" \
 && install -D -m 0755 "target/release/${SERVICE}" /out/service

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="buytickets-${SERVICE}" \
      org.opencontainers.image.description="buytickets ${SERVICE} service"

COPY --from=builder /out/service /usr/local/bin/service

# Numeric, so that Kubernetes can verify runAsNonRoot (65532 is distroless' nonroot).
USER 65532:65532
ENV PORT=3000
EXPOSE 3000
# checkov:skip=CKV_DOCKER_2: health is probed by Kubernetes over HTTP (/healthz, /readyz); the distroless image has no client to run a HEALTHCHECK with
ENTRYPOINT ["/usr/local/bin/service"]
