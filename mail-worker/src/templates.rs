//! The mails' words: `templates/<locale>/<mail>.subject.txt`, `.txt` and
//! `.html`, compiled into the binary (a locale is a folder: adding one is
//! adding files), and optionally a folder read at start
//! (`mail.templates_dir`) whose files add locales or replace built-in files.
//! A file missing in a locale is taken from English.
//!
//! minijinja renders them: Jinja's syntax, which translators and designers
//! know; HTML auto-escaping chosen by the file name, so a user's address or
//! a user-agent string cannot inject markup into the `.html` part while the
//! `.txt` parts stay verbatim.

use std::path::Path;

use anyhow::{Context, bail};
use include_dir::{Dir, include_dir};
use minijinja::Environment;
use serde::Serialize;

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The locale every mail has.
pub const FALLBACK: &str = "en";

/// The three parts of one mail.
const PARTS: [&str; 3] = ["subject.txt", "txt", "html"];

/// A mail, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every template, by `<locale>/<mail>.<part>`.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates, with those under `dir` (when given) added or
    /// put in their place.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for locale in BUILT_IN.dirs() {
            for file in locale.files() {
                let name = file.path().to_string_lossy().into_owned();
                let source = file
                    .contents_utf8()
                    .with_context(|| format!("template {name} is not UTF-8"))?;
                env.add_template_owned(name.clone(), source.to_owned())
                    .with_context(|| format!("built-in template {name}"))?;
            }
        }
        if let Some(dir) = dir {
            add_dir(&mut env, dir)
                .with_context(|| format!("mail.templates_dir {}", dir.display()))?;
        }
        Ok(Self { env })
    }

    /// Renders `template` in `locale`, each part from English when the
    /// locale lacks it.
    pub fn render(
        &self,
        locale: &str,
        template: &str,
        context: &impl Serialize,
    ) -> anyhow::Result<Rendered> {
        let ctx = minijinja::Value::from_serialize(context);
        let mut parts = PARTS.iter().map(|part| {
            let wanted = format!("{locale}/{template}.{part}");
            let name = if self.env.get_template(&wanted).is_ok() {
                wanted
            } else {
                format!("{FALLBACK}/{template}.{part}")
            };
            self.env
                .get_template(&name)
                .with_context(|| format!("no template {name}"))?
                .render(&ctx)
                .with_context(|| format!("rendering {name}"))
        });
        let (Some(subject), Some(text), Some(html)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("a mail has three parts");
        };
        Ok(Rendered {
            subject: subject?.split_whitespace().collect::<Vec<_>>().join(" "),
            text: text?,
            html: html?,
        })
    }
}

/// Adds `<dir>/<locale>/<file>` for every locale folder of `dir`.
fn add_dir(env: &mut Environment<'static>, dir: &Path) -> anyhow::Result<()> {
    for locale in std::fs::read_dir(dir)? {
        let locale = locale?;
        if !locale.file_type()?.is_dir() {
            continue;
        }
        let locale_name = locale.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(locale.path())? {
            let file = file?;
            if !file.file_type()?.is_file() {
                continue;
            }
            let name = format!("{locale_name}/{}", file.file_name().to_string_lossy());
            let source = std::fs::read_to_string(file.path())
                .with_context(|| format!("reading {}", file.path().display()))?;
            env.add_template_owned(name.clone(), source)
                .with_context(|| format!("template {name}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> serde_json::Value {
        json!({
            "email": "<b>eve</b>@example.com",
            "origin": "https://app.example.com",
            "occurred_at": "2026-12-07 14:20 UTC",
            "link": "https://app.example.com/verify?token=abc-_1",
            "expires_at": "2026-12-08 14:20 UTC",
        })
    }

    #[test]
    fn html_is_escaped_and_text_is_verbatim() {
        let mail = Templates::load(None)
            .unwrap()
            .render("en", "verify", &context())
            .unwrap();
        assert_eq!(mail.subject, "Confirm your email address");
        assert!(
            mail.text.contains("<b>eve</b>@example.com"),
            "{}",
            mail.text
        );
        assert!(
            mail.text
                .contains("https://app.example.com/verify?token=abc-_1")
        );
        assert!(!mail.html.contains("<b>eve</b>"), "{}", mail.html);
        assert!(
            mail.html
                .contains("&lt;b&gt;eve&lt;&#x2f;b&gt;@example.com"),
            "{}",
            mail.html
        );
        assert!(
            mail.html
                .contains(r#"href="https:&#x2f;&#x2f;app.example.com&#x2f;verify?token=abc-_1""#),
            "{}",
            mail.html
        );
    }

    #[test]
    fn every_mail_has_its_three_english_parts() {
        let templates = Templates::load(None).unwrap();
        for template in [
            "verify",
            "reset",
            "password_changed",
            "email_change_notice",
            "email_change_confirm",
            "email_changed",
            "new_sign_in",
            "login_throttled",
        ] {
            let mail = templates.render("en", template, &context()).unwrap();
            assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'));
            assert!(
                !mail.text.is_empty() && mail.html.contains("<p>"),
                "{template}"
            );
        }
    }

    #[test]
    fn a_missing_locale_or_file_falls_back_to_english_and_a_folder_overrides() {
        let dir = std::env::temp_dir().join(format!("mail-templates-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("fr")).unwrap();
        std::fs::write(dir.join("fr/verify.subject.txt"), "Confirmez {{ email }}\n").unwrap();
        let templates = Templates::load(Some(&dir)).unwrap();
        let fr = templates.render("fr", "verify", &context()).unwrap();
        assert_eq!(fr.subject, "Confirmez <b>eve</b>@example.com");
        // The parts French lacks, and a locale nobody has, are English.
        let en = templates.render("en", "verify", &context()).unwrap();
        assert_eq!(fr.text, en.text);
        let de = templates.render("de", "verify", &context()).unwrap();
        assert_eq!(de, en);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
