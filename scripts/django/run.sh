#!/usr/bin/env bash
# Serves the Django Channels tutorial chat (scripts/django/mysite) with Daphne
# on 127.0.0.1: the external server that the load generator drives given only
# its URL. See scripts/django/README.md.
#
#   bash scripts/django/run.sh [--port N] [--setup-only] [-- DAPHNE_ARGS...]
#
# --port N      the port (default, or 0: a free port chosen by Python)
# --setup-only  create or refresh the venv, then exit without serving
# DAPHNE_ARGS   passed to daphne before the application (e.g. `-v 0`)
#
# Environment (read by mysite/mysite/settings.py):
# CHAT_REDIS_URLS    comma-separated redis:// URLs, one per shard, in shard
#                    order: use channels_redis' RedisPubSubChannelLayer on
#                    them, sharing rooms with every process on the same
#                    Redis (same URLs in the same order, same prefix).
#                    Unset: the tutorial's InMemoryChannelLayer (benchmark).
# CHAT_LAYER_PREFIX  the Redis layer's prefix (default `asgi`: a room's
#                    Redis channel is `asgi__group__chat_<room>`)
#
# The first line on stdout is `listening on http://127.0.0.1:PORT`, printed
# only once the port accepts connections (our servers' convention); Daphne's
# own logs go to stderr, its access log to stdout after that line. The script
# ends by exec'ing Daphne, so its pid is Daphne's pid, and SIGTERM or SIGINT
# reach Daphne directly (SIGINT too when started from a script, see below).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# Under the workspace's target/ so that it is never committed (.gitignore).
venv="${CARGO_TARGET_DIR:-$root/target}/django-venv"
python="${PYTHON:-python3}"
# How long Daphne may take to accept on its port before we give up.
ready_timeout_s=60
# How long to wait for another run.sh that is creating the venv.
venv_lock_timeout_s=600

usage() {
    sed -n '2,25s/^# \{0,1\}//p' "$0"
}

# Creates the venv with the pinned requirements, or reuses it when neither
# requirements.txt nor the Python that built it changed since (a stamp file
# holds both), so repeated benchmark runs do not reinstall. pip's output goes
# to stderr: stdout is reserved for the `listening on` line. Several run.sh
# started at once (tests in parallel) take turns on a lock file, so that one
# creates the venv and the others then reuse it.
ensure_venv() {
    mkdir -p "$(dirname "$venv")"
    exec {lock_fd}>"$venv.lock"
    if ! flock -w "$venv_lock_timeout_s" "$lock_fd"; then
        echo "run.sh: $venv.lock still held by another run.sh after ${venv_lock_timeout_s} s" >&2
        exit 1
    fi
    create_venv_unless_current
    # Releases the lock, and keeps Daphne (exec'd later) from inheriting it.
    exec {lock_fd}>&-
}

create_venv_unless_current() {
    local stamp
    stamp="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1) $("$python" -VV 2>&1 | tr '\n' ' ')"
    if [[ -x "$venv/bin/daphne" && -f "$venv/.requirements-stamp" ]] &&
        [[ "$(cat "$venv/.requirements-stamp")" == "$stamp" ]]; then
        return 0
    fi
    echo "run.sh: creating the Django Channels venv $venv from PyPI ($here/requirements.txt, about 160 MB)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
        --requirement "$here/requirements.txt" >&2
    printf '%s' "$stamp" >"$venv/.requirements-stamp"
}

# Prints a port that is free right now. Daphne binds it a moment later; the
# readiness check below also checks that Daphne is alive, so a lost race
# ends in an error, not in announcing somebody else's port.
free_port() {
    "$venv/bin/python" -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

# Starts, detached, a watcher that prints the `listening on` line once the
# port accepts a TCP connection while process $2 (this shell, soon Daphne)
# is alive; it gives up after $ready_timeout_s or when the process dies.
# Detached (a background job of a subshell that exits at once) so that
# Daphne, which this shell becomes, does not inherit an unreaped child.
announce_when_ready() {
    local port=$1 pid=$2
    (
        "$venv/bin/python" - "$port" "$pid" "$ready_timeout_s" <<'PY' &
import os
import socket
import sys
import time

port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


def exited(pid):
    """Gone, or a zombie: exited but not yet reaped by a parent that is
    waiting for our line before it waits for the process."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        return True


deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    if exited(pid):
        print(f"run.sh: daphne (pid {pid}) exited before accepting", file=sys.stderr)
        sys.exit(1)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        time.sleep(0.02)  # poll interval, bounded by the deadline above
        continue
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    sys.exit(0)
print(f"run.sh: daphne did not accept on port {port} within {timeout:g} s", file=sys.stderr)
sys.exit(1)
PY
    )
}

main() {
    local port=0 setup_only=false
    while (($#)); do
        case "$1" in
        --port)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || {
                echo "run.sh: --port needs a number" >&2
                exit 2
            }
            port=$2
            shift 2
            ;;
        --port=*)
            port=${1#--port=}
            [[ "$port" =~ ^[0-9]+$ ]] || {
                echo "run.sh: --port needs a number" >&2
                exit 2
            }
            shift
            ;;
        --setup-only)
            setup_only=true
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        --)
            shift
            break
            ;;
        *)
            echo "run.sh: unknown argument: $1 (see --help)" >&2
            exit 2
            ;;
        esac
    done

    ensure_venv
    if [[ "$setup_only" == true ]]; then
        return 0
    fi
    if ((port == 0)); then
        port=$(free_port)
    fi

    # The sqlite file is never queried by the chat, and bytecode caches are
    # not needed: keep both out of the source tree.
    export DJANGO_SQLITE_PATH="$venv/db.sqlite3"
    export PYTHONDONTWRITEBYTECODE=1
    cd "$here/mysite"
    announce_when_ready "$port" "$$"
    # Daphne's command line, run so that SIGINT stops it even when this
    # script was started in the background of a non-interactive shell, which
    # starts it with SIGINT ignored (Twisted only takes over SIGINT when it
    # has Python's default handler). Daphne puts the current directory on
    # sys.path, so `mysite` imports.
    exec "$venv/bin/python" -c '
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
from daphne.cli import CommandLineInterface
CommandLineInterface.entrypoint()
' --bind 127.0.0.1 --port "$port" "$@" mysite.asgi:application
}

main "$@"
