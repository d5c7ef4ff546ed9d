# One image for every sfsync binary: producer, worker, fake-salesforce.
# Builder stage: compile in release mode with the workspace's locked dependencies.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p producer -p worker -p fake-salesforce \
 && mkdir -p /out && cp target/release/producer target/release/worker target/release/fake-salesforce /out/

# Runtime stage: a slim Debian with CA certificates (for https:// Salesforce and amqps://).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home sfsync
COPY --from=builder /out/ /usr/local/bin/
USER sfsync
ENV LOG_FORMAT=json
CMD ["worker"]
