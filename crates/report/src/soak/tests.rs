//! The section from synthetic soaks: one flat, one growing, one failed;
//! and the whole report with and without a soak.

use std::fs;
use std::path::Path;

use chat_loadgen::soak::record::SoakRecord;

use super::*;
use crate::load;
use crate::report;
use crate::testdata::{TempDir, fanout_record, soak_record, write_run, write_soak};

const README: &str = "# Soak `2025-06-02-box`\n\n```sh\nbash scripts/soak.sh\n```\n";

/// Eleven minutes under load, RSS wobbling around 20 MiB.
fn flat(server: &str) -> SoakRecord {
    soak_record(
        server,
        &[
            4.0, 20.0, 20.3, 19.9, 20.1, 20.2, 20.0, 20.4, 20.1, 19.8, 20.2, 20.1,
        ],
        130,
        70,
    )
}

/// Eleven minutes under load, RSS climbing a MiB a minute from 20 MiB.
fn growing(server: &str) -> SoakRecord {
    let rss: Vec<f64> = (0..12)
        .map(|i| if i == 0 { 4.0 } else { 19.0 + f64::from(i) })
        .collect();
    soak_record(server, &rss, 3, 70)
}

/// Flat, but it lost deliveries.
fn failed(server: &str) -> SoakRecord {
    let mut r = flat(server);
    r.passed = false;
    r.totals.lost = 10;
    r.totals.delivered -= 10;
    r.warnings
        .push("LOSS: 10 of 66,000 expected deliveries never arrived".to_owned());
    r
}

fn section_of(records: Vec<SoakRecord>) -> String {
    let soak = SoakDir {
        dir: "results/soak/2025-06-02-box".into(),
        readme: Some(README.to_owned()),
        records,
    };
    let source = Source {
        soak: &soak,
        shown: "results/soak/2025-06-02-box",
        link: "soak/2025-06-02-box",
    };
    section(Some(&source), "results", &[])
}

#[test]
fn flat_and_growing_lines_are_told_apart_by_the_numbers() {
    // Written async first: the section puts sync first all the same.
    let md = section_of(vec![growing("async"), flat("sync")]);
    let sync = md.find("#### sync").expect("sync");
    let async_ = md.find("#### async").expect("async");
    assert!(sync < async_, "{md}");
    assert!(
        md.contains(
            "**sync: flat** by this criterion, midway → end: RSS 20.0 → 20.1 MiB (+0.150; \
             allowed +2.00); threads 130 → 130 (+0; allowed +6.60); file descriptors 70 → 70 \
             (+0; allowed +5.40)."
        ),
        "{md}"
    );
    // Early: minute 1 (20 MiB); midway: minute 6 (25 MiB); end: minutes 10
    // and 11 (29.5 MiB), 4.5 min later: 60 MiB per hour. The warm-up's
    // growth is named too.
    assert!(
        md.contains(
            "**⚠ async: not flat** by this criterion, midway → end (the windows 5 min apart): \
             RSS 25.0 → 29.5 MiB (+4.50; allowed +2.00), about +60.0 MiB per hour. Within \
             the allowance: threads 3 → 3"
        ),
        "{md}"
    );
    assert!(
        md.contains("During the warm-up, early → midway, it grew: RSS 20.0 → 25.0 MiB (+5.00)."),
        "{md}"
    );
    assert!(
        md.contains("| RSS, MiB | 4.00 | 20.0 | 25.0 | 30.0 | 29.5 | +4.50 |"),
        "{md}"
    );
    assert!(md.contains("| midway (median, from 50%, 10%) |"), "{md}");
    assert!(md.contains("| early (median, first 10%) |"), "{md}");
    assert!(
        !md.contains("soak failed") && !md.contains("**failed**"),
        "{md}"
    );
    assert!(md.contains("CPU: 0.500 cores busy on average"), "{md}");
    // Where the data is, and the README.
    assert!(md.contains(
        "Raw data in [`results/soak/2025-06-02-box/soak.jsonl`](soak/2025-06-02-box/soak.jsonl)"
    ));
    assert!(md.contains("[`soak/2025-06-02-box/README.md`](soak/2025-06-02-box/README.md)"));
    assert!(md.contains("- sync (commit `0123456789ab`): `chat-loadgen soak --label sync"));
    // Numbers, then method, then caveats.
    let order = ["### Totals", "#### sync", "### Method", "### Caveats"];
    let positions: Vec<usize> = order.iter().filter_map(|h| md.find(h)).collect();
    assert_eq!(positions.len(), order.len(), "{md}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn growing_threads_are_named() {
    let mut r = flat("sync");
    for (i, s) in r.samples.iter_mut().enumerate().skip(1) {
        s.threads = 100 + 10 * i as u64;
    }
    let md = section_of(vec![r]);
    assert!(
        md.contains(
            "**⚠ sync: not flat** by this criterion, midway → end (the windows 5 min \
             apart): threads 160 → 205"
        ),
        "{md}"
    );
    assert!(
        md.contains("Within the allowance: RSS 20.0 → 20.1 MiB"),
        "{md}"
    );
}

#[test]
fn a_failed_soak_is_loud_at_the_top() {
    let md = section_of(vec![flat("sync"), failed("async")]);
    assert!(
        md.starts_with(
            "**⚠ The async soak failed: LOSS: 10 of 66,000 expected deliveries never arrived.**"
        ),
        "{md}"
    );
    assert!(md.contains("| result | passed | ⚠ **failed** |"), "{md}");
    assert!(
        md.contains("| lost / duplicated / out of order | 0 / 0 / 0 | ⚠ 10 / 0 / 0 |"),
        "{md}"
    );
    // Its lines are flat all the same: the verdicts are separate.
    assert!(md.contains("**async: flat**"), "{md}");

    // Without warnings, the totals say what went wrong.
    let mut quiet = failed("async");
    quiet.warnings.clear();
    quiet.totals.unexpected_closes = 2;
    let md = section_of(vec![quiet]);
    assert!(
        md.starts_with("**⚠ The async soak failed: 10 deliveries lost and 2 unexpected closes.**"),
        "{md}"
    );
}

#[test]
fn too_few_samples_and_no_records_are_said() {
    let mut r = flat("sync");
    r.samples.truncate(2);
    let md = section_of(vec![r]);
    assert!(md.contains("2 samples: too few to tell"), "{md}");
    assert!(md.contains("- sync: only 2 samples"), "{md}");

    let md = section_of(Vec::new());
    assert!(md.contains("has no records"), "{md}");
    assert_eq!(
        section(None, "results", &[]),
        "Not measured: no soak under `results/soak/` (a directory with `soak.jsonl`); \
         `bash scripts/soak.sh` makes one.\n"
    );
}

fn generated(results: &Path) -> String {
    let generated = report::generate(results, None).expect("generate");
    fs::read_to_string(generated.report).expect("report")
}

#[test]
fn the_report_has_the_section_with_and_without_a_soak() {
    let tmp = TempDir::new("soak-report");
    let results = tmp.path();
    write_run(
        &results.join("2025-06-01-box"),
        &[fanout_record("sync", 100, 1)],
        "# run\n",
    );
    let plot = results.join(PLOTS_DIR).join(SOAK_PLOT);

    // No soak: one line, and the report still generates.
    let md = generated(results);
    assert!(
        md.contains("## Endurance (soak)\n\nNot measured: no soak under"),
        "{md}"
    );
    assert!(!plot.exists());

    // The newest soak, between the other sections and the end matter.
    write_soak(
        &results.join("soak/2025-05-01-box"),
        &[failed("sync")],
        README,
    );
    write_soak(
        &results.join("soak/2025-06-02-box"),
        &[flat("sync"), growing("async")],
        README,
    );
    let md = generated(results);
    let order = ["## Where the CPU goes", "## Endurance (soak)", "## Plots"];
    let positions: Vec<usize> = order
        .iter()
        .map(|h| md.find(h).unwrap_or_else(|| panic!("{h} missing")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(md.contains("(soak/2025-06-02-box/soak.jsonl)"), "{md}");
    assert!(
        !md.contains("soak failed"),
        "the older soak is not reported"
    );
    assert!(
        md.contains(&format!("![{}](plots/soak.svg)", plot::TITLE)),
        "{md}"
    );
    let svg = fs::read_to_string(&plot).expect("plot");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in ["RSS, MiB", "threads", "file descriptors", "sync", "async"] {
        assert!(svg.contains(text), "{text}");
    }
    // The run is still the run: `soak/` is not a run directory.
    assert_eq!(
        load::select_run(results, None).expect("run"),
        results.join("2025-06-01-box")
    );

    // Chosen, an older soak; and the report stays idempotent.
    let older = results.join("soak/2025-05-01-box");
    let chosen = report::generate_with(results, None, Some(&older)).expect("generate");
    assert_eq!(chosen.soak.as_deref(), Some(older.as_path()));
    let md = fs::read_to_string(&chosen.report).expect("report");
    assert!(md.contains("**⚠ The sync soak failed"), "{md}");
    let again = report::generate_with(results, None, Some(&older)).expect("again");
    assert_eq!(fs::read_to_string(again.report).expect("report"), md);

    // Gone again: the stale plot goes too.
    fs::remove_dir_all(results.join("soak")).expect("rm");
    generated(results);
    assert!(!plot.exists());
}
