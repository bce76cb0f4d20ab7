//! The browser walk: Debian's Chromium, driven over WebDriver
//! (chromedriver) by fantoccini, through the built web app served by the
//! real gateway on a real stack (nats-server, PostgreSQL, both workers).
//!
//! The tests are `#[ignore]`d because a plain `cargo test` has no browser;
//! `cargo xtask test` installs Chromium and ChromeDriver when missing, builds
//! the app and runs them with `--ignored`, with `CHROMEDRIVER`, `CHROMIUM`
//! and `WEB_DIST` set. Inputs and buttons are found by their labels and
//! accessible names, as a person (or a screen reader) finds them. A failing
//! test leaves a screenshot in `target/browser/`, and the pages the README
//! shows are saved there too.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod mfa;
mod recovery;
mod walk;

use std::{
    future::Future,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use futures::FutureExt;
use helpers::TestApp;
use serde_json::json;

/// `target/browser/`: screenshots of failures and of the README's pages.
pub fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the browser tests run under `cargo xtask test`, which installs \
             Chromium and ChromeDriver (Debian: `apt-get install chromium chromium-driver`) and \
             builds the web app"
        )
    })
}

/// A chromedriver of its own on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = testkit::free_port();
        let child = Command::new(required_env("CHROMEDRIVER"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver listens on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stack serving the built app, a headless Chromium, and the app's origin.
pub(crate) struct Browser {
    pub(crate) app: TestApp,
    pub(crate) client: Client,
    pub(crate) origin: String,
    _driver: Driver,
    _profile: testkit::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// With `second_factor`, the stack is reached at
    /// `http://localhost:<port>` (WebAuthn takes no IP address as its RP
    /// ID) and an ADMIN must sign in with a second factor, as by default.
    pub async fn start_with(second_factor: bool) -> Self {
        let mut app = helpers::spawn_app().await;
        // Mail to a catcher of its own: the walks follow the links in it.
        app.start_mail_worker().await;
        let mut settings = app.gateway_settings();
        settings.web.dir = PathBuf::from(required_env("WEB_DIST"));
        // The stack's nats-server monitoring page, ADMIN only, as `cargo
        // xtask up` configures it.
        let monitor = app.nats.monitor_url().expect("nats-server monitoring");
        settings
            .proxy
            .routes
            .0
            .push(gateway::proxy::settings::RouteSettings {
                name: "nats".into(),
                prefix: "/proxy/nats".into(),
                upstream: monitor,
                roles: vec![shared::Role::Admin],
                timeout_ms: 10_000,
                strip_prefix: true,
                isolate: false,
                drop_query: vec!["callback".into()],
                nosniff: true,
                cross_origin_resource_policy: "same-origin".into(),
                require_verified_email: true,
                // ADMIN only, so a second factor is required when the
                // policy is on; the MFA walk also asks for it again after
                // three seconds.
                mfa: if second_factor {
                    gateway::proxy::Mfa::Required
                } else {
                    gateway::proxy::Mfa::Optional
                },
                max_auth_age: if second_factor { 3 } else { 0 },
            });
        assert!(
            settings.web.dir.join("index.html").is_file(),
            "no web build in {} (`cargo xtask web` makes it)",
            settings.web.dir.display()
        );
        let api = if second_factor {
            settings.mfa.require_for_admin = true;
            app.start_gateway_on_localhost(settings).await
        } else {
            app.start_gateway(settings).await
        };
        let origin = api.base.clone();
        app.set_api(api);

        let driver = Driver::start();
        let profile = testkit::TempDir::new();
        // The flags Chromium needs here: headless as root, and no calls to
        // Google's services (this machine's network refuses them).
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,860".to_owned(),
            format!("--user-data-dir={}", profile.path.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": required_env("CHROMIUM"), "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session in Chromium");
        Self {
            app,
            client,
            origin,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Runs `walk`; if it fails, saves a screenshot named after `test`
    /// before failing. The browser is closed either way.
    pub async fn run(&self, test: &str, walk: impl Future<Output = ()>) {
        let outcome = std::panic::AssertUnwindSafe(walk).catch_unwind().await;
        if outcome.is_err() {
            let file = screenshots_dir().join(format!("failure-{test}.png"));
            if let Ok(png) = self.client.screenshot().await {
                std::fs::write(&file, png).unwrap();
                eprintln!("screenshot of the failure: {}", file.display());
            }
            if let Ok(url) = self.client.current_url().await {
                eprintln!("the page was {url}");
            }
        }
        let _ = self.client.clone().close().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.origin))
            .await
            .unwrap();
    }

    /// Waits until the page's path (and query) is `expected`.
    pub async fn wait_for_path(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.client.current_url().await.unwrap();
            let here = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            if here == expected {
                return;
            }
            assert!(Instant::now() < deadline, "at {here}, expected {expected}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("no {xpath}: {e}"))
    }

    /// The input whose `<label>` says `label`.
    pub async fn field(&self, label: &str) -> Element {
        self.find(&format!(
            "//*[@id=//label[normalize-space()={}]/@for]",
            literal(label)
        ))
        .await
    }

    /// Clears the input labelled `label` and types `text`.
    pub async fn fill(&self, label: &str, text: &str) {
        let field = self.field(label).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The button (or link) whose accessible name is `name`: its text or
    /// its `aria-label`.
    pub async fn button(&self, name: &str) -> Element {
        let name = literal(name);
        self.find(&format!(
            "//*[(self::button or self::a) and (@aria-label={name} or \
             (not(@aria-label) and normalize-space()={name}))]"
        ))
        .await
    }

    pub async fn click(&self, name: &str) {
        self.button(name).await.click().await.unwrap();
    }

    /// Waits for a heading that says `text`.
    pub async fn heading(&self, text: &str) {
        self.find(&format!(
            "//*[self::h1 or self::h2][normalize-space()={}]",
            literal(text)
        ))
        .await;
    }

    /// Waits for a status or alert region that contains `text`.
    pub async fn says(&self, text: &str) {
        self.find(&format!(
            "//*[(@role='status' or @role='alert') and contains(normalize-space(), {})]",
            literal(text)
        ))
        .await;
    }

    /// The `id` of the focused element.
    pub async fn focused_id(&self) -> String {
        let id = self
            .client
            .execute(
                "return document.activeElement && document.activeElement.id",
                vec![],
            )
            .await
            .unwrap();
        id.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a screenshot of the page as `target/browser/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
    }
}

/// `text` as an XPath string literal.
fn literal(text: &str) -> String {
    if text.contains('\'') {
        format!("\"{text}\"")
    } else {
        format!("'{text}'")
    }
}
