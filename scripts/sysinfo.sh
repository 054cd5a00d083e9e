#!/usr/bin/env bash
# Prints, as Markdown, what a benchmark result depends on besides the code:
# the commit, the machine, the kernel's limits on threads, memory maps, ports
# and backlogs, this shell's resource limits (so call it after raising them:
# it reports what the benchmark's processes inherit), the toolchain, and the
# versions of the crates that decide how the servers wait.
#
#   bash scripts/sysinfo.sh
#
# scripts/bench.sh writes its output into each results/<run>/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# Reads a /proc or /sys file, or says why it could not (no such file on this
# kernel, or a sandbox hiding it), so that one missing value never aborts a
# run.
read_proc() {
    local value
    if value=$(tr '\t' ' ' <"$1" 2>/dev/null); then
        printf '%s' "$value"
    else
        printf 'unreadable'
    fi
}

# The commit and whether the work tree differs from it: numbers from a dirty
# tree cannot be reproduced from the commit alone.
commit_line() {
    local sha dirty
    if ! sha=$(git rev-parse HEAD 2>/dev/null); then
        printf 'not a git checkout'
        return
    fi
    if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        dirty="dirty: tracked files differ from the commit"
    else
        dirty="clean"
    fi
    printf "\`%s\` (%s)" "$sha" "$dirty"
}

cpu_model() {
    local model
    model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    printf '%s' "${model:-unknown}"
}

mem_total() {
    awk '/^MemTotal:/ { printf "%.1f GiB (%d kB)", $2 / 1048576, $2 }' /proc/meminfo 2>/dev/null ||
        printf 'unknown'
}

main() {
    cat <<EOF
## Machine

| what | value |
|---|---|
| commit | $(commit_line) |
| date (UTC) | $(date -u '+%Y-%m-%d %H:%M:%S') |
| host | $(hostname) |
| CPU | $(cpu_model) |
| cores (online / usable by this process) | $(getconf _NPROCESSORS_ONLN) / $(nproc) |
| memory | $(mem_total) |
| kernel | \`$(uname -a)\` |
| rustc | \`$(rustc -V 2>/dev/null || echo 'not found')\` |
| cargo | \`$(cargo -V 2>/dev/null || echo 'not found')\` |

## Limits

What bounds threads (the sync server needs two per connection), memory maps
(each thread stack is one or two), file descriptors (one per connection, in
the server and in the load generator) and loopback ports.

| limit | value |
|---|---|
| \`/proc/sys/kernel/pid_max\` | $(read_proc /proc/sys/kernel/pid_max) |
| \`/proc/sys/kernel/threads-max\` | $(read_proc /proc/sys/kernel/threads-max) |
| \`/proc/sys/vm/max_map_count\` | $(read_proc /proc/sys/vm/max_map_count) |
| \`/proc/sys/fs/nr_open\` | $(read_proc /proc/sys/fs/nr_open) |
| \`/proc/sys/fs/file-max\` | $(read_proc /proc/sys/fs/file-max) |
| \`net.ipv4.ip_local_port_range\` | $(read_proc /proc/sys/net/ipv4/ip_local_port_range) |
| \`net.core.somaxconn\` | $(read_proc /proc/sys/net/core/somaxconn) |
| \`net.ipv4.tcp_max_syn_backlog\` | $(read_proc /proc/sys/net/ipv4/tcp_max_syn_backlog) |
| \`ulimit -n\` (open files, soft / hard) | $(ulimit -Sn) / $(ulimit -Hn) |
| \`ulimit -u\` (processes, soft / hard) | $(ulimit -Su) / $(ulimit -Hu) |
| \`ulimit -s\` (main-thread stack, KiB) | $(ulimit -s) |
| cgroup \`pids.max\` | $(cgroup_value pids.max) |
| cgroup \`memory.max\` | $(cgroup_value memory.max) |

## Crates

| crate | version (Cargo.lock) |
|---|---|
EOF
    local crate
    for crate in tokio tungstenite tokio-tungstenite crossbeam-channel hdrhistogram; do
        printf "| \`%s\` | %s |\n" "$crate" "$(lock_versions "$crate")"
    done
}

# A value of this process's cgroup (v2), which may bound threads or memory
# below the kernel-wide limits above.
cgroup_value() {
    local path
    path=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup 2>/dev/null || true)
    if [[ -n "$path" && -r "/sys/fs/cgroup$path/$1" ]]; then
        read_proc "/sys/fs/cgroup$path/$1"
    else
        printf 'none'
    fi
}

main "$@"
