//! The check that keeps history out of the code and the docs true to the
//! tree: a comment (or a Markdown page) says what is true and why, never
//! which issue asked for it (that is the commit's and the decision record's
//! to say), and every relative link of a Markdown page names a file that
//! exists. Fails on `issue N` or `issue #N` in a comment of a tracked source
//! file or anywhere in a tracked Markdown file, and on a dangling link.

use std::path::Path;

use anyhow::bail;

/// Comment markers by file ending.
fn comment_marker(path: &str) -> Option<&'static str> {
    let ext = Path::new(path).extension()?.to_str()?;
    match ext {
        "rs" | "ts" | "tsx" | "js" => Some("//"),
        "toml" | "conf" | "yaml" | "yml" | "sh" => Some("#"),
        "sql" => Some("--"),
        _ => None,
    }
}

/// Whether `text` names an issue: `issue` then digits, `#` between
/// allowed, any case.
fn names_an_issue(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.match_indices("issue").any(|(at, word)| {
        let rest = lower[at + word.len()..].trim_start_matches([' ', '#']);
        let whole_word = !lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric());
        whole_word && rest.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// Whether `path` is a Markdown page (all of its text is prose).
fn is_markdown(path: &str) -> bool {
    path.ends_with(".md")
}

/// `file:line: text` of every comment in `source` (every line of a Markdown
/// page) that names an issue.
fn offending(path: &str, source: &str) -> Vec<String> {
    let marker = match comment_marker(path) {
        Some(marker) => marker,
        None if is_markdown(path) => "",
        None => return Vec::new(),
    };
    source
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let comment = &line[line.find(marker)?..];
            names_an_issue(comment).then(|| format!("{path}:{}: {}", n + 1, line.trim()))
        })
        .collect()
}

/// The relative targets of the inline links (`[text](target)`) of a
/// Markdown page, without their `#fragment`; web addresses and pure
/// fragments are left out.
fn relative_links(source: &str) -> Vec<&str> {
    source
        .match_indices("](")
        .filter_map(|(at, open)| {
            let rest = &source[at + open.len()..];
            let target = &rest[..rest.find([')', ' '])?];
            let target = target.split('#').next().unwrap_or_default();
            let external = target.contains("://") || target.starts_with("mailto:");
            (!target.is_empty() && !external).then_some(target)
        })
        .collect()
}

/// `file: target` of every relative link of the page at `path` whose
/// target does not exist.
fn dangling(path: &str, source: &str) -> Vec<String> {
    let dir = Path::new(path).parent().unwrap_or(Path::new(""));
    relative_links(source)
        .into_iter()
        .filter(|target| !dir.join(target).exists())
        .map(|target| format!("{path}: link to {target}, which does not exist"))
        .collect()
}

/// Checks every file git tracks (vendored code aside).
pub fn check() -> anyhow::Result<usize> {
    let out = crate::util::capture(std::process::Command::new("git").args(["ls-files"]))?;
    if !out.status.success() {
        bail!("`git ls-files` failed: the check runs in a git checkout");
    }
    let listed = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    let mut checked = 0;
    let mut links = Vec::new();
    for path in listed.lines().filter(|p| !p.starts_with("vendor/")) {
        if comment_marker(path).is_none() && !is_markdown(path) {
            continue;
        }
        let Ok(source) = std::fs::read_to_string(path) else {
            continue;
        };
        checked += 1;
        found.extend(offending(path, &source));
        if is_markdown(path) {
            links.extend(dangling(path, &source));
        }
    }
    if !found.is_empty() {
        bail!(
            "{} comment(s) name an issue; say what is true and why instead (the issue belongs in \
             the commit or an ADR):\n  {}",
            found.len(),
            found.join("\n  ")
        );
    }
    if !links.is_empty() {
        bail!(
            "{} Markdown link(s) lead nowhere; fix the path or the page:\n  {}",
            links.len(),
            links.join("\n  ")
        );
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_naming_an_issue_are_found_and_nothing_else() {
        // Spelt with `{i}` so that this file passes its own check.
        let (i, cap) = ("issue", "Issue");
        let source =
            format!("// fine\n/// as {i} 15 found\nlet {i} = 3; // {cap} #16\nx // re{i} 5\n");
        let found = offending("a.rs", &source);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("a.rs:2:"));
        assert!(found[1].starts_with("a.rs:3:"));
        assert_eq!(offending("a.toml", &format!("# {i} 9\n")).len(), 1);
        assert_eq!(offending("a.sql", &format!("-- see {i} 9\n")).len(), 1);
        assert_eq!(offending("a.md", &format!("as {i} 9 asked\n")).len(), 1);
        assert!(offending("a.json", &format!("{i} 9\n")).is_empty());
        assert!(!names_an_issue("// an issue with it"));
    }

    #[test]
    fn relative_links_are_found_without_fragments_and_web_addresses() {
        let page = "[a](docs/a.md) [b](../b.md#part) [c](https://x.org/c.md) [d](#top) \
                    [e](mailto:x@y.z) ![f](shots/f.png \"title\")";
        assert_eq!(
            relative_links(page),
            ["docs/a.md", "../b.md", "shots/f.png"]
        );
    }

    #[test]
    fn a_link_to_a_missing_file_is_dangling_and_one_to_a_present_file_is_not() {
        let found = dangling("NOTES.md", "[ok](src/main.rs) [gone](src/nowhere.rs)");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("src/nowhere.rs"), "{found:?}");
    }
}
