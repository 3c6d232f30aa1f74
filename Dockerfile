# syntax=docker/dockerfile:1
# clipprepd container image: a build stage that compiles the daemon and a small runtime stage
# with only its shared libraries, the binary and config/.
#
# Default (CUDA backend compiled in; needs Docker Hub's nvidia/cuda images):
#   docker build -t clipprep:cuda .
# CPU-only (any Debian or Ubuntu base; no nvcc, so the CPU-only daemon is built):
#   docker build --build-arg BASE=debian:bookworm --build-arg RUNTIME_BASE=debian:bookworm-slim \
#                -t clipprep:cpu .
#
# The runtime base must be the same distribution release as the build base (the binary links
# against the build stage's glibc and library sonames), and, for a CUDA build, must carry
# libcudart (the nvidia/cuda "base" flavour does; the driver comes from the host through the
# NVIDIA container toolkit). The build checks this with ldd and fails with the missing library.
# See docs/deployment.md.

ARG BASE=nvidia/cuda:13.0.0-devel-ubuntu24.04
ARG RUNTIME_BASE=nvidia/cuda:13.0.0-base-ubuntu24.04

# ---------------------------------------------------------------------------- build stage
FROM ${BASE} AS build
# CUDA=0 forces a CPU-only build on a CUDA base; empty = the Makefile decides (nvcc present?).
ARG CUDA=
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src

# Dependencies first, so that source edits do not re-run apt. scripts/install-deps.sh knows
# both Debian's and Ubuntu's (the nvidia/cuda images') package names.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN set -eu; bash scripts/install-deps.sh; rm -rf /var/lib/apt/lists/*

COPY Makefile VERSION ./
COPY server server
COPY kernels kernels
COPY config config
RUN set -eu; \
    make -j"$(nproc)" ${CUDA:+CUDA=${CUDA}} bin/clipprepd; \
    ./bin/clipprepd --version

# -------------------------------------------------------------------------- runtime stage
FROM ${RUNTIME_BASE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive

COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN set -eu; bash /tmp/install-deps.sh --runtime; \
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/install-deps.sh; \
    groupadd --system --gid 10001 clipprep; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin clipprep

COPY --from=build /src/bin/clipprepd /usr/local/bin/clipprepd
COPY config/clipprep.json /etc/clipprep/clipprep.json
COPY config/profiles /etc/clipprep/profiles

# Fail the build here, not at the first start, when a shared library is missing (e.g. a CUDA
# build on a runtime base without libcudart, or mismatched distributions).
RUN set -eu; \
    if ldd /usr/local/bin/clipprepd | grep 'not found'; then \
      echo "runtime base lacks the libraries above (see the comment at the top of Dockerfile)" >&2; \
      exit 1; \
    fi; \
    /usr/local/bin/clipprepd --version

# Configuration: the shipped file (every key at its default), overridden by CLIPPREP_<KEY>
# variables (docker run -e CLIPPREP_PORT=9000 ...), overridden by flags appended to the
# command line. Mount another file and point CLIPPREP_CONFIG at it, or mount profiles over
# /etc/clipprep/profiles. An unknown CLIPPREP_* variable stops the start (by design).
ENV CLIPPREP_CONFIG=/etc/clipprep/clipprep.json \
    CLIPPREP_HOST=0.0.0.0 \
    CLIPPREP_PROFILES_DIR=/etc/clipprep/profiles

USER 10001:10001
WORKDIR /etc/clipprep
EXPOSE 8080
# The daemon drains for drain_timeout_s (30 s) after SIGTERM: give `docker stop -t 35`,
# compose stop_grace_period or Kubernetes terminationGracePeriodSeconds at least that.
STOPSIGNAL SIGTERM
# Kept by Docker and by `podman build --format docker` (the OCI image format drops it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${CLIPPREP_PORT:-8080}/healthz" || exit 1

LABEL org.opencontainers.image.title="clipprepd" \
      org.opencontainers.image.description="CLIP image preprocessing sidecar for NVIDIA Triton"
# Exec form: the daemon is PID 1 and receives SIGTERM itself. Extra flags go after the
# image name (e.g. `docker run clipprep --log-level debug`).
ENTRYPOINT ["/usr/local/bin/clipprepd"]
CMD []
