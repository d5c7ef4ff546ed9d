# One image for every sfsync binary: producer, worker, fake-salesforce.
#
# Two ways to build it:
#   docker build --target runtime -t sfsync:local .
#       the normal way (what docker-compose.yml does): compiles in the Rust builder stage.
#   docker build --target prebuilt -f Dockerfile -t sfsync:local DIR
#       from release binaries already built on the host: DIR holds producer, worker and
#       fake-salesforce (scripts/stand-in-images does this, for machines that cannot pull the
#       Rust image). Needs BuildKit (docker buildx, or DOCKER_BUILDKIT=1 with a 20.10 client),
#       which builds only the stages the target needs.
# RUNTIME_BASE picks the runtime's Debian bookworm base (scripts/stand-in-images passes its
# locally made one). The runtime stage comes before prebuilt so that the classic builder, which
# builds every stage up to its target, never needs the binaries DIR for --target runtime.
ARG RUNTIME_BASE=debian:bookworm-slim

# Builder stage: compile in release mode with the workspace's locked dependencies.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p producer -p worker -p fake-salesforce \
 && mkdir -p /out && cp target/release/producer target/release/worker target/release/fake-salesforce /out/

# Runtime base: a slim Debian with CA certificates (for https:// Salesforce and amqps://) and
# the non-root user the binaries run as.
FROM ${RUNTIME_BASE} AS runtime-base
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home sfsync
ENV LOG_FORMAT=json
CMD ["worker"]

# The image built from source.
FROM runtime-base AS runtime
COPY --from=builder /out/ /usr/local/bin/
USER sfsync

# The same image from binaries built elsewhere (the build context is their directory).
FROM runtime-base AS prebuilt
COPY producer worker fake-salesforce /usr/local/bin/
USER sfsync
