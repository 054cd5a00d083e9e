#!/usr/bin/env bash
# The test command: installs what the tests need when it is absent (Debian's
# chromium for the browser test, Debian's redis-server for the Redis channel
# layer's tests, a Python venv of Django Channels from PyPI for the interop
# test, about 160 MB under target/), saying so in one line each, then runs
# every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/install-chromium.sh
bash .ci/install-redis.sh
bash scripts/django/run.sh --setup-only
cargo test --workspace --locked "$@"
