//! Where an idle connection's memory goes: the heap profile the sweep keeps
//! in `memory.tsv` (heaptrack, our servers holding idle connections; see
//! `chat_bench::memory`), per server: the RSS per connection of that run,
//! the heap's part of it, and the allocation sites that make it up.

use serde::Serialize;

/// The memory profile file of a run directory.
pub const MEMORY_FILE: &str = "memory.tsv";
/// Sites listed per server.
const TOP_SITES: usize = 8;

/// One server's idle-connection heap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memory {
    /// The server.
    pub server: String,
    /// Connections held.
    pub connections: u64,
    /// RSS per connection in the same run, KiB.
    pub rss_kib: Option<f64>,
    /// The heap at its peak per connection, KiB (every site listed in the
    /// file, the top ones and the rest).
    pub heap_kib: f64,
    /// RSS per connection that is not the heap's, KiB (thread stacks, the
    /// allocator's own overhead), when the RSS was measured.
    pub off_heap_kib: Option<f64>,
    /// The largest sites.
    pub sites: Vec<Site>,
    /// The other sites together, KiB per connection.
    pub rest_kib: f64,
}

/// One allocation site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    /// Where the memory is allocated: the first frame outside Rust's
    /// standard library.
    pub site: String,
    /// The first frame of ours on the way there (empty: none).
    pub via: String,
    /// Bytes per connection.
    pub bytes: f64,
    /// Allocations per connection.
    pub allocations: f64,
}

/// Parses `memory.tsv` (a header, then `server connections rss site via
/// bytes allocations` rows, per connection); rows that do not parse are
/// skipped. Servers in file order, sites largest first.
pub fn memory(tsv: &str) -> Vec<Memory> {
    let mut out: Vec<(Memory, Vec<Site>)> = Vec::new();
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let [server, connections, rss, site, via, bytes, allocations] = f[..] else {
            continue;
        };
        let (Ok(connections), Ok(bytes), Ok(allocations)) = (
            connections.parse::<u64>(),
            bytes.parse::<f64>(),
            allocations.parse::<f64>(),
        ) else {
            continue;
        };
        let i = match out.iter().position(|(m, _)| m.server == server) {
            Some(i) => i,
            None => {
                out.push((
                    Memory {
                        server: server.to_owned(),
                        connections,
                        rss_kib: rss.parse().ok(),
                        heap_kib: 0.0,
                        off_heap_kib: None,
                        sites: Vec::new(),
                        rest_kib: 0.0,
                    },
                    Vec::new(),
                ));
                out.len() - 1
            }
        };
        out[i].1.push(Site {
            site: site.to_owned(),
            via: via.to_owned(),
            bytes,
            allocations,
        });
    }
    out.into_iter()
        .map(|(mut m, mut sites)| {
            sites.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
            let total: f64 = sites.iter().map(|s| s.bytes).sum();
            let rest: f64 = sites.iter().skip(TOP_SITES).map(|s| s.bytes).sum();
            sites.truncate(TOP_SITES);
            m.heap_kib = total / 1024.0;
            m.rest_kib = rest / 1024.0;
            m.off_heap_kib = m.rss_kib.map(|rss| (rss - m.heap_kib).max(0.0));
            m.sites = sites;
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_keep_their_largest_sites_and_the_heap_adds_up() {
        let tsv = "server\tconnections\trss_kib_per_connection\tsite\tvia\tbytes_per_connection\tallocations_per_connection\n\
            async\t2000\t7.70\tnew (tokio-1.54.1/src/runtime/task/core.rs:261)\tspawn (crates/server-async/src/writer.rs:140)\t1536\t1.00\n\
            async\t2000\t7.70\tthe standard library\t\t512\t0.50\n\
            sync\t2000\t\tnew (crossbeam)\t\t1024\t1.00\n\
            garbage line\n";
        let m = memory(tsv);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].server, "async");
        assert_eq!(m[0].heap_kib, 2.0);
        assert_eq!(m[0].off_heap_kib, Some(5.7));
        assert_eq!(m[0].sites[0].bytes, 1536.0);
        assert_eq!(m[0].rest_kib, 0.0);
        assert_eq!(m[1].rss_kib, None);
        assert_eq!(m[1].off_heap_kib, None);
    }
}
