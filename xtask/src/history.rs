//! The check that keeps history out of the code: a comment says what is
//! true and why, never which issue asked for it (that is the commit's and
//! the decision record's to say). Fails on `issue N` or `issue #N` in a
//! comment of a tracked source file.

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

/// `file:line: text` of every comment in `source` that names an issue.
fn offending(path: &str, source: &str) -> Vec<String> {
    let Some(marker) = comment_marker(path) else {
        return Vec::new();
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

/// Checks every file git tracks (vendored code aside).
pub fn check() -> anyhow::Result<usize> {
    let out = crate::util::capture(std::process::Command::new("git").args(["ls-files"]))?;
    if !out.status.success() {
        bail!("`git ls-files` failed: the check runs in a git checkout");
    }
    let listed = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    let mut checked = 0;
    for path in listed.lines().filter(|p| !p.starts_with("vendor/")) {
        if comment_marker(path).is_none() {
            continue;
        }
        let Ok(source) = std::fs::read_to_string(path) else {
            continue;
        };
        checked += 1;
        found.extend(offending(path, &source));
    }
    if !found.is_empty() {
        bail!(
            "{} comment(s) name an issue; say what is true and why instead (the issue belongs in \
             the commit or an ADR):\n  {}",
            found.len(),
            found.join("\n  ")
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
        assert!(offending("a.md", &format!("{i} 9\n")).is_empty());
        assert!(!names_an_issue("// an issue with it"));
    }
}
