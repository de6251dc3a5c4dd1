//! The architecture test: reads `src/**` and fails on an import that points the wrong way
//! between layers, and on a new import cycle between top-level modules; and checks that the
//! docs point at files that exist (`docs_links`).
//!
//! Rules (docs/architecture.md):
//! - `storage` imports only `domain`;
//! - `config` imports only `domain`;
//! - the JSON API (`routes::api`) and the pages (`routes::pages`) never import each other;
//! - nothing imports `jobs` but `startup`;
//! - no import cycle between top-level modules.
//!
//! Edges that break a rule today are listed in [`PENDING`] and cycles in [`PENDING_CYCLES`]
//! (issue 18 removes them). The lists only shrink: an edge or cycle not listed fails, and so
//! does a listed one that is gone, so that whoever removes it also removes it here.

#[path = "architecture/docs_links.rs"]
mod docs_links;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (file, unit it imports) pairs that break a rule today.
const PENDING: &[(&str, &str)] = &[];

/// Top-level modules that import each other in a cycle today, each group sorted.
const PENDING_CYCLES: &[&[&str]] = &[];

/// A file's module path (`src/routes/pages/send.rs` → `routes::pages::send`).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// The unit a module belongs to for the rules: its top-level module, except that
/// `routes::api` and `routes::pages` are units of their own.
fn unit_of(module: &[String]) -> String {
    match module {
        [] => "crate".to_owned(),
        [r, sub, ..] if r == "routes" && (sub == "api" || sub == "pages") => {
            format!("routes::{sub}")
        }
        [top, ..] => top.clone(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module paths a file names: `crate::a::b…` and `super::…` (resolved), outside comments.
fn imports(text: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
            let mut rest = code;
            while let Some(i) = rest.find(prefix) {
                // `xcrate::` or `my_super::` are not paths of ours.
                let before = rest[..i].chars().last();
                rest = &rest[i + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let mut path = base.clone();
                let mut tail = rest;
                loop {
                    let ident: String = tail
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if ident.is_empty() || ident == "super" {
                        break;
                    }
                    path.push(ident.clone());
                    tail = &tail[ident.len()..];
                    match tail.strip_prefix("::") {
                        Some(t) => tail = t,
                        None => break,
                    }
                }
                if !path.is_empty() {
                    found.insert(path);
                }
            }
        }
    }
    found
}

/// The module `super` names from `module` (a `mod.rs` file is its directory's module).
fn parent(module: &[String]) -> Vec<String> {
    let mut p = module.to_vec();
    p.pop();
    p
}

/// Which rule `from → to` breaks, if any.
fn broken_rule(from: &str, to: &str) -> Option<&'static str> {
    if from == to || to == "crate" {
        return None;
    }
    match (from, to) {
        ("storage", t) if t != "domain" => Some("storage imports only domain"),
        ("config", t) if t != "domain" => Some("config imports only domain"),
        ("routes::pages", "routes::api") | ("routes::api", "routes::pages") => {
            Some("the pages and the JSON API never import each other")
        }
        (f, "jobs") if f != "startup" => Some("nothing imports jobs but startup"),
        _ => None,
    }
}

struct Graph {
    /// (file, unit imported) → rule broken.
    broken: BTreeMap<(String, String), &'static str>,
    /// Top-level module → top-level modules it imports.
    tops: BTreeMap<String, BTreeSet<String>>,
}

fn read_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut broken = BTreeMap::new();
    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let module = module_of(rel);
        let text = std::fs::read_to_string(&file).expect("a readable file");
        let from = unit_of(&module);
        let from_top = module.first().cloned().unwrap_or_else(|| "crate".into());
        for path in imports(&text, &module) {
            let to = unit_of(&path);
            if let Some(rule) = broken_rule(&from, &to) {
                let name = format!("src/{}", rel.display());
                broken.insert((name, to.clone()), rule);
            }
            let to_top = path[0].clone();
            if from_top != "crate" && to_top != from_top && is_module(&src, &to_top) {
                tops.entry(from_top.clone()).or_default().insert(to_top);
            }
        }
    }
    Graph { broken, tops }
}

fn is_module(src: &Path, name: &str) -> bool {
    src.join(format!("{name}.rs")).exists() || src.join(name).join("mod.rs").exists()
}

/// Strongly connected components with more than one module (Tarjan), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: BTreeSet<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.graph.get(v) {
            for w in targets {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            loop {
                let w = s.stack.pop().expect("on the stack");
                s.on_stack.remove(w);
                group.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.out.insert(group);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: BTreeSet::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn imports_point_one_way() {
    let graph = read_graph();
    let pending: BTreeSet<(String, String)> = PENDING
        .iter()
        .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
        .collect();
    let new: Vec<String> = graph
        .broken
        .iter()
        .filter(|(edge, _)| !pending.contains(*edge))
        .map(|((file, to), rule)| format!("{file} imports {to}: {rule}"))
        .collect();
    let gone: Vec<String> = pending
        .iter()
        .filter(|edge| !graph.broken.contains_key(*edge))
        .map(|(file, to)| format!("(\"{file}\", \"{to}\")"))
        .collect();
    assert!(
        new.is_empty(),
        "imports against the layering:\n  {}",
        new.join("\n  ")
    );
    assert!(
        gone.is_empty(),
        "fixed, so remove from PENDING in tests/architecture.rs:\n  {}",
        gone.join("\n  ")
    );
}

#[test]
fn no_new_import_cycles_between_top_level_modules() {
    let graph = read_graph();
    let found = cycles(&graph.tops);
    let pending: BTreeSet<Vec<String>> = PENDING_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| (*m).to_owned()).collect())
        .collect();
    let describe = |set: &BTreeSet<Vec<String>>| {
        set.iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    assert_eq!(
        found,
        pending,
        "the top-level modules in import cycles changed; now:\n  {}\n(an edge that joins a cycle must go; a cycle broken is removed from PENDING_CYCLES)",
        describe(&found)
    );
}

#[test]
fn the_reader_sees_paths_the_way_rust_does() {
    let module = vec!["routes".to_owned(), "pages".to_owned(), "send".to_owned()];
    let found = imports(
        "use crate::storage::senders;\n// use crate::jobs::x;\nuse super::api::thing;\nlet a = my_crate::x;",
        &module,
    );
    let expected: BTreeSet<Vec<String>> = [
        vec!["storage", "senders"],
        vec!["routes", "pages", "api", "thing"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(str::to_owned).collect())
    .collect();
    assert_eq!(found, expected);
    assert_eq!(unit_of(&module), "routes::pages");
    assert_eq!(
        broken_rule("storage", "config"),
        Some("storage imports only domain")
    );
    assert_eq!(broken_rule("storage", "domain"), None);
    assert_eq!(broken_rule("startup", "jobs"), None);
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["a", "c"]), ("c", vec![])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(
        cycles(&graph),
        BTreeSet::from([vec!["a".to_owned(), "b".to_owned()]])
    );
}
