#!/usr/bin/env bash
# One epoch of the digits CNN, perturb (criterion) against PyTorch, ROUNDS times each at 1 and 2
# threads, alternating, so that both see the same load. Prints each run's median epoch time.
# PyTorch runs with OMP_WAIT_POLICY=PASSIVE: on a shared machine its spinning threads otherwise
# lose their cores to other processes (2 threads took seconds per epoch).
# Usage: bench-torch/compare.sh [python] [rounds]   (from the repository root)
set -euo pipefail
PY=${1:-python3}
ROUNDS=${2:-3}
EST='target/criterion/cnn digits_ one epoch (batch 64, Adam, f32)/new/estimates.json'
"$PY" -c 'import torch, platform; print("torch", torch.__version__, "python", platform.python_version())'
cargo bench -p perturb-nn --bench cnn --no-run 2>/dev/null
for round in $(seq "$ROUNDS"); do
  for threads in 1 2; do
    RAYON_NUM_THREADS=$threads cargo bench -q -p perturb-nn --bench cnn >/dev/null 2>&1
    ms=$("$PY" -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["median"]["point_estimate"] / 1e6))' "$EST")
    echo "round $round, $threads thread(s): perturb median $ms ms"
    echo "round $round, $threads thread(s): torch   $(OMP_WAIT_POLICY=PASSIVE "$PY" bench-torch/digits_cnn.py --threads "$threads" --time 20 | tail -1)"
  done
done
