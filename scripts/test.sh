#!/usr/bin/env bash
# The test command: installs what the tests need when it is absent (Debian's
# chromium for the browser test), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/install-chromium.sh
cargo test --workspace --locked "$@"
