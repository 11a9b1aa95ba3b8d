#!/usr/bin/env bash
# The project's test command: installs what the tests need where it can
# (scripts/install-deps.sh), then runs every test with every feature. Where MPI cannot be
# installed (not root, no apt-get), it runs every test but those of the `mpi` feature, and
# says so.
set -euo pipefail
cd "$(dirname "$0")/.."

if bash scripts/install-deps.sh; then
    exec cargo test --workspace --all-features "$@"
fi
if command -v mpicc >/dev/null 2>&1 && mpicc -show >/dev/null 2>&1 &&
    { compgen -G "/usr/lib/llvm-*/lib/libclang.so*" || compgen -G "/usr/lib/*/libclang-[0-9]*.so*"; } >/dev/null; then
    # MPI and libclang are there (only the browser is missing): the MPI tests run.
    exec cargo test --workspace --all-features "$@"
fi
# Every feature but `mpi` (read from the manifests; without python3, the default features).
features=""
if command -v python3 >/dev/null 2>&1; then
    features=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
packages = json.load(sys.stdin)["packages"]
print(",".join(sorted(p["name"] + "/" + f for p in packages for f in p["features"]
                      if f not in ("mpi", "default"))))')
fi
echo "test.sh: MPI is not installed and could not be (see above): the MPI tests are SKIPPED;" \
    "running the rest with features: ${features:-none}" >&2
cargo test --workspace --features "$features" "$@"
echo "test.sh: passed, but WITHOUT the MPI tests (install mpich, libmpich-dev and libclang-dev" \
    "to run them)" >&2
