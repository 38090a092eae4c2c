#!/usr/bin/env bash
# Install Recon (and the system libraries its Python dependencies need) on a fresh machine.
#   bash scripts/setup.sh          # the application
#   bash scripts/setup.sh --dev    # plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [[ "${1:-}" == "--dev" ]]; then extras="[dev]"; fi

# open3d 0.20 fails at import without libusb-1.0; pip cannot install system libraries.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo_cmd="sudo"; fi
    echo "setup: installing libusb-1.0-0 (needed by open3d)" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "setup: please install libusb-1.0 with your system's package manager (open3d needs it)" >&2
    exit 1
  fi
fi

# torch is pinned to 2.13.0 in pyproject.toml: an unpinned torch would pull the multi-GB CUDA build.
python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
