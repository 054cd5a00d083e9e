#!/usr/bin/env bash
# Installs Debian's `redis-server` package (and with it `redis-tools`, for
# redis-cli), which the tests of the Redis channel layer need, unless
# `redis-server` is already on PATH. Each test starts its own Redis on a free
# port with no persistence (chat_testkit::RedisServer); the system service
# the package may start (on hosts with an init system; Docker images usually
# forbid it with policy-rc.d) is never used.
#
# Set APT_UPDATED=1 when `apt-get update` has already run in this job.
set -euo pipefail

if ! command -v redis-server >/dev/null; then
    echo "install-redis: redis-server not found; installing Debian's redis-server package"
    if [[ "${APT_UPDATED:-0}" != 1 ]]; then
        apt-get update -qq
    fi
    log=$(mktemp)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
        >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "install-redis: apt-get install redis-server failed" >&2
        exit 1
    fi
    rm -f "$log"
fi

echo "install-redis: $(redis-server --version)"
