//! What xtask says on the terminal: headers, steps, warnings, commands, in
//! colour when stdout is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

/// Whether to use ANSI colours on stdout.
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `text` in the SGR style `code` (e.g. `"1"` bold, `"33"` yellow) when
/// colours are on.
pub fn paint(code: &str, text: &str) -> String {
    if color() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A section header: one per step of a long command.
pub fn header(text: &str) {
    println!("\n{}", paint("1;36", &format!("==> {text}")));
}

/// Something xtask is doing or found.
pub fn step(text: &str) {
    println!("{} {text}", paint("1;32", "-->"));
}

/// Something the user should know but that does not stop us.
pub fn warn(text: &str) {
    println!("{} {text}", paint("1;33", "warning:"));
}

/// A command about to run, as the user could type it.
pub fn command(text: &str) {
    println!("{}", paint("2", &format!("$ {text}")));
}
