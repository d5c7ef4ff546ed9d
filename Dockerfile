# sfsync's images. Each binary is stripped of its debug info, which goes to a separate image.
#
#   sfsync:local                     producer and worker only, on no distribution at all: the
#     (target runtime or prebuilt)   four shared libraries they load (glibc's and libgcc_s), the
#                                    CA bundle (https://, amqps://), passwd/group with the user
#                                    sfsync (uid/gid 10001), /tmp. No shell: run the binaries by
#                                    name (CMD is worker).
#   sfsync-fake-salesforce:local     the demo org, on the Debian runtime base (its compose health
#     (target fake-salesforce or     check uses bash). Not for production.
#      prebuilt-fake-salesforce)
#   debug symbols                    /usr/lib/debug/usr/local/bin/<binary>.debug, where gdb finds
#     (target debug-symbols or       them for the stripped binaries (which carry a debuglink):
#      prebuilt-debug-symbols)         DOCKER_BUILDKIT=1 docker build --target debug-symbols -o type=local,dest=debug .
#
# Two ways to build them:
#   docker build --target runtime -t sfsync:local .
#   docker build --target fake-salesforce -t sfsync-fake-salesforce:local .
#       the normal way (what docker-compose.yml does): compiles in the Rust builder stage.
#   docker build --target prebuilt -f Dockerfile -t sfsync:local DIR
#   docker build --target prebuilt-fake-salesforce -f Dockerfile -t sfsync-fake-salesforce:local DIR
#       from release binaries already built on the host: DIR holds producer, worker and
#       fake-salesforce as cargo made them (scripts/stand-in-images does this, for machines that
#       cannot pull the Rust image). Needs BuildKit (docker buildx, or DOCKER_BUILDKIT=1 with a
#       20.10 client), which builds only the stages the target needs.
# RUNTIME_BASE picks the Debian bookworm base (scripts/stand-in-images passes its locally made
# one): the fake's image is built on it and sfsync's glibc comes from it, so its glibc must be at
# least the one the binaries were linked against (2.36 with the builder stage).
# Every stage of the first way comes before those of prebuilt, so that the classic builder
# (docker-compose 1.29's), which builds every stage up to its target, never needs the binaries
# DIR for the first way.
ARG RUNTIME_BASE=debian:bookworm-slim

# Builder stage: compile in release mode with the workspace's locked dependencies, then split
# each binary into a stripped one (/out/bin; the symbol table stays, for backtraces) and its
# debug info (/out/debug). The same split is in prebuilt-split below.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p producer -p worker -p fake-salesforce \
 && mkdir -p /out/bin /out/debug \
 && for bin in producer worker fake-salesforce; do \
      objcopy --only-keep-debug "target/release/$bin" "/out/debug/$bin.debug" \
      && objcopy --strip-debug --add-gnu-debuglink="/out/debug/$bin.debug" "target/release/$bin" "/out/bin/$bin" \
      || exit 1; \
    done

# Runtime base: Debian with the non-root user the binaries run as. fake-salesforce's image.
FROM ${RUNTIME_BASE} AS runtime-base
RUN groupadd --system --gid 10001 sfsync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sfsync
ENV LOG_FORMAT=json

# What sfsync's image holds besides the binaries, under /rootfs: the libraries they load
# (ldd: libgcc_s.so.1, libm.so.6, libc.so.6 and the loader; since glibc 2.34 libc.so.6 resolves
# names and users without NSS modules), the CA bundle, passwd/group, nsswitch.conf, /tmp, and
# os-release plus the dpkg records of the packages the files come from, so that image scanners
# see Debian 12's libc6, libgcc-s1 and ca-certificates. A library the binaries need besides
# these fails the build (the chroot check in runtime-fs and prebuilt-fs).
FROM runtime-base AS rootfs
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/usr/local/bin /rootfs/var/lib/dpkg/status.d \
 && mkdir -m 1777 /rootfs/tmp \
 && cp -L --parents /lib/*-linux-gnu/libc.so.6 /lib/*-linux-gnu/libm.so.6 /lib/*-linux-gnu/libgcc_s.so.1 \
      /lib*/ld-linux*.so.* /rootfs/ \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && grep -E '^(root|sfsync):' /etc/passwd >/rootfs/etc/passwd \
 && grep -E '^(root|sfsync):' /etc/group >/rootfs/etc/group \
 && printf 'passwd: files\ngroup: files\nhosts: files dns\n' >/rootfs/etc/nsswitch.conf \
 && cp -L /etc/os-release /rootfs/etc/os-release \
 && for pkg in libc6 libgcc-s1 ca-certificates; do dpkg-query -s "$pkg" >"/rootfs/var/lib/dpkg/status.d/$pkg" || exit 1; done

# --- built from source ------------------------------------------------------------------------

FROM rootfs AS runtime-fs
COPY --from=builder /out/bin/producer /out/bin/worker /rootfs/usr/local/bin/
RUN chroot /rootfs /usr/local/bin/producer --version && chroot /rootfs /usr/local/bin/worker --version

# The production image built from source.
FROM scratch AS runtime
COPY --from=runtime-fs /rootfs/ /
ENV PATH=/usr/local/bin LOG_FORMAT=json
USER 10001:10001
CMD ["worker"]

FROM runtime-base AS fake-salesforce
COPY --from=builder /out/bin/fake-salesforce /usr/local/bin/
USER 10001:10001
CMD ["fake-salesforce", "--listen=0.0.0.0:8080"]

FROM scratch AS debug-symbols
COPY --from=builder /out/debug/ /usr/lib/debug/usr/local/bin/

# --- from binaries built elsewhere (the build context is their directory) ----------------------

# The builder stage's split, with Debian's binutils.
FROM runtime-base AS prebuilt-split
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
COPY producer worker fake-salesforce /in/
RUN mkdir -p /out/bin /out/debug \
 && for bin in producer worker fake-salesforce; do \
      objcopy --only-keep-debug "/in/$bin" "/out/debug/$bin.debug" \
      && objcopy --strip-debug --add-gnu-debuglink="/out/debug/$bin.debug" "/in/$bin" "/out/bin/$bin" \
      || exit 1; \
    done

FROM rootfs AS prebuilt-fs
COPY --from=prebuilt-split /out/bin/producer /out/bin/worker /rootfs/usr/local/bin/
RUN chroot /rootfs /usr/local/bin/producer --version && chroot /rootfs /usr/local/bin/worker --version

# The production image from prebuilt binaries: the same as runtime.
FROM scratch AS prebuilt
COPY --from=prebuilt-fs /rootfs/ /
ENV PATH=/usr/local/bin LOG_FORMAT=json
USER 10001:10001
CMD ["worker"]

FROM runtime-base AS prebuilt-fake-salesforce
COPY --from=prebuilt-split /out/bin/fake-salesforce /usr/local/bin/
USER 10001:10001
CMD ["fake-salesforce", "--listen=0.0.0.0:8080"]

FROM scratch AS prebuilt-debug-symbols
COPY --from=prebuilt-split /out/debug/ /usr/lib/debug/usr/local/bin/
