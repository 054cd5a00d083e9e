# shellcheck shell=bash
# Shell functions more than one of scripts/*.sh needs, written once.
# Sourced, not run.

# Waits for process $1 (a child of this shell) at most $2 seconds, then
# SIGKILLs it. `tail --pid` returns as soon as the process is gone (it polls
# every 50 ms) and `timeout` bounds it; `wait` then collects the status.
# (Not `wait -n` on the process and a timer, nor a watchdog subshell: a fast
# exit races bash's job bookkeeping, and a subshell signalled before it sets
# its own traps runs this script's.) Sets wait_status to the exit status;
# returns 1 if it had to kill.
# shellcheck disable=SC2034 # wait_status is read by the caller
wait_bounded() {
    local pid=$1 seconds=$2 killed=false
    if ! timeout "$seconds" tail --pid="$pid" --sleep-interval=0.05 -f /dev/null; then
        killed=true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait_status=0
    { wait "$pid"; } 2>/dev/null || wait_status=$?
    [[ "$killed" == false ]]
}

# Every version of a package in Cargo.lock (a crate can appear twice), run
# from the repository's root: scripts/sysinfo.sh's table, and bench.sh's
# `chat-loadgen machine --crate`.
lock_versions() {
    awk -v want="$1" '
        /^\[\[package\]\]/ { name = "" }
        /^name = /         { name = $3; gsub(/"/, "", name) }
        /^version = / && name == want { v = $3; gsub(/"/, "", v); out = out (out ? ", " : "") v }
        END { print (out ? out : "not in Cargo.lock") }
    ' Cargo.lock
}
