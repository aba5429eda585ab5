# syntax=docker/dockerfile:1

# One image recipe for every service of the workspace; the service is chosen at build time.
# Build from the repository root (the whole workspace is the build context):
#
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=auth -t buytickets/auth .
#
# The result runs the service binary as an unprivileged user on a distroless base that has
# glibc, libgcc and CA certificates but no shell or package manager.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG SERVICE
WORKDIR /app

# sqlx's checked queries (query!) read the committed .sqlx/ cache: no database during the build.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

COPY . .

# The registry, git checkouts and target/ live in BuildKit cache mounts, so a rebuild only
# compiles what changed and every service shares the dependencies already built for another.
# The cache mounts are not part of the image, hence the copy of the binary to /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/app/target,sharing=locked \
    if [ -z "${SERVICE}" ]; then \
        echo "choose the service to build with --build-arg SERVICE=<name>" >&2; \
        exit 1; \
    fi \
 && cargo build --release --locked -p "${SERVICE}" \
 && install -D -m 0755 "target/release/${SERVICE}" /out/service

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="buytickets-${SERVICE}" \
      org.opencontainers.image.description="buytickets ${SERVICE} service"

COPY --from=builder /out/service /usr/local/bin/service

# Numeric, so that Kubernetes can verify runAsNonRoot (65532 is distroless' nonroot).
USER 65532:65532
ENV PORT=3000
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/service"]
