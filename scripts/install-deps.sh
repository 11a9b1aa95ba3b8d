#!/usr/bin/env bash
# Installs what the tests need beyond Rust, where it is missing (Debian/Ubuntu, as root):
#   mpich, libmpich-dev  an MPI to run and to build against (the `mpi` feature: rsmpi's build
#                        asks `mpicc -show` for the library and compiles a shim with it)
#   libclang-dev         libclang and its headers, for rsmpi's bindgen
#   chromium, chromium-driver  a browser and its WebDriver, for the browser tests
# A no-op when everything is there. Exit status: 0 when everything is present afterwards;
# 2 when something is missing and cannot be installed here (not root, or no apt-get), after
# saying what and why.
set -euo pipefail

missing=()
has() { command -v "$1" >/dev/null 2>&1; }
# libclang itself (libclang.so.1, libclang-14.so.1), not libclang-cpp, which llvm-*-dev brings
# without it and which bindgen cannot use.
has_libclang() {
    local dir
    for dir in /usr/lib/llvm-*/lib /usr/lib/* "${LIBCLANG_PATH:-/nonexistent}"; do
        compgen -G "$dir/libclang.so*" >/dev/null && return 0
        compgen -G "$dir/libclang-[0-9]*.so*" >/dev/null && return 0
    done
    return 1
}
has mpirun || missing+=(mpich)
{ has mpicc && mpicc -show >/dev/null 2>&1; } || missing+=(libmpich-dev)
has_libclang || missing+=(libclang-dev)
{ has chromium || has chromium-browser; } || missing+=(chromium)
has chromedriver || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is present (MPI, libclang, chromium and its driver)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! has apt-get; then
    why="not root"
    has apt-get || why="no apt-get"
    echo "install-deps: missing ${missing[*]}, and cannot install them here ($why)" >&2
    exit 2
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
