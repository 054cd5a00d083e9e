//! The write floor (what one `write()` of one server frame to a loopback
//! socket costs here, one and several frames per call) and the profile
//! (`perf record` self time per binary and function during a 1,000-client
//! fan-out), kept by the sweep in `profile.tsv`.

use serde::Serialize;

use chat_record::Results;

use crate::data::Data;

/// The profile file of a run directory.
pub const PROFILE_FILE: &str = "profile.tsv";
/// Functions listed per server and rate.
const TOP_FUNCTIONS: usize = 5;
/// The kernel's functions that show threads being switched.
const SWITCHING: [&str; 2] = ["finish_task_switch.isra.0", "futex_wake"];

/// The floor at one batch size, over every floor run.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    /// Frames per `write()`.
    pub frames: u64,
    /// CPU per frame, µs, each floor run in order.
    pub us_per_frame: Vec<f64>,
}

/// Every batch size measured.
pub fn batches(data: &Data<'_>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for r in data.records {
        let Results::Floor(floor) = &r.results else {
            continue;
        };
        for b in &floor.batches {
            match out.iter_mut().find(|x| x.frames == b.frames_per_write) {
                Some(x) => x.us_per_frame.push(b.cpu_us_per_frame),
                None => out.push(Batch {
                    frames: b.frames_per_write,
                    us_per_frame: vec![b.cpu_us_per_frame],
                }),
            }
        }
    }
    out.sort_by_key(|b| b.frames);
    out
}

/// One server's profile at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// The server.
    pub server: String,
    /// The sender's rate, messages per second.
    pub rate: u64,
    /// Percent of samples in the kernel.
    pub kernel: Option<f64>,
    /// The top functions: name and percent.
    pub top: Vec<(String, f64)>,
    /// Whether the scheduler switching threads is among the top functions.
    pub switching: bool,
}

/// Parses `profile.tsv` (a header, then `server rate kind name percent`
/// rows); rows that do not parse are skipped.
pub fn profiles(tsv: &str) -> Vec<Profile> {
    let mut out: Vec<Profile> = Vec::new();
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let [server, rate, kind, name, percent] = f[..] else {
            continue;
        };
        let (Ok(rate), Ok(percent)) = (rate.parse::<u64>(), percent.parse::<f64>()) else {
            continue;
        };
        let i = match out
            .iter()
            .position(|p| p.server == server && p.rate == rate)
        {
            Some(i) => i,
            None => {
                out.push(Profile {
                    server: server.to_owned(),
                    rate,
                    kernel: None,
                    top: Vec::new(),
                    switching: false,
                });
                out.len() - 1
            }
        };
        let p = &mut out[i];
        match kind {
            "binary" if name.trim() == "[kernel.kallsyms]" => p.kernel = Some(percent),
            "function" if p.top.len() < TOP_FUNCTIONS => {
                let name = name.trim();
                p.switching |= SWITCHING.iter().any(|f| name.ends_with(f));
                p.top.push((name.to_owned(), percent))
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_keep_the_kernel_share_and_the_top_functions() {
        let tsv = "server\trate_per_s\tkind\tname\tpercent\n\
            sync\t100\tbinary\t[kernel.kallsyms]\t80.5\n\
            sync\t100\tbinary\tchat-sync\t15.0\n\
            sync\t100\tfunction\t[k] finish_task_switch.isra.0\t32.6\n\
            async\t100\tfunction\t[k] tcp_sendmsg_locked\t3.1\n\
            garbage line\n";
        let p = profiles(tsv);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].kernel, Some(80.5));
        assert_eq!(p[0].top[0].0, "[k] finish_task_switch.isra.0");
        assert!(p[0].switching);
        assert!(!p[1].switching);
        assert_eq!(p[1].server, "async");
        assert_eq!(p[1].kernel, None);
    }
}
