//! Executable invariants of the code's shape, as rust-analyzer keeps its own: the pure core
//! imports no IO, SQL lives only in the store, every file says what it owns, and the modules
//! form no cycle. Reads `src/` as text; test code (`#[cfg(test)]` onwards, `tests.rs`) is
//! left out, since edges that exist only in tests do not count.
//!
//! `cargo test --test architecture -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// The path relative to `src/`, with `/` separators.
fn rel(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    path.strip_prefix(&src)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// The code a build without tests compiles: everything before the first `#[cfg(test)]`;
/// nothing of a `tests.rs`.
fn non_test(path: &Path, text: &str) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Lines without `//` comments (doc comments name modules freely).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        };
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// The top-level module a file belongs to: `reconcile` for `src/reconcile/diff.rs`.
fn module_of(rel: &str) -> String {
    rel.split('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".rs")
        .to_string()
}

/// The crate's top-level modules a piece of code names (`crate::x`, `crate::{x, y::z}`).
fn crate_refs(code: &str) -> BTreeSet<String> {
    refs_after(code, "crate::")
}

/// The first path segment of each item named after `prefix` (`super::`, `crate::okta::`):
/// `prefix x`, `prefix {x, y::z}`.
fn refs_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        // `crate::okta::` must not match inside `crate::okta_x::`, nor `super::` in `xsuper::`.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // A grouped import: the first segment of each item, nested groups included.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let first = item.trim().split("::").next().unwrap_or("").trim();
                        if !first.is_empty() && first != "self" {
                            out.insert(first.to_string());
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Edges between top-level modules in non-test code, with one place each is made.
fn module_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, text) in sources() {
        let rel = rel(&path);
        let from = module_of(&rel);
        // The binary crate (`main.rs`, `commands/`): its `crate::` is not the library's.
        if from == "main" || from == "lib" || from == "commands" {
            continue;
        }
        let code = non_test(&path, &text);
        for (line, l) in code_lines(&code) {
            for to in crate_refs(l) {
                if to != from {
                    graph
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{rel}:{line}"));
                }
            }
        }
    }
    graph
}

/// Edges between the files of one directory module (`okta/client.rs` -> `okta/logs.rs`),
/// in non-test code. A file names a sibling as `super::sibling` or by its full path
/// (`crate::okta::logs`). `mod.rs`, the module's face, is left out: its children use what
/// it declares, and it re-exports theirs.
fn file_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let sources = sources();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let all: Vec<String> = sources.iter().map(|(p, _)| rel(p)).collect();
    for (path, text) in &sources {
        let here = rel(path);
        let Some((dir, file)) = here.rsplit_once('/') else {
            continue;
        };
        if file == "mod.rs" || file == "tests.rs" {
            continue;
        }
        let siblings: BTreeSet<String> = all
            .iter()
            .filter_map(|r| {
                let (d, f) = r.rsplit_once('/')?;
                (d == dir && f != "mod.rs" && f != file)
                    .then(|| f.trim_end_matches(".rs").to_string())
            })
            .collect();
        let full = format!("crate::{}::", dir.replace('/', "::"));
        // The binary crate's `crate::` is `main.rs`: only `super::` names a sibling there.
        let binary = dir == "commands";
        let code = non_test(path, text);
        for (line, l) in code_lines(&code) {
            let mut named = refs_after(l, "super::");
            if !binary {
                named.extend(refs_after(l, &full));
            }
            for to in named.into_iter().filter(|n| siblings.contains(n)) {
                graph
                    .entry(format!("{dir}/{}", file.trim_end_matches(".rs")))
                    .or_default()
                    .entry(format!("{dir}/{to}"))
                    .or_insert_with(|| format!("{here}:{line}"));
            }
        }
    }
    graph
}

/// A cycle through the graph, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn every_file_opens_with_what_it_owns() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(p, _)| rel(&p))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line: {missing:?}"
    );
}

#[test]
fn the_pure_core_imports_no_io() {
    const FORBIDDEN: &[&str] = &[
        "tokio", "reqwest", "rusqlite", "tracing", "std::fs", "std::net", "std::io", "axum",
    ];
    const IO_MODULES: &[&str] = &[
        "store",
        "okta",
        "telus",
        "http",
        "apply",
        "daemon",
        "sandbox",
        "config",
        "telemetry",
        "commands",
    ];
    let mut found = Vec::new();
    for (path, text) in sources() {
        let rel = rel(&path);
        if !rel.starts_with("reconcile/") {
            continue;
        }
        for (line, l) in code_lines(&non_test(&path, &text)) {
            for f in FORBIDDEN {
                let used = l.contains(&format!("{f}::"))
                    || l.contains(&format!("{f}!"))
                    || l.match_indices(&format!("use {f}")).any(|(at, m)| {
                        !l[at + m.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    });
                if used {
                    found.push(format!("{rel}:{line}: {f}"));
                }
            }
            for m in crate_refs(l) {
                if IO_MODULES.contains(&m.as_str()) {
                    found.push(format!("{rel}:{line}: crate::{m}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "IO in reconcile/:\n{}", found.join("\n"));
}

#[test]
fn sql_lives_only_in_the_store() {
    const SQL: &[&str] = &[
        "SELECT ",
        "INSERT INTO",
        "INSERT OR ",
        "DELETE FROM",
        "CREATE TABLE",
        "CREATE INDEX",
        "ALTER TABLE",
        "DROP TABLE",
        "PRAGMA ",
        "BEGIN EXCLUSIVE",
    ];
    let mut found = Vec::new();
    for (path, text) in sources() {
        let rel = rel(&path);
        if rel.starts_with("store/") {
            continue;
        }
        for (line, l) in code_lines(&text) {
            // Only inside string literals: SQL is text handed to SQLite.
            let in_string = l
                .split('"')
                .skip(1)
                .step_by(2)
                .collect::<Vec<_>>()
                .join(" ");
            for s in SQL {
                if in_string.to_uppercase().contains(s) && in_string.contains(s.trim()) {
                    found.push(format!("{rel}:{line}: {}", l.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside src/store/:\n{}",
        found.join("\n")
    );
}

/// Prints `graph` under `title` and fails on a cycle, naming where each hop is made.
fn assert_acyclic(title: &str, graph: &BTreeMap<String, BTreeMap<String, String>>) {
    println!("{title} (non-test code):");
    for (from, tos) in graph {
        let tos: Vec<&str> = tos.keys().map(String::as_str).collect();
        println!("  {from} -> {}", tos.join(", "));
    }
    if let Some(cycle) = find_cycle(graph) {
        let hops: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
            .collect();
        panic!("{title} has a cycle:\n  {}", hops.join("\n  "));
    }
}

#[test]
fn the_module_graph_has_no_cycle() {
    assert_acyclic("module graph", &module_graph());
}

#[test]
fn the_files_of_a_module_form_no_cycle() {
    assert_acyclic("file graph inside modules", &file_graph());
}

/// Non-test lines of `src/` outside `allowed` (path prefixes) that `hit` matches.
fn lines_outside(allowed: &[&str], hit: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let rel = rel(&path);
        if allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        for (line, l) in code_lines(&non_test(&path, &text)) {
            if hit(l) {
                found.push(format!("{rel}:{line}: {}", l.trim()));
            }
        }
    }
    found
}

fn calls(l: &str, methods: &[&str]) -> bool {
    methods.iter().any(|m| l.contains(&format!(".{m}(")))
}

#[test]
fn only_the_pass_driver_begins_and_finishes_passes() {
    let found = lines_outside(&["pass/", "store/"], |l| {
        calls(l, &["begin_pass", "finish_pass"])
    });
    assert!(
        found.is_empty(),
        "passes begun or finished outside src/pass/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_meta_table_is_reached_only_inside_the_store() {
    let found = lines_outside(&["store/"], |l| {
        calls(l, &["meta", "set_meta", "delete_meta"])
    });
    assert!(
        found.is_empty(),
        "meta reached outside src/store/ (use the typed methods of store/state.rs):\n{}",
        found.join("\n")
    );
}

/// The daemon and event tests wait on conditions: a sleep is a line marked `// real time`
/// (real time is the behaviour under test, or a condition is polled).
#[test]
fn daemon_and_event_tests_hold_no_unmarked_sleep() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for file in [
        "tests/e2e/daemon.rs",
        "tests/e2e/events.rs",
        "src/daemon/events.rs",
        "src/daemon/queue.rs",
        "src/daemon/mod.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let tests = match file.starts_with("src/") {
            true => text.find("#[cfg(test)]").map_or("", |at| &text[at..]),
            false => text.as_str(),
        };
        found.extend(
            unmarked_sleeps(tests)
                .into_iter()
                .map(|l| format!("{file}: {l}")),
        );
    }
    assert!(
        found.is_empty(),
        "fixed sleeps in the daemon and event tests:\n{}",
        found.join("\n")
    );
}

fn unmarked_sleeps(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("sleep(") && !l.contains("// real time"))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Functions longer than `max` lines in `text`: (name, first line, length). Counts braces
/// from each `fn` line to its closing one (good enough for rustfmt-formatted code).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut started) = (0i64, false);
        for (j, body) in lines.iter().enumerate().skip(i) {
            depth += body.matches('{').count() as i64 - body.matches('}').count() as i64;
            started |= body.contains('{');
            if body.trim_end().ends_with(';') && !started {
                break; // a declaration without a body
            }
            if started && depth <= 0 {
                if j - i + 1 > max {
                    out.push((name.clone(), i + 1, j - i + 1));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn no_function_outside_tests_and_fakes_exceeds_100_lines() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let rel = rel(&path);
        if rel.starts_with("sandbox/") {
            continue;
        }
        for (name, line, len) in long_functions(&non_test(&path, &text), 100) {
            found.push(format!("{rel}:{line}: {name} is {len} lines"));
        }
    }
    assert!(
        found.is_empty(),
        "functions over 100 lines:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The parsers themselves, on planted text.
    let refs = crate_refs("use crate::{okta, telus::auth::{Persist, TokenPair}, self};");
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        vec!["okta".to_string(), "telus".to_string()]
    );
    assert!(crate_refs("let x = crate::store::Store::open(p);").contains("store"));
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    g.entry("a".into())
        .or_default()
        .insert("b".into(), "x".into());
    g.entry("b".into())
        .or_default()
        .insert("a".into(), "y".into());
    assert!(find_cycle(&g).is_some());
    g.get_mut("b").unwrap().clear();
    assert!(find_cycle(&g).is_none());
    let siblings = refs_after("use super::{logs::LogEvent, wire};", "super::");
    assert!(siblings.contains("logs") && siblings.contains("wire"));
    assert!(refs_after("crate::okta_x::y", "crate::okta::").is_empty());
    assert!(refs_after("crate::okta::logs::poll", "crate::okta::").contains("logs"));
    assert!(calls("store.begin_pass(kind)", &["begin_pass"]));
    assert!(calls("let v = s.meta(\"k\")?;", &["meta"]));
    assert!(!calls("s.okta_cursor()", &["meta"]));
    assert_eq!(
        unmarked_sleeps("sleep(a).await;\nsleep(b).await; // real time: the debounce"),
        vec!["sleep(a).await;".to_string()]
    );
    assert_eq!(
        non_test(
            Path::new("x.rs"),
            "a\n#[cfg(test)]\nmod tests { crate::store }"
        ),
        "a\n"
    );
}
