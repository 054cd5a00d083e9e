#!/usr/bin/env bash
# Installs Debian's `chromium` package, which the browser test
# (crates/conformance/tests/browser.rs) drives headless, unless
# /usr/bin/chromium is already there. Nothing else is downloaded: the test
# uses this system Chromium, never a browser build of its own.
#
# Set APT_UPDATED=1 when `apt-get update` has already run in this job.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ ! -x "$CHROMIUM" ]]; then
    echo "install-chromium: $CHROMIUM not found; installing Debian's chromium package"
    if [[ "${APT_UPDATED:-0}" != 1 ]]; then
        apt-get update -qq
    fi
    log=$(mktemp)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "install-chromium: apt-get install chromium failed" >&2
        exit 1
    fi
    rm -f "$log"
fi

# Debian's launcher script prints a harmless shell warning on some machines
# (its /dev/shm check); keep stderr out of the version line.
version=$("$CHROMIUM" --version 2>/dev/null)
echo "install-chromium: $version"
