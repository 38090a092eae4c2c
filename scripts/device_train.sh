#!/usr/bin/env bash
# One call of GPU training on a lent machine (the `device` tool runs this in a copy of the repo).
#
#   here, once:  bash scripts/device_train.sh --fetch-wheels      (cp312 wheels the GPU image lacks, into .whl/)
#   device run:  bash scripts/device_train.sh [CONFIG]            (carry: [".whl"]; timeout_s 600)
#   here, first: OUT=DIR bash scripts/device_train.sh --rehearse CONFIG   (the device call on the CPU)
#   here, after: bash scripts/device_train.sh --collect FILES_AT [DEST]  (reassembles the EMA export
#                into DEST, default runs/gpu_small/collected, and checks its sha256)
#
# On the device it installs the carried wheels, builds gsplat's CUDA code when the config renders with
# gsplat (minutes, once per warm machine: the build stays in the ignored .torch_ext/), prints the on-the-fly data rate, then trains
# CONFIG (default configs/gpu_small.json) until 9 minutes of the call are gone (its limit is 10).
# A warm machine still holds runs/gpu_small/, so the next call resumes exactly; a fresh machine
# starts from the config's init_from (checkpoints/default as it is in the working tree: after
# --collect, copy the new export there to go on from it). What comes back through $OUT
# (at most 8 files of 16 MiB): the export's config.json, its weights split into 15 MiB parts,
# log.jsonl, loss.png and this call's log.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl kornia==0.9.0 kornia_rs==0.2.0 gsplat==1.5.3
    ls -la .whl
    exit 0
fi

if [[ "${1:-}" == "--collect" ]]; then
    src=${2:?usage: --collect FILES_AT [DEST]}
    out=${3:-runs/gpu_small/collected}
    [[ -d "$src" ]] || { echo "error: $src is not a folder (the device reply's files_at)" >&2; exit 2; }
    run=$(find "$src" -name config.json -printf '%h\n' | head -n 1)
    [[ -n "$run" ]] || { echo "error: no config.json under $src" >&2; exit 2; }
    compgen -G "$run/model.safetensors.part*" > /dev/null || { echo "error: no weight parts in $run" >&2; exit 2; }
    mkdir -p "$out"
    cat "$run"/model.safetensors.part* > "$out/.model.safetensors.tmp"
    mv "$out/.model.safetensors.tmp" "$out/model.safetensors"
    cp "$run/config.json" "$out/config.json"
    for f in log.jsonl loss.png; do if [[ -f "$run/$f" ]]; then cp "$run/$f" "$(dirname "$out")/$f"; fi; done
    # from_pretrained checks the sha256 in config.json and every key against the model config
    python3 - "$out" <<'EOF'
import sys
from recon.core.errors import ReconError
from recon.inference import Reconstructor
try:
    r = Reconstructor.from_pretrained(sys.argv[1])
except ReconError as e:
    sys.exit(f"error: {e}")
print("collected", sys.argv[1], "sha256", r.info["sha256"][:12])
EOF
    exit 0
fi

# --rehearse: the same call on this machine's CPU (no wheels, no GPU), for the tests and for a dry run
device=cuda
if [[ "${1:-}" == "--rehearse" ]]; then device=cpu; shift; fi
[[ -n "${OUT:-}" ]] || { echo "error: \$OUT is not set (this part runs on the device machine)" >&2; exit 2; }
config=${1:-configs/gpu_small.json}
call_seconds=${CALL_SECONDS:-540}  # of the call's 600: the rest saves and copies
probe_items=${PROBE_ITEMS:-8}  # items timed by the data-rate probe
exec > >(tee "$OUT/call.log") 2>&1
t_call=$(date +%s)
export PYTHONUNBUFFERED=1
if [[ $device == cuda ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    export TORCH_EXTENSIONS_DIR=$PWD/.torch_ext TORCH_CUDA_ARCH_LIST=9.0 FAST_COMPILE=1 MAX_JOBS=16
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi

t0=$(date +%s)
# The config's render_backend decides whether gsplat's CUDA code is built here (minutes of a
# 15-minute lease) or the pure-torch renderer runs on the GPU (no build).
python3 - "$config" "$device" "$probe_items" <<'EOF'
import sys, time, torch
from recon.data.procedural.item import make_item
from recon.train.config import TrainConfig
from renderer import Cameras, Gaussians, render
cfg, device = TrainConfig.load(sys.argv[1]), sys.argv[2]
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
t = time.time()
g = Gaussians.from_rgb(torch.tensor([[0.0, 0.0, 0.0]]), torch.ones(1, 3), torch.full((1, 3), 0.1), torch.ones(1)).to(device)
render(g, Cameras.orbit(1, radius=2.0, width=32, height=32).to(device), backend=cfg.render_backend)
sync()
print(f"renderer ({cfg.render_backend}) ready in {time.time() - t:.0f} s")
d = cfg.data
where = device if d.render_device == "train" else "cpu"
n_in, size = max(d.n_inputs), d.size
make_item(0, n_in, d.n_targets, size, sdf_samples=d.sdf_samples, device=where)
t, n = time.time(), int(sys.argv[3])
for s in range(1, n + 1):
    make_item(s, n_in, d.n_targets, size, sdf_samples=d.sdf_samples, device=where, scene=s % 5 == 4)
sync()
print(f"on-the-fly data: {n / (time.time() - t):.2f} items/s ({n_in} + {d.n_targets} views at {size} px, sphere-traced on {where})")
EOF
echo "setup took $(( $(date +%s) - t0 )) s"

# the call has 10 minutes: train until 9 of them are gone, leaving time to save and copy
left=$(python3 -c "import sys; a = [int(x) for x in sys.argv[1:]]; print(max(0.1, (a[0] - (a[2] - a[1])) / 60 - 0.5))" "$call_seconds" "$t_call" "$(date +%s)")
echo "training for at most $left minutes"
python3 -m recon train "$config" --time-limit "$left"
run=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['out_dir'])" "$config")
mkdir -p "$OUT/run"
cp "$run/export/config.json" "$run/log.jsonl" "$OUT/run/"
if [[ -f "$run/loss.png" ]]; then cp "$run/loss.png" "$OUT/run/"; fi
split -b 15M -d "$run/export/model.safetensors" "$OUT/run/model.safetensors.part"
ls -la "$OUT/run"
