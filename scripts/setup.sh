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

# The web app's browser test drives Debian's chromium through Playwright (never `playwright install`).
if [[ -n "$extras" ]] && [[ ! -x /usr/bin/chromium ]]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo_cmd="sudo"; fi
    echo "setup: installing chromium (for the app's end-to-end browser test)" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is missing and apt-get is not available; the app's browser test needs it" >&2
    exit 1
  fi
fi

# The compiled CPU splatting kernel needs a C++ compiler. The application falls back to the
# pure-torch renderer without one; CI (--dev) builds and tests the kernel, so it installs g++.
if [[ -n "$extras" ]] && ! command -v c++ >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo_cmd="sudo"; fi
    echo "setup: installing g++ (for the compiled CPU splatting kernel)" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq g++ >/dev/null
  else
    echo "setup: no C++ compiler and apt-get is not available; the CPU kernel's tests need one" >&2
    exit 1
  fi
fi

# torch is pinned to 2.13.0 in pyproject.toml: an unpinned torch would pull the multi-GB CUDA build.
python -m pip install --quiet --disable-pip-version-check -e ".${extras}"

# Prebuild the compiled CPU splatting kernel (C++/OpenMP, about 15 s; cached in torch's extension
# directory, ~/.cache/torch_extensions) so that no later command pays for it. Without a compiler
# the renderer uses its pure-torch twin; with --dev (CI) a failed build stops the setup.
if ! python -c "import sys; from renderer._cpu import main; sys.exit(main(['--quiet']))"; then
  if [[ -n "$extras" ]]; then exit 1; fi
  echo "setup: continuing without the compiled CPU kernel (rendering uses the slower pure-torch path)" >&2
fi

# --dev: the Khronos glTF Validator (npm) that tests/recon/export checks every GLB with, installed
# into the git-ignored .node/ (idempotent: skipped when that version is already there). npm comes
# from the system's packages when missing. A failure here stops the setup (CI must not skip them).
if [[ -n "$extras" ]]; then
  validator_version="2.0.0-dev.3.10"
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo_cmd="sudo"; fi
    echo "setup: installing nodejs and npm (for the glTF validator used by the tests)" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
  fi
  if command -v npm >/dev/null 2>&1; then
    installed="$(node -p "require('./.node/node_modules/gltf-validator/package.json').version" 2>/dev/null || true)"
    if [[ "$installed" != "$validator_version" ]]; then
      mkdir -p .node
      npm install --silent --no-audit --no-fund --prefix .node "gltf-validator@${validator_version}" \
        || { echo "setup: could not install gltf-validator (npm)" >&2; exit 1; }
    fi
  else
    echo "setup: npm not found and could not be installed; the glTF validator tests need it" >&2
    exit 1
  fi
fi
