#!/usr/bin/env bash
# Runs the whole comparison: builds the release binaries, installs what the
# sweep needs when absent (redis-server, the reference servers of peers/, and
# on Debian the profilers perf and heaptrack, whose profiles the report
# notes as not taken where they cannot be installed),
# then hands over to chat-bench, which walks the sweep (scripts/sweep/*.toml)
# and regenerates the report.
#
#   bash scripts/bench.sh [--quick] [--django] [--no-peers] [--baseline REV]
#                         [--server-cpus LIST] [--loadgen-cpus LIST] [--out DIR]
#                         [--profiles-only]
#
# --quick        a smoke run, within 3 minutes once built (scripts/sweep/quick.toml),
#                written to results/<date>-<host>-quick/ with its own REPORT.md
# --django       also the Django Channels tutorial chat (its venv from PyPI)
# --no-peers     without the reference servers (uWebSockets.js, Go gorilla, Node ws)
# --baseline REV also before/after pairs against our servers built at REV
# --server-cpus, --loadgen-cpus LIST
#                pin the servers and the load generator (taskset lists)
# --out DIR      the run directory [default: results/<UTC date>-<hostname>]
# --profiles-only
#                only the profiles (perf, heaptrack), taken again into the
#                existing run --out DIR, then its report regenerated
#
# `chat-bench --help` says the rest; what each experiment asks and why is in
# the sweep files.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}

command_line="bash scripts/bench.sh"
if (($#)); then command_line+=$(printf ' %q' "$@"); fi
peers=true
for arg in "$@"; do
    case "$arg" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    --no-peers) peers=false ;;
    esac
done

echo "bench.sh: building the release binaries (cargo build --release)"
cargo build --release --locked --quiet --bin chat-bench --bin chat-sync --bin chat-async \
    --bin chat-loadgen --bin chat-report
if ! command -v redis-server >/dev/null; then
    bash .ci/install-redis.sh
fi
if [[ "$peers" == true ]]; then
    bash peers/install.sh
fi
if ! command -v perf >/dev/null || ! command -v heaptrack >/dev/null; then
    echo "bench.sh: installing Debian's linux-perf and heaptrack for the profiles"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends linux-perf heaptrack) >/dev/null 2>&1; then
        echo "bench.sh: could not install them; the report will say which profiles were not taken"
    fi
fi
exec "$target_dir/release/chat-bench" --command-line "$command_line" "$@"
