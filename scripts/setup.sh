#!/usr/bin/env bash
# Installs the Debian packages preflight needs to build, test and benchmark.
# Idempotent: packages already present are skipped, and apt is not touched when nothing is missing.
# Never installs Boost 1.74 dev headers (they conflict with libboost1.81-dev).
#   scripts/setup.sh                     what building and testing need (also ccache, the compiler cache, and nginx
#                                        for the auth_request integration test; the package may start the system's
#                                        nginx on port 80, which the tests never use)
#   scripts/setup.sh --with-bench-tools  also wrk, gnuplot-nox, python3 (scripts/bench.sh)
#   scripts/setup.sh --with-fuzz-tools   also clang-14 and its runtime (scripts/fuzz.sh)
set -euo pipefail
case "${1:-}" in
-h | --help) . "$(dirname "${BASH_SOURCE[0]}")/lib/help.sh"; script_help; exit 0 ;;
"" | --with-bench-tools | --with-fuzz-tools) ;;
*) echo "setup.sh: unknown option $1 (--help)" >&2; exit 2 ;;
esac

PACKAGES=(
    g++ cmake ninja-build pkg-config
    libboost1.81-dev libboost-json1.81-dev
    libpqxx-dev libpq-dev libssl-dev
    libyaml-cpp-dev
    postgresql util-linux
    libgtest-dev libgmock-dev libbenchmark-dev
    clang-format
    ccache
    nginx
)
# Optional tools used by benchmarks and reports; their absence never fails the build or the tests.
OPTIONAL=(wrk gnuplot-nox python3)
# Fuzzing (scripts/fuzz.sh): Debian's clang 14 and its runtime (libFuzzer, ASan, UBSan).
FUZZ_TOOLS=(clang-14 libclang-rt-14-dev)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" = "--with-bench-tools" ]; then
    for p in "${OPTIONAL[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
fi
if [ "${1:-}" = "--with-fuzz-tools" ]; then
    for p in "${FUZZ_TOOLS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all required packages are installed"
    exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-upgrade: install only what is missing, do not upgrade what is already there.
$SUDO apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
echo "setup: done"
