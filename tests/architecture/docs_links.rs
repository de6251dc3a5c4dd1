//! The documentation points at what exists: every relative link in `README.md`, `docs/*.md`
//! and `bench/README.md` names a file of this repository (and a heading of it, for `#anchor`),
//! and every path written in backticks (`src/…`, `tests/…`, `docs/…`, …) exists, so a file
//! that moves or goes cannot leave the docs pointing at nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where paths written in the docs start.
const ROOTS: &[&str] = &[
    "src/",
    "tests/",
    "docs/",
    "bench/",
    "scripts/",
    "templates/",
    "static/",
    "migrations/",
    "tools/",
    "deploy/",
    ".ci/",
];

/// Paths that scripts create (virtualenvs, results): named in the docs, absent from a clone.
const GENERATED: &[&str] = &[".venv", "bench/results", "node_modules"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs = vec![root.join("README.md"), root.join("bench/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    docs.sort();
    docs
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// The targets of `[text](target)` links, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].trim().to_owned());
                rest = &rest[end..];
            }
        }
    }
    out
}

/// Repository paths written in backticks: `src/x.rs`, `tests/api/y.rs::test_name`,
/// `bench/ingest/run.sh` (globs, placeholders and command lines are not paths).
fn code_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 0 || !ROOTS.iter().any(|r| span.starts_with(r)) {
            continue;
        }
        let path = span.split("::").next().unwrap_or(span);
        let path = path.split(':').next().unwrap_or(path);
        if path.contains(['*', '<', '{', ' ', '…', '$'])
            || GENERATED.iter().any(|g| path.contains(g))
        {
            continue;
        }
        out.push(path.trim_end_matches('/').to_owned());
    }
    out
}

#[test]
fn every_link_and_path_in_the_docs_resolves() {
    let root = root();
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read a document");
        let name = doc
            .strip_prefix(&root)
            .unwrap_or(&doc)
            .display()
            .to_string();
        let dir = doc.parent().expect("a document's folder");
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                doc.clone()
            } else {
                dir.join(file)
            };
            if !target.exists() {
                broken.push(format!("{name}: link to {link} (no such file)"));
                continue;
            }
            if let Some(a) = anchor
                && target.extension().is_some_and(|e| e == "md")
            {
                let headings = anchors(&std::fs::read_to_string(&target).expect("read target"));
                if !headings.contains(a) {
                    broken.push(format!("{name}: link to {link} (no such heading)"));
                }
            }
        }
        for path in code_paths(&text) {
            if !Path::new(&root).join(&path).exists() {
                broken.push(format!("{name}: `{path}` does not exist"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the docs point at what is not there:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn links_paths_and_anchors_are_read_as_github_does() {
    assert_eq!(
        slug(" Open loop: what holds it back"),
        "open-loop-what-holds-it-back"
    );
    assert_eq!(
        links("see [a](docs/a.md) and [b](b.md#x)\n```\n[c](no.md)\n```"),
        ["docs/a.md", "b.md#x"]
    );
    assert_eq!(
        code_paths("`src/a.rs` `tests/api/b.rs::t` `src/**` `cargo test` `src/c.rs:12`"),
        ["src/a.rs", "tests/api/b.rs", "src/c.rs"]
    );
}
