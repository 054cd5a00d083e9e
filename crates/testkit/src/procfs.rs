//! A process's thread count and resident memory, from `/proc/<pid>/status`.

use anyhow::Context;

/// The fields of `/proc/<pid>/status` the tests and benchmarks look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    /// `Threads:` the number of threads in the process.
    pub threads: u64,
    /// `VmRSS:` resident memory, in KiB.
    pub vm_rss_kib: u64,
}

/// Reads `Threads` and `VmRSS` of process `pid`.
pub fn proc_status(pid: u32) -> anyhow::Result<ProcStatus> {
    let status = read_status(pid)?;
    let number = |name: &str| -> anyhow::Result<u64> {
        let value = field(&status, name)
            .with_context(|| format!("no {name}: field in /proc/{pid}/status"))?;
        let digits = value.split_whitespace().next().unwrap_or_default();
        digits
            .parse()
            .with_context(|| format!("{name}: {value:?} in /proc/{pid}/status is not a number"))
    };
    Ok(ProcStatus {
        threads: number("Threads")?,
        vm_rss_kib: number("VmRSS")?,
    })
}

/// The value of field `name` (e.g. `"VmHWM"`) of `/proc/<pid>/status`, as
/// written there (`"1234 kB"`), without the name and the spaces around it.
pub fn proc_status_field(pid: u32, name: &str) -> anyhow::Result<String> {
    let status = read_status(pid)?;
    field(&status, name)
        .map(str::to_owned)
        .with_context(|| format!("no {name}: field in /proc/{pid}/status"))
}

fn read_status(pid: u32) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/status");
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let status = proc_status(std::process::id()).expect("our own status is readable");
        assert!(status.threads >= 1);
        assert!(status.vm_rss_kib > 0);
        let name = proc_status_field(std::process::id(), "Name").expect("Name: is there");
        assert!(!name.is_empty());
        assert!(proc_status_field(std::process::id(), "NoSuchField").is_err());
    }
}
