#!/usr/bin/env bash
# The soak (endurance) run: each server in turn under a steady mixed load
# for N minutes (rooms of 2 to 50 members chatting, connection churn, a slow
# reader now and then, bad clients), every delivery checked and the server's
# memory, threads, descriptors and CPU sampled every 5 s
# (`chat-loadgen soak`).
#
#   bash scripts/soak.sh [--minutes N] [--out DIR] [--servers "sync async"]
#
# --minutes N   minutes of load per server [default: 30]
# --out DIR     the run directory [default: results/soak/<UTC date>-<hostname>]
# --servers L   the servers to soak, in turn [default: "sync async"]
#
# DIR gets soak.jsonl (one JSON record per server, appended by chat-loadgen
# --json) and README.md (the commit, the machine, the limits, this command
# and each chat-loadgen command with how it and its server ended). Servers'
# logs go to target/soak-logs/<run>/, which is not committed. Exits non-zero,
# naming them, if any server's soak did not pass or its server did not stop
# cleanly, after soaking every server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
target_dir=${CARGO_TARGET_DIR:-target}

# The filter for both servers' tracing logs, as in bench.sh: warnings and
# errors only, as a deployment would run.
readonly SERVER_RUST_LOG=warn
# Bounded waits: for a server's first stdout line, and for it to exit after
# SIGTERM (it gives clients --shutdown-timeout-secs, 5 s by default).
readonly READY_TIMEOUT_S=10
readonly STOP_TIMEOUT_S=20

usage() {
    sed -n '2,19s/^# \{0,1\}//p' "$0"
}

die() {
    echo "soak.sh: $*" >&2
    exit 1
}

note() {
    printf '%s\n' "$@" >>"$readme"
}

# Starts server $1 on 127.0.0.1:0 with the same flags as every other, its
# stdout through a FIFO so that its first line (`listening on
# http://HOST:PORT`) is read with a bounded wait, the rest drained to its
# log. Sets server_pid, server_url, server_log.
start_server() {
    local label=$1 fifo fd line
    server_log="$logs/$label"
    fifo="$logs/.$label.fifo"
    rm -f "$fifo"
    mkfifo "$fifo"
    env RUST_LOG="$SERVER_RUST_LOG" "$target_dir/release/chat-$label" --addr 127.0.0.1:0 \
        >"$fifo" 2>"$server_log.err" &
    server_pid=$!
    exec {fd}<"$fifo"
    rm -f "$fifo"
    line=""
    IFS= read -r -t "$READY_TIMEOUT_S" line <&"$fd" || true
    printf '%s\n' "$line" >"$server_log.out"
    if [[ ! "$line" =~ ^listening\ on\ http://([^/[:space:]]+)$ ]]; then
        exec {fd}<&-
        kill -TERM "$server_pid" 2>/dev/null || true
        wait_bounded "$server_pid" "$STOP_TIMEOUT_S" || true
        server_pid=""
        tail -n 20 "$server_log.err" >&2 || true
        return 1
    fi
    server_url="ws://${BASH_REMATCH[1]}"
    cat <&"$fd" >>"$server_log.out" &
    drain_pid=$!
    exec {fd}<&-
}

# Stops the server with SIGTERM; sets stop_outcome. Returns 1 unless it
# exited 0 within STOP_TIMEOUT_S.
stop_server() {
    local pid=$server_pid rc=0
    server_pid=""
    if ! kill -0 "$pid" 2>/dev/null; then
        wait_bounded "$pid" 1 || true
        stop_outcome="the server had exited by itself (status $wait_status) before SIGTERM"
        rc=1
    else
        kill -TERM "$pid"
        if wait_bounded "$pid" "$STOP_TIMEOUT_S"; then
            stop_outcome="the server exited with status $wait_status after SIGTERM"
            ((wait_status == 0)) || rc=1
        else
            stop_outcome="the server was still running $STOP_TIMEOUT_S s after SIGTERM: killed"
            rc=1
        fi
    fi
    wait_bounded "$drain_pid" 5 || true
    return "$rc"
}

cleanup() {
    if [[ -n "${server_pid:-}" ]]; then
        echo "soak.sh: stopping the server still running (pid $server_pid)" >&2
        stop_server || true
    fi
}

# Soaks server $1: starts it, runs chat-loadgen soak against it, stops it;
# records everything in the README and any failure in `failures`.
soak() {
    local label=$1 status=0 started
    local -a cmd
    note "" "## \`$label\`" ""
    note "Server: \`env RUST_LOG=$SERVER_RUST_LOG $target_dir/release/chat-$label --addr 127.0.0.1:0\`."
    if ! start_server "$label"; then
        note "It gave no \`listening on http://HOST:PORT\` line within $READY_TIMEOUT_S s (stderr: \`$server_log.err\`)."
        failures+=("$label: the server did not start")
        return 0
    fi
    cmd=("$target_dir/release/chat-loadgen" soak --url "$server_url" --label "$label"
        --server-pid "$server_pid" --minutes "$minutes" --json "$out/soak.jsonl" --commit "$commit")
    note "" '```sh' "${cmd[*]}" '```'
    echo "soak.sh: [$label] ${cmd[*]}"
    started=$SECONDS
    "${cmd[@]}" || status=$?
    local loadgen_outcome="chat-loadgen exit $status after $((SECONDS - started)) s"
    if ((status != 0)); then
        failures+=("$label: the soak did not pass (chat-loadgen exit $status)")
    fi
    if ! stop_server; then
        failures+=("$label: $stop_outcome")
        note "$loadgen_outcome; $stop_outcome (stderr, last lines):" ""
        tail -n 5 "$server_log.err" | sed 's/^/    /' >>"$readme" || true
    else
        note "$loadgen_outcome; $stop_outcome."
    fi
}

main() {
    local command_line server
    command_line="bash scripts/soak.sh"
    # (printf repeats its format once even for no arguments: only with some)
    if (($#)); then command_line+=$(printf ' %q' "$@"); fi
    minutes=30
    out=""
    servers="sync async"
    while (($#)); do
        case "$1" in
        --minutes)
            (($# >= 2)) || die "--minutes needs a number"
            minutes=$2
            shift
            ;;
        --out)
            (($# >= 2)) || die "--out needs a directory"
            out=$2
            shift
            ;;
        --servers)
            (($# >= 2)) || die "--servers needs a list, e.g. \"sync async\""
            servers=$2
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--minutes $minutes: not a number of minutes"
    for server in $servers; do
        [[ "$server" == sync || "$server" == async ]] || die "--servers: unknown server $server (sync, async)"
    done
    [[ -n "${servers// /}" ]] || die "--servers: no server given"
    out=${out:-results/soak/$(date -u +%Y-%m-%d)-$(hostname)}
    [[ ! -e "$out/soak.jsonl" ]] ||
        die "$out/soak.jsonl exists: remove it, or pass --out DIR, so that two runs never mix in one file"

    echo "soak.sh: building the release binaries"
    cargo build --release --locked -p chat-server-sync -p chat-server-async -p chat-loadgen
    local soft hard
    soft=$(ulimit -Sn)
    hard=$(ulimit -Hn)
    ulimit -Sn "$hard"
    mkdir -p "$out"
    readme="$out/README.md"
    logs="$target_dir/soak-logs/$(basename "$out")"
    rm -rf "$logs"
    mkdir -p "$logs"
    commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    failures=()
    server_pid=""
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    {
        echo "# Soak run \`$(basename "$out")\`"
        echo
        echo "Written by \`scripts/soak.sh\`. \`soak.jsonl\` holds one JSON record per server"
        echo "(\`chat-loadgen soak --json\`, raw data: its samples, totals and warnings)."
        echo
        echo "## Command"
        echo
        echo '```sh'
        echo "$command_line"
        echo '```'
        echo
        echo "Open files: soft limit raised from $soft to the hard limit, $hard."
        echo
        bash scripts/sysinfo.sh
        echo
        echo "## Runs"
        echo
        echo "Each server started afresh, soaked $minutes minute(s), stopped with SIGTERM."
        echo "Servers' logs: \`$logs/\` (not committed)."
    } >"$readme"

    for server in $servers; do
        soak "$server"
    done

    note "" "## End" "" "$(date -u '+%Y-%m-%d %H:%M:%S') UTC, ${#failures[@]} failure(s)."
    if ((${#failures[@]})); then
        printf -- '- %s\n' "${failures[@]}" >>"$readme"
        printf 'soak.sh: FAILED: %s\n' "${failures[@]}" >&2
        exit 1
    fi
    echo "soak.sh: every soak passed: $out/soak.jsonl, $readme"
}

main "$@"
