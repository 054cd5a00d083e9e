//! The limits that bound how many connections a process can hold, raised
//! and recorded.
//!
//! Per process: the open-files limit (one descriptor per connection, in the
//! server and in the load generator) to its hard limit, after trying to
//! raise the hard limit to the kernel's `fs.nr_open` (needs
//! `CAP_SYS_RESOURCE`), and the process limit (the sync server's threads
//! count against it); every server inherits them. Per experiment, as root:
//! kernel settings such as `vm.max_map_count` (a thread's stack and its
//! guard page are two maps) and `kernel.pid_max` (every thread takes a
//! pid), raised before the experiment and restored after it, so that the
//! sync server meets a limit of its model, not a default of the kernel.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rlimit::Resource;

/// Raises the open-files and process limits of this process (inherited by
/// every server it starts). Returns one sentence per limit, and the
/// open-files soft limit now.
pub fn raise_process_limits() -> (Vec<String>, u64) {
    let mut notes = Vec::new();
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1_048_576);
    let (soft, hard) = Resource::NOFILE.get().unwrap_or((1024, 1024));
    let mut hard_now = hard;
    if hard < nr_open {
        match Resource::NOFILE.set(soft, nr_open) {
            Ok(()) => {
                notes.push(format!(
                    "open files: hard limit raised from {hard} to {nr_open}."
                ));
                hard_now = nr_open;
            }
            Err(error) => notes.push(format!(
                "open files: the hard limit stays {hard}: raising it to {nr_open} failed ({error}; this needs CAP_SYS_RESOURCE), so neither the servers nor the load generator can hold more than about {hard} connections."
            )),
        }
    }
    if soft < hard_now {
        match Resource::NOFILE.set(hard_now, hard_now) {
            Ok(()) => notes.push(format!(
                "open files: soft limit raised from {soft} to {hard_now}."
            )),
            Err(error) => notes.push(format!(
                "open files: soft limit stays {soft}: raising it failed ({error})."
            )),
        }
    } else {
        notes.push(format!(
            "open files: soft limit already at the hard limit, {hard_now}."
        ));
    }
    let (psoft, phard) = Resource::NPROC.get().unwrap_or((0, 0));
    if psoft < phard {
        match Resource::NPROC.set(phard, phard) {
            Ok(()) => notes.push(format!(
                "processes (`ulimit -u`): soft limit raised from {} to {}.",
                shown(psoft),
                shown(phard)
            )),
            Err(error) => notes.push(format!(
                "processes (`ulimit -u`): soft limit stays {}: {error}.",
                shown(psoft)
            )),
        }
    } else {
        notes.push(format!(
            "processes (`ulimit -u`): already at the hard limit, {}.",
            shown(phard)
        ));
    }
    let fd_limit = Resource::NOFILE.get().map_or(1024, |(soft, _)| soft);
    (notes, fd_limit)
}

fn shown(limit: u64) -> String {
    if limit == rlimit::INFINITY {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}

/// Kernel settings raised for one experiment; restored when dropped.
#[derive(Debug, Default)]
pub struct Raised {
    /// The value each had before, for those this raised.
    previous: BTreeMap<String, u64>,
    /// One sentence per setting: what was done, or why not.
    pub notes: Vec<String>,
}

fn sysctl_path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

fn read_sysctl(name: &str) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(sysctl_path(name))?;
    text.trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("{name} is {:?}", text.trim())))
}

fn write_sysctl(name: &str, value: u64) -> std::io::Result<()> {
    std::fs::write(sysctl_path(name), format!("{value}\n"))
}

impl Raised {
    /// Raises each setting to its wanted value where it is below it (never
    /// lowers one); a failure is noted, not fatal: the run then meets the
    /// kernel's value, and says so.
    pub fn raise(wanted: &BTreeMap<String, u64>) -> Self {
        let mut raised = Self::default();
        for (name, &value) in wanted {
            match read_sysctl(name) {
                Ok(now) if now >= value => raised
                    .notes
                    .push(format!("{name} is {now}, at least the {value} asked: left as it is.")),
                Ok(now) => match write_sysctl(name, value) {
                    Ok(()) => {
                        raised.previous.insert(name.clone(), now);
                        raised
                            .notes
                            .push(format!("{name} raised from {now} to {value} for this experiment, restored after it."));
                    }
                    Err(error) => raised.notes.push(format!(
                        "{name} stays {now}: raising it to {value} failed ({error}; this needs root)."
                    )),
                },
                Err(error) => raised
                    .notes
                    .push(format!("{name} could not be read ({error}): not raised.")),
            }
        }
        raised
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        for (name, &value) in &self.previous {
            if let Err(error) = write_sysctl(name, value) {
                eprintln!("chat-bench: could not restore {name} to {value}: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_already_high_enough_is_left_alone() {
        let wanted = BTreeMap::from([("kernel.pid_max".to_owned(), 1)]);
        let raised = Raised::raise(&wanted);
        assert!(raised.previous.is_empty());
        assert!(
            raised.notes[0].contains("left as it is"),
            "{:?}",
            raised.notes
        );
        let missing = BTreeMap::from([("kernel.no_such_setting".to_owned(), 1)]);
        let raised = Raised::raise(&missing);
        assert!(
            raised.notes[0].contains("could not be read"),
            "{:?}",
            raised.notes
        );
    }
}
