//! Layered configuration: built-in defaults, then an optional TOML file, then
//! environment variables (`<PREFIX>_<SECTION>__<KEY>`), later wins.

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

/// Loads a process's settings.
///
/// * `defaults`: a TOML document with every setting's default.
/// * `file`: an optional TOML file; it must exist when given.
/// * `env_prefix`: e.g. `GATEWAY` reads `GATEWAY_HTTP__ADDR` into `http.addr`.
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, config::ConfigError> {
    let mut builder = Config::builder().add_source(File::from_str(defaults, FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    builder
        .add_source(
            Environment::with_prefix(env_prefix)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        )
        .build()?
        .try_deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Demo {
        http: Http,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Http {
        addr: String,
        max_body_bytes: u64,
    }

    #[test]
    fn a_config_file_overrides_the_defaults_key_by_key() {
        // The environment layer is covered by the integration tests, which
        // configure every process through it (setting variables in-process
        // needs `unsafe`, which the workspace forbids).
        let dir = std::env::temp_dir().join(format!("settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.toml");
        std::fs::write(&file, "[http]\naddr = \"0.0.0.0:1\"\n").unwrap();
        let demo: Demo = load(
            "[http]\naddr = \"127.0.0.1:8080\"\nmax_body_bytes = 10\n",
            Some(&file),
            "SETTINGS_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(demo.http.addr, "0.0.0.0:1");
        assert_eq!(demo.http.max_body_bytes, 10);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = load::<Demo>(
            "[http]\naddr = \"x\"\nmax_body_bytes = 1\n",
            Some(Path::new("/nonexistent/app.toml")),
            "SETTINGS_TEST_UNUSED",
        );
        assert!(err.is_err());
    }
}
