//! The human summary of a run, printed on stdout.

use std::fmt::Write;

use chat_record::verdict::{Verdict, judge_record};
use chat_record::{
    Deployment, FanoutResults, FloorResults, Latency, Params, ProcessFigures, Record, Results,
    ServerTotal, UrlResults,
};

/// The summary of `run` as text.
pub fn render(record: &Record) -> String {
    let deployment = &record.deployment;
    let mut out = String::new();
    let urls = if deployment.urls.is_empty() {
        record.url.clone()
    } else {
        deployment.urls.join(", ")
    };
    let _ = writeln!(
        out,
        "{} against {} ({}), commit {}",
        record.scenario,
        record.server,
        urls,
        short(&record.commit)
    );
    if let Some(variant) = &record.params.variant {
        let _ = match &record.params.variant_note {
            Some(note) => writeln!(out, "  variant {variant}: {note}"),
            None => writeln!(out, "  variant {variant}"),
        };
    }
    if let Some(flags) = &record.params.server_flags {
        let _ = writeln!(out, "  server flags: {flags}");
    }
    match &record.results {
        Results::Fanout(results) => {
            fanout(&mut out, results);
            verdict(&mut out, record);
        }
        Results::Capacity(results) => {
            let _ = writeln!(
                out,
                "  {:>8}  {:>6}  {:>12}  {:>10}  {:>8}",
                "clients", "held", "deliveries/s", "p99 ms", "lost"
            );
            for step in &results.steps {
                let _ = writeln!(
                    out,
                    "  {:>8}  {:>6}  {:>12.0}  {:>10.2}  {:>8}",
                    step.clients,
                    if step.held { "yes" } else { "NO" },
                    step.fanout.deliveries_per_s,
                    ms(step.fanout.latency_us.p99_us),
                    step.fanout.lost
                );
            }
            let load = senders_at_rate(&record.params);
            match results.capacity_clients {
                Some(clients) => {
                    let _ = writeln!(out, "  capacity: {clients} clients in one room, {load}");
                }
                None => {
                    let _ = writeln!(out, "  capacity: not even the first step held ({load})");
                }
            }
        }
        Results::Connections(results) => {
            let _ = writeln!(
                out,
                "  opened {} of {} ({} failed), {} still open after the hold",
                results.opened, results.target, results.failed, results.held
            );
            if let Some(failure) = &results.first_failure {
                let _ = writeln!(out, "  first failure: {failure}");
            }
            let _ = writeln!(out, "  handshakes/s {:.0}", results.handshakes_per_s);
            latency_line(&mut out, "connect", &results.connect_us);
            if let (Some(threads), Some(rss)) = (
                results.threads_per_connection,
                results.rss_per_connection_kib,
            ) {
                let _ = writeln!(
                    out,
                    "  per connection: {threads:.2} threads, {rss:.1} KiB RSS"
                );
            }
        }
        Results::Floor(results) => floor(&mut out, results),
    }
    if deployment.server_processes.is_empty() {
        if let Some(server) = &record.server_process {
            process(&mut out, "server", server);
        }
    } else {
        servers(&mut out, deployment);
    }
    for (label, figures) in &deployment.sampled_processes {
        process(&mut out, label, figures);
    }
    process(&mut out, "loadgen", &record.loadgen_process);
    for warning in &record.warnings {
        let _ = writeln!(out, "  WARNING: {warning}");
    }
    out
}

fn fanout(out: &mut String, results: &FanoutResults) {
    let _ = writeln!(
        out,
        "  sent {}  expected {}  delivered {}  lost {}  late {}  to closed members {}  duplicated {}  out of order {}  order mismatches {}",
        results.sent,
        results.expected_deliveries,
        results.delivered,
        results.lost,
        results.late,
        results.missed_by_closed,
        results.duplicated,
        results.out_of_order,
        results.order_mismatches
    );
    let _ = writeln!(
        out,
        "  messages/s {:.0}  deliveries/s {:.0}{}  error replies {}  closes {:?}  connect failures {}",
        results.messages_per_s,
        results.deliveries_per_s,
        results
            .window_deliveries_per_s
            .map(|d| format!(" (any message, in the window: {d:.0})"))
            .unwrap_or_default(),
        results.error_replies,
        results.close_codes,
        results.connect_failures
    );
    latency_line(out, "fan-out", &results.latency_us);
    latency_line(out, "send lag", &results.send_lag_us);
    latency_line(out, "connect", &results.connect_us);
    for at_url in &results.per_url {
        url_line(out, at_url);
    }
    if let Some(busy) = &results.busy_room {
        let _ = writeln!(
            out,
            "  the busy room, apart (the figures above are the other rooms'):"
        );
        let mut lines = String::new();
        fanout(&mut lines, busy);
        for line in lines.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// What a fan-out run showed, as `chat_record::verdict` judges it.
fn verdict(out: &mut String, record: &Record) {
    let Some(j) = judge_record(record) else {
        return;
    };
    let said = match j.verdict {
        Verdict::KeptUp => "kept up",
        Verdict::FellBehind => "fell behind",
        Verdict::Closed => "closed members",
        Verdict::Refused => "refused clients",
        Verdict::Lost => "lost, duplicated or reordered deliveries",
        Verdict::NothingSent => "nothing sent",
    };
    let _ = if j.kept_up() {
        writeln!(out, "  verdict: {said}")
    } else {
        writeln!(
            out,
            "  verdict: {said}: {} of {} deliveries/s",
            thousands(j.delivered_per_s),
            thousands(j.offered_per_s)
        )
    };
}

/// `71,883`: a rate (not negative) rounded to a whole number, its
/// thousands separated.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// The write floor: one line per batch size.
fn floor(out: &mut String, results: &FloorResults) {
    let _ = writeln!(
        out,
        "  {}-byte frames; the writer thread's CPU from {}",
        results.frame_bytes, results.cpu_clock
    );
    let _ = writeln!(
        out,
        "  {:>12}  {:>10}  {:>10}  {:>7}  {:>7}  {:>8}  {:>8}  {:>13}  {:>7}",
        "frames/write",
        "frames",
        "writes",
        "wall s",
        "CPU s",
        "µs/frame",
        "µs/write",
        "frames/s/core",
        "slept"
    );
    for b in &results.batches {
        let _ = writeln!(
            out,
            "  {:>12}  {:>10}  {:>10}  {:>7.3}  {:>7.3}  {:>8.3}  {:>8.3}  {:>13.0}  {:>7}",
            b.frames_per_write,
            b.frames,
            b.writes,
            b.wall_s,
            b.cpu_s,
            b.cpu_us_per_frame,
            b.cpu_us_per_write,
            b.frames_per_s_per_core,
            b.writer_sleeps
        );
    }
    let _ = writeln!(
        out,
        "  bytes written {}  read {}",
        results.bytes_written, results.bytes_read
    );
}

fn latency_line(out: &mut String, name: &str, latency: &Latency) {
    let _ = writeln!(
        out,
        "  {name:>8} ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n = {})",
        ms(latency.p50_us),
        ms(latency.p90_us),
        ms(latency.p99_us),
        ms(latency.p999_us),
        ms(latency.max_us),
        latency.count
    );
}

/// The members behind one of several URLs.
fn url_line(out: &mut String, r: &UrlResults) {
    let _ = writeln!(
        out,
        "  {}: {} clients ({} sending, {} failed to connect)  expected {}  delivered {}  lost {}  late {}  to closed {}  duplicated {}  out of order {}  order mismatches {}  fan-out p99 {:.2} ms",
        r.url,
        r.clients,
        r.senders,
        r.connect_failures,
        r.expected_deliveries,
        r.delivered,
        r.lost,
        r.late,
        r.missed_by_closed,
        r.duplicated,
        r.out_of_order,
        r.order_mismatches,
        ms(r.latency_us.p99_us)
    );
}

/// Several server processes, each and in all.
fn servers(out: &mut String, deployment: &Deployment) {
    for (i, server) in deployment.server_processes.iter().enumerate() {
        process(out, &format!("server {}", i + 1), &server.process);
        let _ = writeln!(
            out,
            "            (behind {}: {} clients{})",
            server.url,
            server.clients,
            server
                .deliveries
                .map(|d| format!(", {d} deliveries"))
                .unwrap_or_default()
        );
    }
    if let Some(ServerTotal {
        processes,
        cpu_user_s,
        cpu_system_s,
        cpu_utilization,
        cpu_s_per_1000_deliveries,
        threads_peak_sum,
        rss_peak_sum_kib,
        ..
    }) = &deployment.server_total
    {
        let _ = writeln!(
            out,
            "   servers: {processes} processes  CPU {cpu_user_s:.2} s user + {cpu_system_s:.2} s system ({cpu_utilization:.2} cores){}  threads peak (sum) {threads_peak_sum}  RSS peak (sum) {rss_peak_sum_kib} KiB",
            cpu_s_per_1000_deliveries
                .map(|c| format!(", {:.1} ms per 1,000 deliveries", c * 1000.0))
                .unwrap_or_default(),
        );
    }
}

fn process(out: &mut String, name: &str, figures: &ProcessFigures) {
    let _ = writeln!(
        out,
        "  {name:>8}: pid {}  threads peak {}  RSS peak {} KiB  CPU {:.2} s user + {:.2} s system ({:.2} cores){}  ctx switches {} vol / {} invol",
        figures.pid,
        figures.threads_peak,
        figures.rss_peak_kib,
        figures.cpu_user_s,
        figures.cpu_system_s,
        figures.cpu_utilization,
        figures
            .cpu_s_per_1000_deliveries
            .map(|c| format!(", {:.1} ms per 1,000 deliveries", c * 1000.0))
            .unwrap_or_default(),
        figures.voluntary_ctxt_switches,
        figures.involuntary_ctxt_switches
    );
}

/// `4 senders @ 2 msg/s each`.
fn senders_at_rate(params: &Params) -> String {
    let senders = params.senders_per_room.map_or_else(
        || "? senders".to_owned(),
        |n| {
            if n == 1 {
                "1 sender".to_owned()
            } else {
                format!("{n} senders")
            }
        },
    );
    let rate = params
        .rate_per_s
        .map_or_else(|| "?".to_owned(), |r| r.to_string());
    format!("{senders} @ {rate} msg/s each")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_record::{CapacityResults, CapacityStep, Record};

    fn capacity_record(params: Params) -> Record {
        Record {
            scenario: "capacity".into(),
            server: "async".into(),
            commit: "0123456789abcdef".into(),
            started_at: "t".into(),
            url: "ws://127.0.0.1:1".into(),
            params,
            results: Results::Capacity(CapacityResults {
                steps: vec![CapacityStep {
                    clients: 100,
                    held: true,
                    fanout: FanoutResults::default(),
                }],
                capacity_clients: Some(100),
            }),
            server_process: None,
            loadgen_process: ProcessFigures::default(),
            warnings: Vec::new(),
            deployment: Deployment::default(),
        }
    }

    #[test]
    fn a_busy_room_is_shown_apart() {
        let mut quiet = FanoutResults {
            sent: 20,
            ..FanoutResults::default()
        };
        quiet.busy_room = Some(Box::new(FanoutResults {
            sent: 1000,
            ..FanoutResults::default()
        }));
        let mut record = capacity_record(Params {
            server_flags: Some("--db-bridge inline".into()),
            ..Params::default()
        });
        record.results = Results::Fanout(quiet);
        let text = render(&record);
        assert!(text.contains("server flags: --db-bridge inline"), "{text}");
        let (rooms, busy) = text
            .split_once("the busy room, apart")
            .expect("a busy-room part");
        assert!(rooms.contains("  sent 20 "), "{text}");
        assert!(busy.contains("    sent 1000 "), "{text}");
    }

    #[test]
    fn several_servers_are_shown_each_and_in_all() {
        use chat_record::{ServerProcess, ServerTotal};

        let urls = ["ws://127.0.0.1:1".to_owned(), "ws://127.0.0.1:2".to_owned()];
        let mut record = capacity_record(Params::default());
        record.results = Results::Fanout(FanoutResults {
            per_url: urls
                .iter()
                .map(|url| UrlResults {
                    url: url.clone(),
                    clients: 50,
                    senders: 2,
                    ..UrlResults::default()
                })
                .collect(),
            ..FanoutResults::default()
        });
        let process = |pid| ProcessFigures {
            pid,
            cpu_s_per_1000_deliveries: Some(0.002),
            ..ProcessFigures::default()
        };
        let server_processes: Vec<ServerProcess> = urls
            .iter()
            .zip([11, 12])
            .map(|(url, pid)| ServerProcess {
                url: url.clone(),
                clients: 50,
                deliveries: Some(1000),
                process: process(pid),
            })
            .collect();
        record.server_process = Some(process(11));
        record.deployment = Deployment {
            urls: urls.to_vec(),
            server_total: Some(ServerTotal::of(&server_processes)),
            server_processes,
            sampled_processes: [("redis".to_owned(), process(13))].into(),
        };
        let text = render(&record);
        assert!(
            text.starts_with("capacity against async (ws://127.0.0.1:1, ws://127.0.0.1:2)"),
            "{text}"
        );
        assert!(
            text.contains("  ws://127.0.0.1:2: 50 clients (2 sending, 0 failed to connect)"),
            "{text}"
        );
        assert!(text.contains("  server 1: pid 11 "), "{text}");
        assert!(text.contains("  server 2: pid 12 "), "{text}");
        assert!(
            text.contains("(behind ws://127.0.0.1:2: 50 clients, 1000 deliveries)"),
            "{text}"
        );
        assert!(text.contains("   servers: 2 processes "), "{text}");
        assert!(text.contains("     redis: pid 13 "), "{text}");
        assert!(!text.contains("    server: "), "{text}");
    }

    #[test]
    fn a_fanout_run_states_its_verdict() {
        let mut record = capacity_record(Params {
            clients: Some(1000),
            rooms: Some(1),
            senders_per_room: Some(1),
            rate_per_s: Some(100.0),
            ..Params::default()
        });
        let behind = FanoutResults {
            sent: 1000,
            expected_deliveries: 1_000_000,
            delivered: 1_000_000,
            deliveries_per_s: 71_883.2,
            ..FanoutResults::default()
        };
        record.results = Results::Fanout(behind.clone());
        let text = render(&record);
        assert!(
            text.contains("\n  verdict: fell behind: 71,883 of 100,000 deliveries/s\n"),
            "{text}"
        );
        record.results = Results::Fanout(FanoutResults {
            deliveries_per_s: 99_614.2,
            ..behind
        });
        let text = render(&record);
        assert!(text.contains("\n  verdict: kept up\n"), "{text}");
        assert!(!text.contains("of 100,000"), "{text}");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(3_958_881.3), "3,958,881");
    }

    #[test]
    fn capacity_states_its_senders_and_rate() {
        let text = render(&capacity_record(Params {
            senders_per_room: Some(4),
            rate_per_s: Some(2.0),
            ..Params::default()
        }));
        assert!(
            text.contains("capacity: 100 clients in one room, 4 senders @ 2 msg/s each"),
            "{text}"
        );
        assert!(!text.contains("variant"), "{text}");
    }

    #[test]
    fn a_variant_is_named_under_the_title() {
        let text = render(&capacity_record(Params {
            senders_per_room: Some(1),
            rate_per_s: Some(0.5),
            variant: Some("batch-1".into()),
            variant_note: Some("one frame per write".into()),
            ..Params::default()
        }));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  variant batch-1: one frame per write", "{text}");
        assert!(text.contains("1 sender @ 0.5 msg/s each"), "{text}");
    }
}
