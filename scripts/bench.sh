#!/usr/bin/env bash
# Runs the whole comparison: builds the release binaries, raises and records
# the limits that bound connections, then drives each server through the
# same sweep with chat-loadgen, and regenerates the report.
#
#   bash scripts/bench.sh [--quick] [--django] [--external NAME=URL[,PID]]...
#                         [--pin] [--baseline REV] [--out DIR]
#
# --quick      a smoke run, under 3 minutes: tiny counts and durations,
#              written to results/<date>-<host>-quick/ with its own REPORT.md
# --django     also benchmark the Django Channels tutorial chat
#              (scripts/django/run.sh, needs python3 and PyPI), label `django`
# --external NAME=URL[,PID]
#              also benchmark a server already running at URL (ws://HOST:PORT)
#              under the label NAME, sampling process PID if given; the script
#              neither starts nor stops it (repeatable)
# --pin        one core each: servers on core 1 (`taskset -c 1`, chat-async
#              with --workers 1), the load generator on core 0 (--workers 1)
# --baseline REV
#              also measure before/after: build chat-sync and chat-async at
#              git revision REV (in a worktree under the target directory)
#              and repeat a few of the sweep's runs against them, and against
#              today's servers with one optimisation turned off; the report
#              pairs each with the same run on today's servers
# --out DIR    the run directory [default: results/<UTC date>-<hostname>]
#
# Both of our servers also run the history experiments (issue 5): history
# off and on (each database bridge of chat-async), and a quiet room beside
# a busy one with every database call delayed (see history_runs); and the
# Redis experiments (issue 6): rooms in memory against rooms on Redis with
# 1, 2 and 4 processes, 2 Redis shards against 1, and with --django a room
# shared by chat-sync, chat-async and Django (see layer_runs; needs
# redis-server: bash .ci/install-redis.sh).
#
# Each run directory gets runs.jsonl (one JSON record per load-generator
# run, appended by chat-loadgen --json), machine.json (the machine, the
# limits, the pinning, the versions, the commit and whether the tree was
# clean, as data: chat-loadgen machine) and README.md (the same in words,
# this command and every chat-loadgen command run, with how it ended).
# Whether a run kept up is chat-loadgen verdict's to say (the rule is
# chat_record::verdict's), never this script's. Servers' own logs go to
# target/bench-logs/<run>/, which is not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# Cargo's target directory, where the binaries, the Django venv and the
# servers' logs are.
target_dir=${CARGO_TARGET_DIR:-target}

# ---------------------------------------------------------------- the sweep

# Flags given to both of our servers, identical so that only the concurrency
# model differs: a connection limit above anything the connections ladder
# asks for, every other limit (outbox capacity included) at its default.
readonly SERVER_FLAGS=(--max-connections 100000)
# The filter for both servers' tracing logs (the same for both, as
# STYLE.md asks): warnings and errors only, as a deployment would run.
readonly SERVER_RUST_LOG=warn
# Bounded waits: for a server's `listening on` line (Django imports itself
# first), and for a server to exit after SIGTERM (our servers give clients
# --shutdown-timeout-secs, 5 s by default; Daphne about as long).
readonly READY_TIMEOUT_S=10
readonly DJANGO_READY_TIMEOUT_S=60
readonly STOP_TIMEOUT_S=20
# Free ports tried for one redis-server, should another process bind the
# one picked first.
readonly REDIS_PORT_ATTEMPTS=3
# Descriptors kept free, in the server and in the load generator, beyond one
# per connection (listener, logs, epoll, /proc readings...).
readonly FD_MARGIN=250
# Connections per loopback source address: one address has ~28,000
# ephemeral ports toward one server port (ip_local_port_range), keep a margin.
readonly CONNECTIONS_PER_SOURCE_ADDR=20000

# Sets the sweep's parameters for the full run or the quick one.
#
# Fan-out in one room: 1 sender at 100 msg/s, 64-byte messages, so 10
# clients is light work (1,000 deliveries/s) and 5,000 clients asks for
# 500,000 deliveries/s: the step where a server saturates shows.
#
# Many rooms of 10 clients, 1 sender each: the rates keep the total at
# 100,000 deliveries/s, the same as the 1,000-client single room (100 msg/s x
# 1,000): 100 rooms at 100 msg/s, 1,000 rooms at 10 msg/s (10,000 clients).
# The three runs then differ only in how the same work is split into rooms.
#
# Peak at 1,000 clients in one room: the sender's rate stepped up (each
# message makes 1,000 deliveries) until a server no longer keeps up (see
# kept_up); one more run at half the most deliveries/s it made in a run
# that lost nothing gives the latency of a server busy but not saturated.
#
# Capacity: one room, 4 senders at 2 msg/s each (the websocket-shootout
# broadcast benchmark's load), clients stepped up by 1,000 until p99 passes
# 250 ms or anything goes wrong, up to what the open-files limit lets one
# process hold (the load generator holds every client).
#
# Connections: a ladder of idle connections, stopped at a server's first
# rung that does not open them all. The sync server needs two threads per
# connection, so it meets pid_max (32,768 here), or max_map_count (65,530:
# a thread's stack and its guard page are two maps), near 16,000.
#
# History, throughput: 10 rooms of 10 clients, one sender each, at each rate
# of history_rates: many messages in small rooms, so that storing them is
# much of the work (100 to 3,000 msg/s per sender: 1,000 to 30,000 messages
# stored per second in all, each delivered to 10 members): the top rungs
# are where a store path may fall behind while the same server without
# history keeps up; the report compares at the heaviest load each server
# carries with history off.
#
# Rooms on Redis: layer_rooms rooms of layer_room_size clients, one sender
# each at each rate of layer_rates: many small rooms, so that most of the
# work is per message (a PUBLISH to Redis, which sends it to every process
# subscribed to the room's channel, then a fan-out to a few members in each)
# and Redis's share of it is as large as the process count makes it: every
# process has members in every room (chat-loadgen spreads them), so every
# message goes from Redis to every process, and Redis's work grows with
# messages x processes while the deliveries stay the same. 24 rooms of 8
# split evenly over 1, 2, 3 or 4 processes and give two shards channels
# each. The rates go from light to past what this 2-core machine carries
# with everything on it (600 to 24,000 msg/s, 4,800 to 192,000
# deliveries/s); each configuration stops at its first rung not delivered.
# The mixed room: mixed_clients clients in one room, mixed_senders senders
# (one behind each process), at rates Django carries (it alone peaks at a
# few thousand deliveries/s here; it gets a third of these).
#
# History, stall: the quiet room (10 clients, one sender at 20 msg/s) beside
# the busy room (10 clients, all sending 100 msg/s), every database call
# first sleeping stall_delay_ms. One call at a time per room allows the busy
# room 1,000 / stall_delay_ms msg/s, so it asks for more than a bridge that
# stores one message per call can give. --drain above --drain-max: a server
# stalled by its database delivers nothing for a while, which must count as
# late (its latency recorded as at least the wait), not as lost.
set_sweep() {
    if [[ "$quick" == true ]]; then
        fanout_clients=(10 100)
        fanout_timing=(--warmup 1 --duration 2 --drain 2)
        rooms_cases=(10:10)
        rooms_timing=(--warmup 1 --duration 2 --drain 2)
        peak_clients=100
        peak_rates=(300 1000)
        peak_timing=(--warmup 1 --duration 2 --drain 2 --drain-max 10)
        capacity_args=(--start 10 --step 20 --senders 4 --rate 2 --payload 64
            --warmup 0.5 --duration 1 --drain 2 --slo-ms 250)
        capacity_max=50
        PROFILE_S=1
        connections_ladder=(500)
        baseline_connections=500
        connections_hold=1
        history_rates=(100)
        history_timing=(--warmup 0.5 --duration 1 --drain 1 --drain-max 2)
        stall_timing=(--warmup 0.5 --duration 1 --drain 3 --drain-max 1)
        layer_rates=(100)
        layer_timing=(--warmup 0.5 --duration 1 --drain 1 --drain-max 2)
        mixed_rates=(10)
    else
        fanout_clients=(10 100 1000 5000)
        fanout_timing=(--warmup 2 --duration 10)
        rooms_cases=(100:100 1000:10)
        rooms_timing=(--warmup 2 --duration 10)
        peak_clients=1000
        peak_rates=(300 1000 2000 4000)
        peak_timing=(--warmup 2 --duration 5 --drain-max 20)
        capacity_args=(--start 1000 --step 1000 --senders 4 --rate 2 --payload 64
            --warmup 1 --duration 5 --slo-ms 250)
        capacity_max=30000
        PROFILE_S=5
        connections_ladder=(1000 5000 10000 14000 16000 20000 30000 50000)
        baseline_connections=10000
        connections_hold=5
        history_rates=(100 300 1000 3000)
        history_timing=(--warmup 1 --duration 5 --drain-max 20)
        stall_timing=(--warmup 2 --duration 10 --drain 10 --drain-max 5)
        layer_rates=(25 100 250 500 1000)
        layer_timing=(--warmup 1 --duration 5 --drain 2 --drain-max 10)
        mixed_rates=(10 30)
    fi
    layer_rooms=24
    layer_room_size=8
    layer_processes=(1 2 4)
    layer_shards=2
    mixed_clients=30
    mixed_senders=3
    history_rooms=10
    stall_delay_ms=10
    stall_quiet=(--clients 10 --rooms 1 --senders 1 --rate 20)
    stall_busy=(--busy-clients 10 --busy-senders 10 --busy-rate 100)
}

# ------------------------------------------------------------ the plumbing

usage() {
    sed -n '2,25s/^# \{0,1\}//p' "$0"
}

die() {
    echo "bench.sh: $*" >&2
    exit 1
}

# Milliseconds since the epoch, from bash itself (no fork per reading).
now_ms() {
    local us=${EPOCHREALTIME/[.,]/}
    echo $((us / 1000))
}

# Seconds between two now_ms readings, with one decimal.
elapsed_s() {
    local ms=$(($2 - $1))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# Appends its arguments, one line each, to the run's README.
note() {
    printf '%s\n' "$@" >>"$readme"
}

# Raises the limits that bound how many connections a process can hold: the
# open-files limit (one descriptor per connection, in the server and in the
# load generator) to its hard limit, after trying to raise the hard limit to
# the kernel's nr_open (needs CAP_SYS_RESOURCE); the process limit likewise
# (the sync server's threads count against it). Says what it did, and keeps
# the sentences for the README.
raise_limits() {
    local soft hard nr_open error
    limit_notes=()
    soft=$(ulimit -Sn)
    hard=$(ulimit -Hn)
    nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
    if [[ "$hard" != unlimited ]] && ((hard < nr_open)); then
        if error=$(ulimit -Hn "$nr_open" 2>&1); then
            ulimit -Hn "$nr_open"
            limit_notes+=("open files: hard limit raised from $hard to $nr_open.")
            hard=$nr_open
        else
            limit_notes+=("open files: the hard limit stays $hard: raising it to $nr_open failed (${error##*: }; this needs CAP_SYS_RESOURCE), so neither the servers nor the load generator can hold more than about $hard connections.")
        fi
    fi
    if [[ "$soft" != "$hard" ]]; then
        ulimit -Sn "$hard"
        limit_notes+=("open files: soft limit raised from $soft to $hard.")
    else
        limit_notes+=("open files: soft limit already at the hard limit, $hard.")
    fi
    soft=$(ulimit -Su)
    hard=$(ulimit -Hu)
    if [[ "$soft" != "$hard" ]]; then
        ulimit -Su "$hard"
        limit_notes+=("processes (\`ulimit -u\`): soft limit raised from $soft to $hard.")
    else
        limit_notes+=("processes (\`ulimit -u\`): already at the hard limit, $hard.")
    fi
    printf 'bench.sh: %s\n' "${limit_notes[@]}"
    fd_limit=$(ulimit -Sn)
}

# Every process this script started and has not stopped yet (servers and
# Redis), one entry per process across these arrays: its pid, its name (the
# server's label, or redis), its group (`server` or `redis`: stopped
# together, servers before the Redis they use), the path of its logs
# without the extension, and the pid of the drain of its stdout.
managed_pids=()
managed_names=()
managed_groups=()
managed_logs=()
managed_drains=()

# Starts a process we manage, in group $2 under the name $1, and waits for
# it to say it is ready: one of the first $5 lines of its stdout matching
# the bash regex $4, within $3 seconds (a bounded `read -t` on a FIFO, no
# sleep). The command and its arguments are $6 on. Its stderr goes to
# <log>.err, its stdout (the lines read included) to <log>.out, drained to
# the end so that a chatty process (Daphne's access log) never blocks on a
# full pipe. Sets launched_pid, launched_log, launched_first (the first
# line) and launched_match (BASH_REMATCH of the ready line). Returns 1, the
# process stopped (stop_outcome says how), if it was not ready in time.
launch_process() {
    local name=$1 group=$2 timeout=$3 pattern=$4 max_lines=$5 fifo fd line left n=0
    local ready=false deadline
    shift 5
    server_runs=$((server_runs + 1))
    launched_log="$logs/$(printf '%03d' "$server_runs")-$name"
    fifo="$logs/.stdout.fifo"
    rm -f "$fifo"
    mkfifo "$fifo"
    "$@" >"$fifo" 2>"$launched_log.err" &
    launched_pid=$!
    managed_pids+=("$launched_pid")
    managed_names+=("$name")
    managed_groups+=("$group")
    managed_logs+=("$launched_log")
    managed_drains+=("")
    exec {fd}<"$fifo"
    rm -f "$fifo"
    : >"$launched_log.out"
    launched_first=""
    launched_match=()
    deadline=$(($(now_ms) + timeout * 1000))
    while ((n < max_lines)); do
        left=$((deadline - $(now_ms)))
        ((left > 0)) || break
        IFS= read -r -t "$((left / 1000)).$(printf '%03d' $((left % 1000)))" line <&"$fd" || break
        n=$((n + 1))
        ((n > 1)) || launched_first=$line
        printf '%s\n' "$line" >>"$launched_log.out"
        if [[ "$line" =~ $pattern ]]; then
            launched_match=("${BASH_REMATCH[@]}")
            ready=true
            break
        fi
    done
    if [[ "$ready" == false ]]; then
        exec {fd}<&-
        stop_pids "$launched_pid" || true
        return 1
    fi
    cat <&"$fd" >>"$launched_log.out" &
    managed_drains[-1]=$!
    exec {fd}<&-
}

# Starts a server we manage (sync, async or django), with the extra flags
# of server_extra_flags (ours) or the Redis URLs of django_redis_urls
# (Django's CHAT_REDIS_URLS), and reads its address from the first line of
# its stdout. Sets server_pid, server_url and server_label.
start_server() {
    local label=$1 timeout=$READY_TIMEOUT_S
    local -a cmd environment=(RUST_LOG="$SERVER_RUST_LOG")
    case "$label" in
    sync) cmd=("$server_bin_dir"/chat-sync --addr 127.0.0.1:0 "${SERVER_FLAGS[@]}"
        "${server_extra_flags[@]}") ;;
    async) cmd=("$server_bin_dir"/chat-async --addr 127.0.0.1:0 "${SERVER_FLAGS[@]}"
        --workers "$async_workers" "${server_extra_flags[@]}") ;;
    django)
        cmd=(bash scripts/django/run.sh --port 0)
        if [[ -n "${django_redis_urls:-}" ]]; then
            environment+=(CHAT_REDIS_URLS="$django_redis_urls")
        fi
        timeout=$DJANGO_READY_TIMEOUT_S
        ;;
    *) die "no way to start a server labelled $label" ;;
    esac
    cmd=(env "${environment[@]}" "${cmd[@]}")
    if [[ "$pin" == true ]]; then
        cmd=(taskset -c 1 "${cmd[@]}")
    fi
    server_label=$label
    if ! launch_process "$label" server "$timeout" '^listening on http://([^/[:space:]]+)$' 1 \
        "${cmd[@]}"; then
        tail -n 20 "$launched_log.err" >&2 || true
        die "$label gave no \`listening on http://HOST:PORT\` line within $timeout s (first line: \"$launched_first\"; $stop_outcome; stderr above, in $launched_log.err)"
    fi
    server_pid=$launched_pid
    server_url="ws://${launched_match[1]}"
}

# A TCP port of 127.0.0.1 that nothing listens on now, below the ephemeral
# range (so that no outgoing connection takes it meanwhile). Another
# process may still bind it first: start_redis then tries another.
free_port() {
    local low high port hex
    read -r low high </proc/sys/net/ipv4/ip_local_port_range
    high=$((low - 1))
    low=10000
    ((high > low)) || high=$((low + 20000))
    while true; do
        port=$((low + (RANDOM * 32768 + RANDOM) % (high - low + 1)))
        printf -v hex '%04X' "$port"
        if ! grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
}

# Starts a redis-server of this script's own, named $1 in the logs: on a
# free port of 127.0.0.1, in a directory of its own under redis_dir, no
# persistence (`--save '' --appendonly no`), ready once it logs `Ready to
# accept connections`; up to REDIS_PORT_ATTEMPTS ports, should another
# process take the one picked. Pinned with the servers under --pin. Sets
# redis_pid and redis_url.
start_redis() {
    local name=$1 attempt port
    local -a prefix=()
    [[ "$pin" == true ]] && prefix=(taskset -c 1)
    for ((attempt = 1; attempt <= REDIS_PORT_ATTEMPTS; attempt++)); do
        port=$(free_port)
        mkdir -p "$redis_dir/$port"
        if launch_process "$name" redis "$READY_TIMEOUT_S" 'Ready to accept connections' 200 \
            "${prefix[@]}" redis-server --bind 127.0.0.1 --port "$port" --dir "$redis_dir/$port" \
            --save '' --appendonly no --daemonize no --logfile ''; then
            redis_pid=$launched_pid
            redis_url="redis://127.0.0.1:$port"
            return 0
        fi
        echo "bench.sh: redis-server on port $port did not start ($stop_outcome; $launched_log.out)" >&2
    done
    die "redis-server did not start on any of $REDIS_PORT_ATTEMPTS ports (logs: $launched_log.out)"
}

# Stops the managed processes $@ (pids) at once: SIGTERM to each still
# running, then a bounded wait for each (SIGKILL past STOP_TIMEOUT_S), then
# for the drains of their stdout; forgets them. Sets stop_outcome (how each
# ended, for the README: not printed, it must run in this shell, their
# parent, to `wait` for them) and stop_failed_logs (the logs of those that
# did not end well). Returns 1 if any had exited before it was asked to (a
# crash, or a limit hit) or did not exit cleanly.
stop_pids() {
    local pid i started rc=0 outcome several=false
    local -a outcomes=() asked=() keep=()
    (($# > 1)) && several=true
    stop_failed_logs=()
    started=$(now_ms)
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            asked+=("$pid")
        fi
    done
    for i in "${!managed_pids[@]}"; do
        pid=${managed_pids[$i]}
        if [[ " $* " != *" $pid "* ]]; then
            keep+=("$i")
            continue
        fi
        local who="${managed_names[$i]} (pid $pid)"
        [[ "$several" == true ]] || who=${managed_groups[$i]}
        if [[ " ${asked[*]} " != *" $pid "* ]]; then
            wait_bounded "$pid" "$STOP_TIMEOUT_S" || true
            outcome="$who had exited by itself (status $wait_status) before SIGTERM"
            rc=1
            stop_failed_logs+=("${managed_logs[$i]}")
        elif wait_bounded "$pid" "$STOP_TIMEOUT_S"; then
            outcome="$who exit $wait_status, $(elapsed_s "$started" "$(now_ms)") s after SIGTERM"
            if ((wait_status != 0)); then
                rc=1
                stop_failed_logs+=("${managed_logs[$i]}")
            fi
        else
            outcome="$who still running ${STOP_TIMEOUT_S} s after SIGTERM: killed (SIGKILL)"
            rc=1
            stop_failed_logs+=("${managed_logs[$i]}")
        fi
        outcomes+=("$outcome")
        if [[ -n "${managed_drains[$i]}" ]]; then
            # The drain ends when the process's stdout closes; Daphne's
            # detached readiness watcher has exited long before. Bounded
            # all the same: a process left behind could hold the pipe open.
            wait_bounded "${managed_drains[$i]}" 5 || true
        fi
    done
    local -a pids=() names=() groups=() logs_=() drains=()
    for i in "${keep[@]}"; do
        pids+=("${managed_pids[$i]}")
        names+=("${managed_names[$i]}")
        groups+=("${managed_groups[$i]}")
        logs_+=("${managed_logs[$i]}")
        drains+=("${managed_drains[$i]}")
    done
    managed_pids=("${pids[@]}")
    managed_names=("${names[@]}")
    managed_groups=("${groups[@]}")
    managed_logs=("${logs_[@]}")
    managed_drains=("${drains[@]}")
    stop_outcome=""
    for outcome in "${outcomes[@]}"; do
        stop_outcome+="${stop_outcome:+; }$outcome"
    done
    return "$rc"
}

# Stops every managed process of group $1 (`server` or `redis`) at once, as
# stop_pids does. Returns 0, with stop_outcome "nothing to stop", if there
# is none.
stop_group() {
    local i
    local -a pids=()
    for i in "${!managed_pids[@]}"; do
        [[ "${managed_groups[$i]}" == "$1" ]] && pids+=("${managed_pids[$i]}")
    done
    if ((${#pids[@]} == 0)); then
        stop_outcome="nothing to stop"
        stop_failed_logs=()
        return 0
    fi
    stop_pids "${pids[@]}"
}

# Stops the managed servers (not Redis): see stop_pids.
stop_server() {
    stop_group server
}

# On any exit (an error, Ctrl-C), no managed process is left running, and
# the temporary directories are gone.
cleanup() {
    local group
    for group in server redis; do
        if [[ " ${managed_groups[*]} " == *" $group "* ]]; then
            echo "bench.sh: stopping every $group still running" >&2
            stop_group "$group" || true
        fi
    done
    if [[ -n "${history_dir:-}" ]]; then
        rm -rf "$history_dir"
    fi
    if [[ -n "${redis_dir:-}" ]]; then
        rm -rf "$redis_dir"
    fi
}

# Runs chat-loadgen once against the current server processes (the URLs
# of server_urls, sampling the pids of server_sample_pids, one per URL or
# none), recording the exact command in the README before it runs and how
# it ended after. Returns the load generator's status.
run_loadgen() {
    local scenario=$1 started status=0 url pid records
    shift
    local -a cmd=("$target_dir"/release/chat-loadgen "$scenario")
    for url in "${server_urls[@]}"; do
        cmd+=(--url "$url")
    done
    cmd+=(--label "$server_label" --json "$runs" --commit "$commit")
    for pid in "${server_sample_pids[@]}"; do
        cmd+=(--server-pid "$pid")
    done
    if [[ "$pin" == true ]]; then
        cmd=(taskset -c 0 "${cmd[@]}" --workers 1)
    fi
    cmd+=("${loadgen_extra_args[@]}" "$@")
    note "" '```sh' "${cmd[*]}" '```'
    echo "bench.sh: [$server_label] ${cmd[*]}"
    records=$(wc -l <"$runs")
    started=$(now_ms)
    "${cmd[@]}" || status=$?
    loadgen_outcome="chat-loadgen exit $status in $(elapsed_s "$started" "$(now_ms)") s"
    # Whether this run appended its record: if not, the last record is an
    # earlier run's, which kept_up must not judge in its place.
    loadgen_recorded=false
    if (($(wc -l <"$runs") > records)); then
        loadgen_recorded=true
    fi
    if ((status != 0)); then
        failures+=("$server_label $scenario: chat-loadgen exit $status")
    fi
    return "$status"
}

# The write floor (`chat-loadgen floor`, no server): the CPU one thread
# spends to write() the servers' 80-byte frame to loopback sockets, 1, 4, 16
# and 64 frames per call, so that the report can state every server's CPU
# per delivery as a multiple of it. Run before the servers and again after
# them (drift on a noisy machine shows as two different floors; the report
# uses their mean). With --pin it runs on the servers' core, readers
# included. $1 says when, for the README. Returns chat-loadgen's status.
run_floor() {
    local when=$1 started status=0
    local -a cmd=("$target_dir"/release/chat-loadgen floor --label floor
        --json "$runs" --commit "$commit")
    if [[ "$quick" == true ]]; then
        cmd+=(--connections 200 --seconds 0.25)
    else
        cmd+=(--connections 1000 --seconds 1)
    fi
    if [[ "$pin" == true ]]; then
        cmd=(taskset -c 1 "${cmd[@]}")
    fi
    note "" "### Write floor, $when" "" '```sh' "${cmd[*]}" '```'
    echo "bench.sh: [floor] ${cmd[*]}"
    started=$(now_ms)
    "${cmd[@]}" || status=$?
    note "chat-loadgen exit $status in $(elapsed_s "$started" "$(now_ms)") s."
    if ((status != 0)); then
        failures+=("floor ($when): chat-loadgen exit $status")
    fi
    return "$status"
}

# One load-generator run against server $1: a managed server is started
# afresh for it (clean RSS, thread and CPU figures, and a crash cannot leak
# into the next run) and stopped after; an external one is used as it is.
# Returns non-zero if the run or the server failed.
run_case() {
    local label=$1 scenario=$2 status=0
    shift 2
    if [[ -n "${external_urls[$label]:-}" ]]; then
        server_label=$label
        server_urls=("${external_urls[$label]}")
        server_sample_pids=()
        if [[ -n "${external_pids[$label]}" ]]; then
            server_sample_pids=("${external_pids[$label]}")
        fi
        run_loadgen "$scenario" "$@" || status=$?
        note "$loadgen_outcome."
        return "$status"
    fi
    start_server "$label"
    server_urls=("$server_url")
    server_sample_pids=("$server_pid")
    run_loadgen "$scenario" "$@" || status=$?
    stopped "$label $scenario" || status=1
    return "$status"
}

# Stops every managed server, then every managed Redis, and notes in the
# README how the last chat-loadgen run and they ended (the last lines of
# the stderr of each that did not end well too). $1 names the run in the
# list of failures. Returns 1 if any did not end well.
stopped() {
    local what=$1 rc=0 outcome log
    stop_group server || rc=1
    outcome=$stop_outcome
    local -a failed=("${stop_failed_logs[@]}")
    if [[ " ${managed_groups[*]} " == *" redis "* ]]; then
        stop_group redis || rc=1
        outcome+="; $stop_outcome"
        failed+=("${stop_failed_logs[@]}")
    fi
    if ((rc != 0)); then
        failures+=("$what: $outcome")
        note "$loadgen_outcome; $outcome (stderr, last lines):" ""
        for log in "${failed[@]}"; do
            tail -n 5 "$log.err" | sed 's/^/    /' >>"$readme" || true
        done
    else
        note "$loadgen_outcome; $outcome."
    fi
    return "$rc"
}

# Whether the last record in runs.jsonl is a connections run that opened
# every connection it asked for.
opened_all() {
    local last target opened
    last=$(tail -n 1 "$runs")
    target=$(grep -o '"target":[0-9]*' <<<"$last" | head -n 1 | cut -d: -f2)
    opened=$(grep -o '"opened":[0-9]*' <<<"$last" | head -n 1 | cut -d: -f2)
    [[ -n "$target" && "$target" == "$opened" ]]
}

# The connections ladder for server $1: each rung on a fresh server, up to
# the first rung that does not open every connection (that rung is the
# finding: where the server, or this machine, stops). Rungs that need more
# descriptors than a process may have here are replaced by one rung at the
# limit, and the README says so.
connections_ladder() {
    local label=$1 count cap sources last_ran=0
    local -a rungs=()
    cap=$(((fd_limit - FD_MARGIN) / 100 * 100))
    for count in "${connections_ladder[@]}"; do
        if ((count <= cap)); then
            rungs+=("$count")
        else
            if ((${#rungs[@]} == 0 || rungs[-1] < cap)); then
                rungs+=("$cap")
            fi
            note "" "Connections rungs of $count and above are not run: a process may open only $fd_limit files here (\`ulimit -n\`), so the ladder stops at $cap."
            break
        fi
    done
    for count in "${rungs[@]}"; do
        sources=$(((count + CONNECTIONS_PER_SOURCE_ADDR - 1) / CONNECTIONS_PER_SOURCE_ADDR))
        last_ran=$count
        if ! run_case "$label" connections --count "$count" --hold "$connections_hold" \
            --source-addrs "$sources"; then
            note "" "The ladder stops here for \`$label\`: the run at $count connections failed."
            return 0
        fi
        if ! opened_all; then
            note "" "The ladder stops here for \`$label\`: it did not open all $count connections (see runs.jsonl, \`first_failure\`)."
            return 0
        fi
    done
    note "" "\`$label\` held every rung up to $last_ran connections."
}

# The whole sweep against server $1.
sweep() {
    local label=$1 clients case rooms rate
    note "" "### \`$label\`" ""
    if [[ -n "${external_urls[$label]:-}" ]]; then
        note "External server at ${external_urls[$label]} (pid ${external_pids[$label]:-not given}), neither started nor stopped by this script."
    else
        note "$(server_description "$label")" "" "Started afresh for each run below, and stopped with SIGTERM after it."
    fi
    peak_dps=0
    for clients in "${fanout_clients[@]}"; do
        run_case "$label" fanout --clients "$clients" --rooms 1 --senders 1 \
            --rate 100 --payload 64 "${fanout_timing[@]}" || true
        if ((clients == peak_clients)); then
            peak_candidate || true
        fi
    done
    for case in "${rooms_cases[@]}"; do
        rooms=${case%%:*}
        rate=${case#*:}
        run_case "$label" fanout --clients $((rooms * 10)) --rooms "$rooms" --senders 1 \
            --rate "$rate" --payload 64 "${rooms_timing[@]}" || true
    done
    peak_ladder "$label"
    run_case "$label" capacity "${capacity_args[@]}" --max "$(capacity_max_clients)" || true
    connections_ladder "$label"
}

# Whether the last chat-loadgen run kept up, as `chat-loadgen verdict`
# judges its record (the last of runs.jsonl) by chat_record::verdict, the
# one rule the load generator and the report apply too: nothing lost,
# duplicated or reordered, no client refused, nobody closed, nothing late,
# and at least chat_record::verdict::KEPT_UP_SHARE of the deliveries/s its
# load offers (computed from the record). False if that run wrote no
# record. Sets verdict_line (`VERDICT DELIVERED_PER_S OFFERED_PER_S`, empty
# without a verdict) and notes it in the README.
kept_up() {
    local status=0
    verdict_line=""
    [[ "$loadgen_recorded" == true ]] || return 1
    verdict_line=$("$target_dir"/release/chat-loadgen verdict --runs "$runs") || status=$?
    echo "bench.sh: [$server_label] verdict: ${verdict_line:-none (exit $status)}"
    note "Verdict (\`chat-loadgen verdict\`: verdict, deliveries/s made, offered): \`${verdict_line:-none, exit $status}\`."
    return "$status"
}

# After a fan-out run at peak_clients in one room: whether it kept up (see
# kept_up). The deliveries/s it made are a candidate for the rate the
# half-peak run halves if it kept up or only fell behind (nothing lost,
# nobody refused or closed): what the server sustained, so that a server
# that falls behind at the ladder's first rung still gets a run at half of
# that, which the report then judges like any other (a peak in the report
# is only ever a run that kept up).
peak_candidate() {
    local verdict rate status=0
    kept_up || status=$?
    read -r verdict rate _ <<<"$verdict_line"
    if [[ "$verdict" == kept_up || "$verdict" == fell_behind ]] &&
        awk -v got="$rate" -v best="$peak_dps" 'BEGIN { exit !(got > best) }'; then
        peak_dps=$rate
    fi
    return "$status"
}

# The peak ladder for server $1 (see set_sweep), then one run at half its
# peak: half the most deliveries/s it made in a run that lost nothing (see
# peak_candidate), at 1,000 clients in one room (the fan-out list's run at
# 100 msg/s included).
peak_ladder() {
    local label=$1 rate held half
    for rate in "${peak_rates[@]}"; do
        held=true
        run_case "$label" fanout --clients "$peak_clients" --rooms 1 --senders 1 \
            --rate "$rate" --payload 64 "${peak_timing[@]}" || held=false
        if ! peak_candidate || [[ "$held" == false ]]; then
            note "" "The peak ladder stops here for \`$label\`: it did not deliver what $rate msg/s asks."
            break
        fi
    done
    half=$(awk -v dps="$peak_dps" -v n="$peak_clients" 'BEGIN { printf "%d", dps / 2 / n }')
    if ((half > 0)); then
        note "" "\`$label\` made at most $peak_dps deliveries/s at $peak_clients clients in one room in a run that lost nothing: half of it is $half msg/s."
        run_case "$label" fanout --clients "$peak_clients" --rooms 1 --senders 1 \
            --rate "$half" --payload 64 "${fanout_timing[@]}" || true
    fi
}

# The capacity search's largest step: what the open-files limit lets the
# load generator hold, at most capacity_max.
capacity_max_clients() {
    local cap=$(((fd_limit - FD_MARGIN) / 1000 * 1000))
    ((cap < capacity_max)) || cap=$capacity_max
    echo "$cap"
}

# Before/after (--baseline REV): runs against binaries built at REV, and
# against today's binaries with one optimisation turned off, each recorded
# with --variant and followed at once by the same run against today's
# servers as they are (variant `current`), so that both sides of each
# comparison meet the machine in the same state; the report pairs them.
before_after() {
    local label
    note "" "## Before and after" "" "Binaries built at \`$baseline\` ($baseline_commit) in \`$baseline_bin_dir\`, and today's binaries with one optimisation turned off; each run is followed by the same run against today's binaries as they are (variant \`current\`)."
    for label in sync async; do
        note "" "### \`$label\`, before and after"
        variant_pair "$label" "$baseline_bin_dir" "" baseline \
            "built from commit ${baseline_commit:0:12}, before the performance work" \
            fanout --clients "$peak_clients" --rooms 1 --senders 1 \
            --rate 100 --payload 64 "${fanout_timing[@]}"
        variant_pair "$label" "$baseline_bin_dir" "" baseline \
            "built from commit ${baseline_commit:0:12}, before the performance work" \
            fanout --clients "$peak_clients" --rooms 1 --senders 1 \
            --rate "${peak_rates[0]}" --payload 64 "${peak_timing[@]}"
        variant_pair "$label" "$baseline_bin_dir" "" baseline \
            "built from commit ${baseline_commit:0:12}, before the performance work" \
            connections --count "$baseline_connections" --hold "$connections_hold" --source-addrs 1
        variant_pair "$label" "$target_dir/release" "--max-batch-frames 1" batch-1 \
            "--max-batch-frames 1: one write() per frame, no batching" \
            fanout --clients "$peak_clients" --rooms 1 --senders 1 \
            --rate "${peak_rates[0]}" --payload 64 "${peak_timing[@]}"
        variant_pair "$label" "$target_dir/release" "--read-buffer-bytes 8192" read-buffer-8k \
            "--read-buffer-bytes 8192, the previous default" \
            connections --count "$baseline_connections" --hold "$connections_hold" --source-addrs 1
    done
}

# One before/after pair against server $1: the run (scenario and arguments
# from $6 on) against the binaries in $2 with the extra server flags $3
# (split on spaces), recorded as variant $4 with note $5; then the same run
# against today's binaries, recorded as variant `current`.
variant_pair() {
    local label=$1 bin_dir=$2 flags=$3 name=$4 text=$5
    shift 5
    server_bin_dir=$bin_dir
    read -r -a server_extra_flags <<<"$flags"
    loadgen_extra_args=(--variant "$name" --variant-note="$text")
    run_case "$label" "$@" || true
    server_bin_dir="$target_dir/release"
    server_extra_flags=()
    loadgen_extra_args=(--variant current --variant-note="today's binaries, right after the $name run")
    run_case "$label" "$@" || true
    loadgen_extra_args=()
}

# The history experiments (issue 5) against servers sync and async, each
# run on a fresh server with a fresh SQLite file (in a temporary directory,
# removed afterwards), recorded as a variant that the report keeps out of
# every other section: history-<setting> for the throughput runs and
# stall-<setting> for the stall experiment, <setting> being where the
# server's database calls run (see history_case). Parameters: set_sweep.
history_runs() {
    local label setting rate
    note "" "## History (SQLite)" "" "Each run on a fresh server with a fresh SQLite file (\`--history\`, in a temporary directory, removed afterwards), recorded with \`--variant history-<setting>\` (throughput) or \`stall-<setting>\` (a quiet room beside a busy one, every database call delayed \`--db-delay-ms $stall_delay_ms\`) and the server's flags (\`--server-flags\`). <setting>: \`off\` (no --history), \`thread\` (chat-sync: SQLite on the connection's own thread), or chat-async's \`--db-bridge\` (\`writer\`, \`spawn-blocking\`, \`inline\`)."
    history_dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-history.XXXXXX")
    history_db_runs=0
    for label in sync async; do
        note "" "### \`$label\`, history"
        for setting in $(history_settings "$label"); do
            for rate in "${history_rates[@]}"; do
                history_case "$label" history "$setting" 0 \
                    --clients $((history_rooms * 10)) --rooms "$history_rooms" --senders 1 \
                    --rate "$rate" --payload 64 "${history_timing[@]}"
            done
        done
        for setting in $(history_settings "$label"); do
            history_case "$label" stall "$setting" "$stall_delay_ms" \
                "${stall_quiet[@]}" "${stall_busy[@]}" --payload 64 "${stall_timing[@]}"
        done
    done
    rm -rf "$history_dir"
    history_dir=""
}

# Where server $1's database calls can run: off (no --history), then its
# settings with history on.
history_settings() {
    case "$1" in
    sync) echo "off thread" ;;
    async) echo "off writer spawn-blocking inline" ;;
    esac
}

# One fan-out (arguments from $5 on) against server $1 for experiment $2
# (history or stall) with setting $3 (see history_settings) and, with
# history on, $4 ms of delay per database call (0: none). The server's
# flags go to chat-loadgen's record too, chat-async's --workers included.
history_case() {
    local label=$1 experiment=$2 setting=$3 delay=$4 db text
    shift 4
    history_db_runs=$((history_db_runs + 1))
    db="$history_dir/history-$history_db_runs.sqlite"
    case "$setting" in
    off)
        server_extra_flags=()
        text="history off"
        ;;
    thread)
        server_extra_flags=(--history "$db")
        text="--history: SQLite on the connection's own thread"
        ;;
    *)
        server_extra_flags=(--history "$db" --db-bridge "$setting")
        text="--history --db-bridge $setting"
        ;;
    esac
    if [[ "$setting" != off ]] && ((delay > 0)); then
        server_extra_flags+=(--db-delay-ms "$delay")
        text+=", --db-delay-ms $delay"
    fi
    local -a recorded=("${server_extra_flags[@]}")
    if [[ "$label" == async ]]; then
        recorded=(--workers "$async_workers" "${recorded[@]}")
    fi
    loadgen_extra_args=(--variant "$experiment-$setting" --variant-note="$text"
        --server-flags="${recorded[*]}")
    run_case "$label" fanout "$@" || true
    server_extra_flags=()
    loadgen_extra_args=()
    rm -f "$db" "$db-wal" "$db-shm"
}

# Rooms on Redis (issue 6), against servers sync and async (and, with
# --django, a room shared by one chat-sync, one chat-async and one Django
# process), each run on fresh processes and a fresh Redis of this script's
# own (start_redis, in a temporary directory removed afterwards), recorded
# as a variant that the report keeps out of every other section:
#
# - layer-memory: one process, rooms in its memory (--layer memory), the
#   reference;
# - layer-redis-N: N processes of the same server on one Redis, the
#   clients spread evenly over them by chat-loadgen (member k of room r
#   behind process (r + k) mod N), Redis sampled (--sample-pid redis=PID);
# - layer-redis-shards-S: the largest N of layer_processes on S Redis
#   servers (every process given every --redis-url; rooms spread over the
#   shards by channels_redis' hash), each sampled (redis-1=PID, ...), run
#   right after the one-shard run at the same rung so that both meet the
#   machine in the same state;
# - layer-mixed-django: one chat-sync, one chat-async and one Django process
#   on one Redis, one room, a sender behind each, every process sampled as
#   the server of its URL.
#
# Each configuration climbs layer_rates and stops at the first rung it does
# not deliver (kept_up); the shard comparison climbs while either of its
# two runs keeps up. Parameters: set_sweep.
layer_runs() {
    local label processes
    note "" "## Rooms on Redis" ""
    if ! command -v redis-server >/dev/null; then
        note "Not run: \`redis-server\` is not installed (\`bash .ci/install-redis.sh\`)."
        failures+=("Rooms on Redis: redis-server not found (bash .ci/install-redis.sh)")
        return 0
    fi
    note "$(redis-server --version)." "" "Each run on fresh server processes and, for the Redis layer, fresh \`redis-server\`s of this script's own (a free port of 127.0.0.1, \`--save '' --appendonly no\`, a temporary directory), stopped after it; recorded with \`--variant layer-memory\`, \`layer-redis-<processes>\`, \`layer-redis-shards-<shards>\` or \`layer-mixed-django\` and the servers' flags (\`--server-flags\`). Clients: $layer_rooms rooms of $layer_room_size, one sender per room, spread over the processes by chat-loadgen; each configuration climbs the rates ${layer_rates[*]} msg/s per sender and stops at the first it does not deliver."
    redis_dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-redis.XXXXXX")
    for label in sync async; do
        note "" "### \`$label\`, memory and Redis layers"
        layer_ladder "$label" 1 0
        for processes in "${layer_processes[@]}"; do
            layer_ladder "$label" "$processes" 1
        done
    done
    if [[ "$django" == true ]]; then
        note "" "### A room shared by chat-sync, chat-async and Django on one Redis"
        mixed_ladder
    fi
    rm -rf "$redis_dir"
    redis_dir=""
}

# The rate ladder of $2 processes of server $1 with rooms in memory ($3 = 0
# shards: one process) or on $3 Redis servers; at the largest process count,
# each rung is followed by the same run on layer_shards shards.
layer_ladder() {
    local label=$1 processes=$2 shards=$3 rate held
    local compare=false
    if ((shards == 1 && processes == layer_processes[-1] && layer_shards > 1)); then
        compare=true
    fi
    for rate in "${layer_rates[@]}"; do
        held=false
        local -a load=(--clients $((layer_rooms * layer_room_size)) --rooms "$layer_rooms"
            --senders 1 --rate "$rate" --payload 64 "${layer_timing[@]}")
        if layer_case "$shards" "$(repeat_label "$label" "$processes")" "${load[@]}" &&
            kept_up; then
            held=true
        fi
        if [[ "$compare" == true ]]; then
            if layer_case "$layer_shards" "$(repeat_label "$label" "$processes")" "${load[@]}" &&
                kept_up; then
                held=true
            fi
        fi
        if [[ "$held" == false ]]; then
            note "" "The ladder stops here for \`$label\` ($(layer_variant "$shards" "$processes" "$(repeat_label "$label" "$processes")")): it did not deliver what $rate msg/s per sender asks."
            break
        fi
    done
}

# The mixed room's ladder: one chat-sync, one chat-async and one Django
# process on one Redis.
mixed_ladder() {
    local rate
    for rate in "${mixed_rates[@]}"; do
        if ! layer_case 1 "sync async django" --clients "$mixed_clients" --rooms 1 \
            --senders "$mixed_senders" --rate "$rate" --payload 64 "${layer_timing[@]}" ||
            ! kept_up; then
            note "" "The mixed room's ladder stops here: it did not deliver what $rate msg/s per sender asks."
            break
        fi
    done
}

# `$1 $1 ... ` ($2 times): the servers of a run of $2 processes of $1.
repeat_label() {
    local i out=""
    for ((i = 0; i < $2; i++)); do
        out+="${out:+ }$1"
    done
    echo "$out"
}

# The variant name of a run on $1 Redis shards (0: the memory layer) with
# $2 processes of servers $3 (space-separated).
layer_variant() {
    local shards=$1 processes=$2 servers=$3
    if [[ "$servers" != "$(repeat_label "${servers%% *}" "$processes")" ]]; then
        if [[ " $servers " == *" django "* ]]; then
            echo layer-mixed-django
        else
            echo layer-mixed
        fi
    elif ((shards == 0)); then
        echo layer-memory
    elif ((shards == 1)); then
        echo "layer-redis-$processes"
    else
        echo "layer-redis-shards-$shards"
    fi
}

# One fan-out (arguments from $3 on) against fresh processes of the servers
# $2 (space-separated labels, one process each, in URL order) with rooms in
# memory ($1 = 0: one process) or on $1 fresh Redis servers, recorded as
# the variant layer_variant names. The clients are spread over the
# processes by chat-loadgen; every process is sampled as its URL's server,
# every Redis with --sample-pid (redis, or redis-1, redis-2... for shards).
# Returns non-zero if the run or a process failed.
layer_case() {
    local shards=$1 servers=$2 i label name status=0 variant text flags
    shift 2
    local -a labels urls=() pids=() samples=() redis_urls=()
    read -r -a labels <<<"$servers"
    variant=$(layer_variant "$shards" "${#labels[@]}" "$servers")
    for ((i = 1; i <= shards; i++)); do
        name=redis
        ((shards == 1)) || name="redis-$i"
        start_redis "$name"
        redis_urls+=("$redis_url")
        samples+=(--sample-pid "$name=$redis_pid")
    done
    if ((shards == 0)); then
        server_extra_flags=(--layer memory)
        text="rooms in the process's memory (--layer memory), one process"
    else
        server_extra_flags=(--layer redis)
        for i in "${redis_urls[@]}"; do
            server_extra_flags+=(--redis-url "$i")
        done
        django_redis_urls=$(
            IFS=,
            echo "${redis_urls[*]}"
        )
        if [[ "$servers" == "$(repeat_label "${labels[0]}" "${#labels[@]}")" ]]; then
            text="$(format_count "${#labels[@]}" "chat-${labels[0]} process" "chat-${labels[0]} processes")"
        else
            text="one process each of $(
                IFS=,
                echo "${labels[*]}"
            )"
            text=${text//,/, }
        fi
        text+=" on $(format_count "$shards" "Redis server" "Redis shards")"
    fi
    for label in "${labels[@]}"; do
        start_server "$label"
        urls+=("$server_url")
        pids+=("$server_pid")
    done
    # What the servers ran with, beyond SERVER_FLAGS: ours, then Django's
    # environment when it is among them.
    flags="${server_extra_flags[*]}"
    if [[ "${labels[*]}" == "async" || "$servers" == "$(repeat_label async "${#labels[@]}")" ]]; then
        flags="--workers $async_workers $flags"
    elif [[ " ${labels[*]} " == *" async "* ]]; then
        flags+="; async also --workers $async_workers"
    fi
    if [[ " ${labels[*]} " == *" django "* ]]; then
        flags+="; django: CHAT_REDIS_URLS=$django_redis_urls"
    fi
    server_urls=("${urls[@]}")
    server_sample_pids=("${pids[@]}")
    # The run's label: the server, or the servers of a mixed run joined
    # with `+` in URL order (the report reads each process's server there).
    if [[ "$servers" == "$(repeat_label "${labels[0]}" "${#labels[@]}")" ]]; then
        server_label=${labels[0]}
    else
        server_label=$(
            IFS=+
            echo "${labels[*]}"
        )
    fi
    loadgen_extra_args=(--variant "$variant" --variant-note="$text" --server-flags="$flags"
        "${samples[@]}")
    run_loadgen fanout "$@" || status=$?
    stopped "$server_label $variant" || status=1
    server_extra_flags=()
    loadgen_extra_args=()
    django_redis_urls=""
    return "$status"
}

# `1 Redis server`, `2 Redis shards`: $1 with the singular $2 or plural $3.
format_count() {
    if (($1 == 1)); then
        echo "1 $2"
    else
        echo "$1 $3"
    fi
}

# Where each server spends its CPU: `perf record` (software clock, 999 Hz,
# no call graphs: self time per function) of the server for PROFILE_S
# seconds in the middle of a fan-out run at 1,000 clients (100 in a quick
# run) in one room, at
# 100 msg/s and at 1,000 msg/s. The load generator's record is not kept
# (perf's sampling costs the server a little CPU); what is kept is the share
# of samples per binary (kernel, server, libc) and per function, in
# profile.tsv, which the report renders. Skipped, and said so, where perf
# cannot sample (not installed, or not allowed).
profile_servers() {
    local label rate data tsv="$out/profile.tsv" loadgen_pid
    if ! perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
        note "" "## Profiles" "" "Not taken: \`perf record -e cpu-clock\` does not run here (install Debian's linux-perf)."
        return 0
    fi
    note "" "## Profiles" "" "\`perf record -e cpu-clock -F 999 -p PID -- sleep $PROFILE_S\` of each server, from 3 s into each run below (chat-loadgen without --json: these runs are not in runs.jsonl); shares of samples in \`profile.tsv\`."
    printf 'server\trate_per_s\tkind\tname\tpercent\n' >"$tsv"
    for label in sync async; do
        for rate in 100 1000; do
            start_server "$label"
            data="$logs/perf-$label-$rate.data"
            local -a cmd=("$target_dir"/release/chat-loadgen fanout --url "$server_url"
                --label "$label" --clients "$peak_clients" --rooms 1 --senders 1 --rate "$rate"
                --payload 64 --warmup 2 --duration $((PROFILE_S + 2)) --drain 1 --drain-max 1
                --no-progress)
            note "" '```sh' "${cmd[*]}" '```'
            echo "bench.sh: [$label] profiling: ${cmd[*]}"
            "${cmd[@]}" >"$logs/perf-$label-$rate.loadgen" 2>&1 &
            loadgen_pid=$!
            # Past the connections and the warm-up: the measured window.
            sleep 3
            perf record -e cpu-clock -F 999 -o "$data" -p "$server_pid" -- sleep "$PROFILE_S" \
                >/dev/null 2>&1 || note "perf record failed for $label at $rate msg/s."
            wait_bounded "$loadgen_pid" 60 || true
            stop_server || true
            note "$stop_outcome."
            [[ -s "$data" ]] || continue
            perf report -i "$data" --no-children --sort dso --stdio -q -g none 2>/dev/null |
                awk -v s="$label" -v r="$rate" '$1 ~ /%$/ { p = $1; sub(/%/, "", p); $1 = ""; sub(/^ +/, ""); sub(/ +$/, ""); printf "%s\t%s\tbinary\t%s\t%s\n", s, r, $0, p }' >>"$tsv"
            perf report -i "$data" --no-children --sort sym --stdio -q -g none 2>/dev/null |
                awk -v s="$label" -v r="$rate" '$1 ~ /%$/ && n < 25 { n++; p = $1; sub(/%/, "", p); $1 = ""; sub(/^ +/, ""); sub(/ +$/, ""); printf "%s\t%s\tfunction\t%s\t%s\n", s, r, $0, p }' >>"$tsv"
        done
    done
}

# Builds the servers at the baseline revision in a worktree of their own.
build_baseline() {
    local src="$target_dir/baseline-src"
    baseline_commit=$(git rev-parse --verify "$baseline^{commit}") ||
        die "--baseline $baseline: not a revision of this repository"
    baseline_bin_dir="$target_dir/baseline/release"
    echo "bench.sh: building chat-sync and chat-async at $baseline ($baseline_commit)"
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
    git worktree prune
    git worktree add --detach "$src" "$baseline_commit" >/dev/null
    (cd "$src" && CARGO_TARGET_DIR="$PWD/../baseline" cargo build --release --locked \
        --bin chat-sync --bin chat-async)
    git worktree remove --force "$src"
}

# How a managed server is started, for the README.
server_description() {
    local pin_prefix=""
    [[ "$pin" == true ]] && pin_prefix="taskset -c 1 "
    case "$1" in
    sync) echo "Server: \`${pin_prefix}$target_dir/release/chat-sync --addr 127.0.0.1:0 ${SERVER_FLAGS[*]}\` with \`RUST_LOG=$SERVER_RUST_LOG\`." ;;
    async) echo "Server: \`${pin_prefix}$target_dir/release/chat-async --addr 127.0.0.1:0 ${SERVER_FLAGS[*]} --workers $async_workers\` with \`RUST_LOG=$SERVER_RUST_LOG\`." ;;
    django) echo "Server: \`${pin_prefix}bash scripts/django/run.sh --port 0\` (Daphne, Django Channels tutorial chat; see scripts/django/README.md)." ;;
    esac
}

# The first part of the run's README: what the numbers depend on.
write_readme_header() {
    {
        echo "# Benchmark run \`$(basename "$out")\`"
        echo
        echo "Written by \`scripts/bench.sh\`. \`runs.jsonl\` holds one JSON record per"
        echo "chat-loadgen run (raw data); \`chat-report\` regenerates the report from it."
        echo
        echo "## Command"
        echo
        echo '```sh'
        echo "$command_line"
        echo '```'
        echo
        echo "Mode: $([[ "$quick" == true ]] && echo "quick (smoke run: tiny counts, not for conclusions)" || echo "full sweep")."
        if [[ "$pin" == true ]]; then
            echo "Pinned: servers on core 1 (\`taskset -c 1\`, chat-async with \`--workers 1\`), chat-loadgen on core 0 (\`taskset -c 0\`, \`--workers 1\`)."
        else
            echo "Not pinned: servers and chat-loadgen share all $(nproc) cores; chat-async runs \`--workers $async_workers\`, chat-loadgen its default (one worker per core)."
        fi
        echo "The sweep's parameters, and why those: \`set_sweep\` in \`scripts/bench.sh\`"
        echo "at the commit below; the exact commands are under Runs."
        echo
        bash scripts/sysinfo.sh
        echo
        echo "## Limits raised by bench.sh"
        echo
        printf -- '- %s\n' "${limit_notes[@]}"
        echo
        echo "Every server and chat-loadgen inherit these; chat-loadgen also raises its"
        echo "own soft open-files limit to the hard limit. The same facts, as data:"
        echo "\`machine.json\`."
    } >"$readme"
}

# The machine, the limits (as raised), the pinning, the versions, the
# commit and this command, as data: $out/machine.json, which the report
# states them from (`chat-loadgen machine`).
write_machine() {
    local crate raised status=0
    local -a cmd=("$target_dir"/release/chat-loadgen machine --out "$out/machine.json"
        --command "$command_line" --mode "$([[ "$quick" == true ]] && echo quick || echo full)")
    if [[ "$pin" == true ]]; then
        cmd+=(--server-cpus 1 --loadgen-cpus 0)
    fi
    for raised in "${limit_notes[@]}"; do
        cmd+=(--raised "$raised")
    done
    for crate in tokio tungstenite tokio-tungstenite crossbeam-channel hdrhistogram; do
        cmd+=(--crate "$crate=$(lock_versions "$crate")")
    done
    "${cmd[@]}" || status=$?
    if ((status != 0)); then
        failures+=("machine.json: chat-loadgen machine exit $status")
    fi
}

# Creates the venv of the Django server before any timed start, and records
# what it runs.
prepare_django() {
    echo "bench.sh: preparing the Django venv (scripts/django/run.sh --setup-only)"
    bash scripts/django/run.sh --setup-only
    {
        echo
        echo "## Django"
        echo
        echo "\`scripts/django/run.sh\`: Daphne serving the Channels tutorial chat with the"
        echo "seed's AsyncWebsocketConsumer and the tutorial's InMemoryChannelLayer at its"
        echo "defaults (capacity 100 messages per channel, beyond which Channels drops"
        echo "messages silently; chat-loadgen counts them as lost). Python packages:"
        echo
        echo "    $("$target_dir"/django-venv/bin/python -VV | head -n 1)"
        "$target_dir"/django-venv/bin/python -m pip freeze --disable-pip-version-check | sed 's/^/    /'
    } >>"$readme"
}

# Regenerates the report. A full run in the default place regenerates
# results/REPORT.md from the newest run; a quick run, or one written
# elsewhere with --out, gets its own REPORT.md inside its directory, so that
# a smoke run never replaces the project's report.
report() {
    local -a cmd
    if [[ "$quick" == false && "$out_is_default" == true ]]; then
        cmd=("$target_dir"/release/chat-report --results results)
    else
        cmd=("$target_dir"/release/chat-report --results "$out" --run "$out")
    fi
    echo "bench.sh: ${cmd[*]}"
    "${cmd[@]}"
}

parse_args() {
    quick=false
    django=false
    pin=false
    baseline=""
    out=""
    externals=()
    while (($#)); do
        case "$1" in
        --quick) quick=true ;;
        --django) django=true ;;
        --pin) pin=true ;;
        --baseline)
            (($# >= 2)) || die "--baseline needs a git revision"
            baseline=$2
            shift
            ;;
        --baseline=*) baseline=${1#--baseline=} ;;
        --out)
            (($# >= 2)) || die "--out needs a directory"
            out=$2
            shift
            ;;
        --out=*) out=${1#--out=} ;;
        --external)
            (($# >= 2)) || die "--external needs NAME=URL[,PID]"
            externals+=("$2")
            shift
            ;;
        --external=*) externals+=("${1#--external=}") ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    declare -gA external_urls=() external_pids=()
    external_labels=()
    local spec name rest url pid
    for spec in "${externals[@]}"; do
        [[ "$spec" == *=* ]] || die "--external $spec: expected NAME=URL[,PID]"
        name=${spec%%=*}
        rest=${spec#*=}
        url=$rest
        pid=""
        if [[ "$rest" =~ ^(.*),([0-9]+)$ ]]; then
            url=${BASH_REMATCH[1]}
            pid=${BASH_REMATCH[2]}
            kill -0 "$pid" 2>/dev/null || die "--external $spec: no process $pid"
        fi
        [[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--external $spec: NAME must be letters, digits, _ . -"
        case "$name" in sync | async | django) die "--external: $name is one of our labels, pick another" ;; esac
        [[ "$url" =~ ^(ws|http)://[^/]+ ]] || die "--external $spec: URL must be ws://HOST:PORT"
        [[ -z "${external_urls[$name]:-}" ]] || die "--external: $name given twice"
        external_urls[$name]=$url
        external_pids[$name]=$pid
        external_labels+=("$name")
    done
}

main() {
    command_line="bash scripts/bench.sh"
    # (printf repeats its format once even for no arguments: only with some)
    if (($#)); then command_line+=$(printf ' %q' "$@"); fi
    parse_args "$@"
    set_sweep
    local started
    started=$(now_ms)
    failures=()
    server_runs=0
    server_pid=""
    server_urls=()
    server_sample_pids=()
    loadgen_recorded=false
    verdict_line=""
    django_redis_urls=""
    history_dir=""
    redis_dir=""
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    if [[ "$pin" == true ]]; then
        (($(nproc) >= 2)) || die "--pin needs at least 2 cores"
        async_workers=1
    else
        async_workers=$(nproc)
    fi

    echo "bench.sh: building the release binaries"
    cargo build --release --locked --bin chat-sync --bin chat-async --bin chat-loadgen --bin chat-report

    raise_limits
    # The Redis runs need redis-server: installed here when absent (Debian,
    # as root), as the Django runs install their venv.
    if ! command -v redis-server >/dev/null; then
        bash .ci/install-redis.sh ||
            echo "bench.sh: could not install redis-server: the Redis runs will be skipped" >&2
    fi
    server_bin_dir="$target_dir/release"
    server_extra_flags=()
    loadgen_extra_args=()
    if [[ -n "$baseline" ]]; then
        build_baseline
    fi

    out_is_default=false
    if [[ -z "$out" ]]; then
        out="results/$(date -u +%Y-%m-%d)-$(hostname)"
        if [[ "$quick" == true ]]; then
            out+="-quick"
        fi
        out_is_default=true
    fi
    if [[ -e "$out/runs.jsonl" ]]; then
        die "$out/runs.jsonl exists: remove $out, or pass --out DIR, so that two runs never mix in one file"
    fi
    mkdir -p "$out"
    runs="$out/runs.jsonl"
    readme="$out/README.md"
    logs="$target_dir/bench-logs/$(basename "$out")"
    rm -rf "$logs"
    mkdir -p "$logs"
    : >"$runs"
    commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)

    write_readme_header
    write_machine
    if [[ "$django" == true ]]; then
        prepare_django
    fi
    note "" "## Runs" "" "Each chat-loadgen command, appended as it ran, then how it ended. Servers' logs: \`$logs/\` (not committed)."

    local label
    local -a labels=(sync async "${external_labels[@]}")
    if [[ "$django" == true ]]; then
        labels+=(django)
    fi
    run_floor "before the servers" || true
    for label in "${labels[@]}"; do
        sweep "$label"
    done
    if [[ -n "$baseline" ]]; then
        before_after
    fi
    history_runs
    layer_runs
    profile_servers
    run_floor "after the servers" || true

    note "" "## End" "" "Finished in $(elapsed_s "$started" "$(now_ms)") s, $(date -u '+%Y-%m-%d %H:%M:%S') UTC, with ${#failures[@]} failed run(s)."
    if ((${#failures[@]})); then
        printf -- '- %s\n' "${failures[@]}" >>"$readme"
    fi

    report

    echo "bench.sh: done in $(elapsed_s "$started" "$(now_ms)") s: $runs ($(wc -l <"$runs") records), $readme"
    if ((${#failures[@]})); then
        printf 'bench.sh: failed: %s\n' "${failures[@]}" >&2
        exit 1
    fi
}

main "$@"
