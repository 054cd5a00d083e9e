//! The repository stands alone: every relative link in its documents (the
//! README, `docs/`, the peers' and Django's READMEs, the committed report
//! and its run's README and RUNS.md) resolves to a file inside the
//! repository. Links to public pages (`https://...`) are not followed.

use std::fs;
use std::path::{Path, PathBuf};

/// The repository's root (this crate is `crates/report`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository's root")
}

/// The documents whose links are checked.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = [
        "README.md",
        "peers/README.md",
        "scripts/django/README.md",
        "results/REPORT.md",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    for dir in ["docs", "results"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                docs.push(path);
            } else if dir == "results" && path.is_dir() && !is_scratch(&path) {
                for name in ["README.md", "RUNS.md"] {
                    docs.push(path.join(name));
                }
            }
        }
    }
    docs.retain(|d| d.is_file());
    docs.sort();
    docs.dedup();
    docs
}

/// A quick run or the soak's scratch, ignored by git.
fn is_scratch(dir: &Path) -> bool {
    dir.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("-quick"))
}

/// The targets of a document's Markdown links `[text](target)`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else {
            break;
        };
        out.push(rest[..end].trim().to_owned());
        rest = &rest[end..];
    }
    out
}

#[test]
fn every_relative_link_resolves_inside_the_repository() {
    let root = root();
    let docs = documents(&root);
    assert!(
        docs.iter().any(|d| d.ends_with("README.md")),
        "no document found under {}",
        root.display()
    );
    let mut broken = Vec::new();
    for doc in &docs {
        let text = fs::read_to_string(doc).expect("a readable document");
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") || link.starts_with('#') {
                continue;
            }
            let path = link.split('#').next().unwrap_or_default();
            if path.is_empty() {
                continue;
            }
            let target = doc.parent().expect("a directory").join(path);
            let inside = target.canonicalize().is_ok_and(|t| t.starts_with(&root));
            if !inside {
                broken.push(format!("{}: ({link})", doc.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that do not resolve to a file inside the repository:\n{}",
        broken.join("\n")
    );
}

#[test]
fn links_are_read_from_markdown() {
    assert_eq!(
        links("see [a](docs/A.md) and [b](https://x.org/p) ![c](plots/c.svg)"),
        ["docs/A.md", "https://x.org/p", "plots/c.svg"]
    );
}
