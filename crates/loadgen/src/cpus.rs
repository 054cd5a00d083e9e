//! The cores the load generator's threads run on: a `taskset -c` list
//! read, and a thread pinned to it.
//!
//! A sweep pins the server and the load generator to cores apart, so that
//! the two do not compete for them and a run measures the server rather
//! than the scheduler's choices. Pinning the load generator's own threads
//! (rather than wrapping the process in `taskset`) lets a driver that runs
//! several loads in one process give each its cores. The record states
//! both lists as given (`Params::server_cpus`, `Params::loadgen_cpus`).

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// Why a string is not a CPU list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCpuList {
    /// The list, or one of its comma-separated items, is empty: give at
    /// least one CPU.
    #[error("empty CPU list or item in {0:?}")]
    Empty(String),
    /// An item is not `N`, `N-M` or `N-M:STRIDE`: correct its syntax.
    #[error("{0:?} is not a CPU, a range N-M or a strided range N-M:S")]
    BadItem(String),
    /// A range ends before it starts: swap its ends.
    #[error("the range {0:?} ends before it starts")]
    Backwards(String),
    /// A CPU number past what an affinity mask holds on this system: no
    /// such CPU can exist here.
    #[error("CPU {cpu} is past the largest an affinity mask holds ({})", CpuSet::count() - 1)]
    TooLarge {
        /// The CPU asked for.
        cpu: usize,
    },
}

/// Parses a CPU list as `taskset -c` takes it: comma-separated CPUs `N`,
/// ranges `N-M` (inclusive) and strided ranges `N-M:S` (every S-th from
/// N), e.g. `0-3,6` or `0-15:2`. Returns the CPUs sorted, each once.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, InvalidCpuList> {
    let mut cpus = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(InvalidCpuList::Empty(list.to_owned()));
        }
        let number = |text: &str| {
            text.parse::<usize>()
                .map_err(|_| InvalidCpuList::BadItem(item.to_owned()))
        };
        let (range, stride) = match item.split_once(':') {
            Some((range, stride)) => (range, number(stride)?),
            None => (item, 1),
        };
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None if stride == 1 => (number(range)?, number(range)?),
            None => return Err(InvalidCpuList::BadItem(item.to_owned())),
        };
        if stride == 0 {
            return Err(InvalidCpuList::BadItem(item.to_owned()));
        }
        if last < first {
            return Err(InvalidCpuList::Backwards(item.to_owned()));
        }
        if last >= CpuSet::count() {
            return Err(InvalidCpuList::TooLarge { cpu: last });
        }
        cpus.extend((first..=last).step_by(stride));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Why threads could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// No CPU given: give at least one, or do not pin.
    #[error("no CPU to pin to")]
    NoCpu,
    /// A CPU past what an affinity mask holds: no such CPU exists here.
    #[error("CPU {cpu} is past the largest an affinity mask holds")]
    TooLarge {
        /// The CPU asked for.
        cpu: usize,
    },
    /// The kernel refused the mask: none of its CPUs is online, or this
    /// process may not use them (a cgroup's cpuset, a container's limit).
    /// Choose CPUs from `taskset -cp $$`.
    #[error("the kernel refused to pin to CPUs {cpus:?}: {errno}")]
    Refused {
        /// The CPUs asked for.
        cpus: Vec<usize>,
        /// What `sched_setaffinity` answered.
        errno: nix::errno::Errno,
    },
}

/// A set of CPUs that threads can pin themselves to; cheap to copy into a
/// runtime's thread-start hook.
#[derive(Debug, Clone)]
pub struct Affinity {
    cpus: Vec<usize>,
    mask: CpuSet,
}

impl Affinity {
    /// The mask of `cpus` (at least one).
    pub fn new(cpus: &[usize]) -> Result<Self, PinError> {
        if cpus.is_empty() {
            return Err(PinError::NoCpu);
        }
        let mut mask = CpuSet::new();
        for &cpu in cpus {
            mask.set(cpu).map_err(|_| PinError::TooLarge { cpu })?;
        }
        Ok(Self {
            cpus: cpus.to_vec(),
            mask,
        })
    }

    /// The CPUs, as given.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Pins the calling thread (and the threads it starts afterwards, which
    /// inherit its mask) to these CPUs.
    pub fn pin_current_thread(&self) -> Result<(), PinError> {
        // Pid 0: the calling thread, not the whole process.
        sched_setaffinity(Pid::from_raw(0), &self.mask).map_err(|errno| PinError::Refused {
            cpus: self.cpus.clone(),
            errno,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_as_taskset_reads_them() {
        assert_eq!(parse_cpu_list("0-3,6"), Ok(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("5"), Ok(vec![5]));
        assert_eq!(parse_cpu_list("7,1-2, 4"), Ok(vec![1, 2, 4, 7]));
        assert_eq!(parse_cpu_list("0-8:4"), Ok(vec![0, 4, 8]));
        assert_eq!(parse_cpu_list("3-3"), Ok(vec![3]));
        assert_eq!(parse_cpu_list("2,0-3,2"), Ok(vec![0, 1, 2, 3]), "each once");
    }

    #[test]
    fn malformed_cpu_lists_are_refused() {
        for empty in ["", "1,", ",1", "1,,2"] {
            assert!(
                matches!(parse_cpu_list(empty), Err(InvalidCpuList::Empty(_))),
                "{empty:?}"
            );
        }
        for bad in [
            "a", "1-", "-1", "1-2-3", "0-4:0", "0-4:x", "3:2", "-", "1.5",
        ] {
            assert!(
                matches!(parse_cpu_list(bad), Err(InvalidCpuList::BadItem(_))),
                "{bad:?}: {:?}",
                parse_cpu_list(bad)
            );
        }
        assert!(matches!(
            parse_cpu_list("4-2"),
            Err(InvalidCpuList::Backwards(_))
        ));
        let past = CpuSet::count();
        assert_eq!(
            parse_cpu_list(&format!("0-{past}")),
            Err(InvalidCpuList::TooLarge { cpu: past })
        );
    }

    #[test]
    fn a_mask_needs_a_cpu_it_can_hold() {
        assert!(matches!(Affinity::new(&[]), Err(PinError::NoCpu)));
        let past = CpuSet::count();
        assert!(matches!(
            Affinity::new(&[0, past]),
            Err(PinError::TooLarge { cpu }) if cpu == past
        ));
    }

    #[test]
    fn a_thread_pins_itself_to_a_cpu_it_may_use() {
        let allowed = nix::sched::sched_getaffinity(Pid::from_raw(0)).expect("this thread's mask");
        let cpu = (0..CpuSet::count())
            .find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
            .expect("this thread may use some CPU");
        std::thread::spawn(move || {
            let affinity = Affinity::new(&[cpu]).expect("a mask of one allowed CPU");
            affinity.pin_current_thread().expect("pinned");
            let mask = nix::sched::sched_getaffinity(Pid::from_raw(0)).expect("the new mask");
            let pinned: Vec<usize> = (0..CpuSet::count())
                .filter(|&c| mask.is_set(c).unwrap_or(false))
                .collect();
            assert_eq!(pinned, [cpu]);
        })
        .join()
        .expect("the pinned thread");
    }
}
