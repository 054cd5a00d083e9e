#!/usr/bin/env bash
# Installs the reference servers (peers/<name>/) from the package registries,
# each pinned, and says what it installs as it does:
#
#   go-gorilla  Debian's golang-go and golang-github-gorilla-websocket-dev,
#               built in GOPATH mode into target/peers/go-gorilla (a static
#               binary that travels to another machine)
#   node-ws     npm ci of peers/node-ws (ws, pinned in package-lock.json)
#   uws         npm ci of peers/uws (uwebsockets 3.0.6: uWebSockets.js's
#               prebuilt binaries; needs Node.js 16 to 25 on glibc Linux)
#
#   bash peers/install.sh [NAME...]      (default: all three)
#
# A peer already installed and current is left as it is, silently.
#
# Node.js itself must be installed (Debian's nodejs, 20 here); it is not
# installed here. Set APT_UPDATED=1 when `apt-get update` has already run.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}

apt_install() {
    local log
    echo "peers/install.sh: installing Debian's $*"
    if [[ "${APT_UPDATED:-0}" != 1 ]]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    log=$(mktemp)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "peers/install.sh: apt-get install $* failed" >&2
        exit 1
    fi
    rm -f "$log"
}

install_go_gorilla() {
    local binary="$target_dir/peers/go-gorilla"
    if [[ -x "$binary" && "$binary" -nt peers/go-gorilla/main.go ]]; then
        return 0
    fi
    if ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/github.com/gorilla/websocket ]]; then
        apt_install golang-go golang-github-gorilla-websocket-dev
    fi
    mkdir -p "$target_dir/peers"
    echo "peers/install.sh: building go-gorilla with $(go version)"
    (cd peers/go-gorilla && CGO_ENABLED=0 GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/../../$target_dir/peers/go-cache" \
        go build -o "../../$target_dir/peers/go-gorilla" .)
}

install_node() {
    local name=$1
    # npm ci leaves its own copy of the lock file: installed and current.
    if [[ "peers/$name/node_modules/.package-lock.json" -nt "peers/$name/package-lock.json" ]]; then
        return 0
    fi
    command -v node >/dev/null || {
        echo "peers/install.sh: $name needs Node.js (apt-get install nodejs)" >&2
        exit 1
    }
    echo "peers/install.sh: npm ci in peers/$name (Node.js $(node --version))"
    (cd "peers/$name" && npm ci --no-audit --no-fund --loglevel=error)
}

names=("$@")
if ((${#names[@]} == 0)); then
    names=(go-gorilla node-ws uws)
fi
for name in "${names[@]}"; do
    case "$name" in
    go-gorilla) install_go_gorilla ;;
    node-ws | uws) install_node "$name" ;;
    *)
        echo "peers/install.sh: no peer named $name (go-gorilla, node-ws, uws)" >&2
        exit 2
        ;;
    esac
done
