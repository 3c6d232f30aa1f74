#!/usr/bin/env bash
# Installs the Debian packages clipprepd needs to build and run, and only those that are
# missing. Idempotent; uses sudo when not root. Called by `make run`, `make test`, CI and
# the Dockerfile. Pass --runtime to install only the shared libraries (container runtime stage).
set -euo pipefail

build_pkgs=(build-essential pkg-config libmicrohttpd-dev libjpeg62-turbo-dev libcjson-dev
            libpng-dev libdeflate-dev libwebp-dev libcurl4-openssl-dev libxxhash-dev libgif-dev libtiff-dev libavif-dev libde265-dev curl python3 python3-venv)
runtime_pkgs=(libmicrohttpd12 libjpeg62-turbo libcjson1 libpng16-16 libwebp7 libwebpdemux2 curl
              libcurl4 libxxhash0 libgif7 libtiff6 libavif15 libdeflate0 libde265-0)

# Ubuntu (the CUDA base images) names a few packages differently.
if [[ -r /etc/os-release ]] && . /etc/os-release && [[ ${ID:-} == ubuntu ]]; then
  build_pkgs[3]=libjpeg-turbo8-dev
  runtime_pkgs=(libmicrohttpd12 libjpeg-turbo8 libcjson1 libpng16-16 libwebp7 libwebpdemux2 curl
                libcurl4 libxxhash0 libgif7 libtiff6 libavif16 libdeflate0 libde265-0)
  if dpkg --compare-versions "${VERSION_ID:-0}" ge 24.04; then
    runtime_pkgs[0]=libmicrohttpd12t64
    runtime_pkgs[3]=libpng16-16t64
    runtime_pkgs[7]=libcurl4t64
  fi
fi

if [[ ${1:-} == --runtime ]]; then pkgs=("${runtime_pkgs[@]}"); else pkgs=("${build_pkgs[@]}"); fi
# --triton-tests (make venv-triton): the Triton Python backend's stub embeds libpython of the
# Python that runs tests/triton.
if [[ ${1:-} == --triton-tests ]]; then
  pkgs=("libpython$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')")
fi

missing=()
for p in "${pkgs[@]}"; do
  # python3/python3-venv may come from elsewhere (pyenv); accept any working python3 with venv.
  if [[ $p == python3 || $p == python3-venv ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    continue
  fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
