//! A server a test can break on purpose: a private PostgreSQL cluster it may
//! stop and start. The shared PostgreSQL on 5432 is never touched. (A
//! nats-server to kill is testkit's `NatsProcess`.)

use std::{path::PathBuf, process::Stdio};

use tokio::process::Command;

/// A throwaway PostgreSQL cluster of this test's own (initdb in a temporary
/// directory, SCRAM passwords for everyone, the superuser's included,
/// loopback only, a free port), so the test can stop
/// and restart it. As root, the cluster belongs to the `postgres` system
/// user and every command runs through `runuser`, as `cargo xtask`'s private
/// cluster does (initdb refuses root).
pub struct PrivatePostgres {
    bin_dir: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// The superuser `postgres`'s password.
    password: String,
    run_as: Option<&'static str>,
    running: bool,
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        let bin_dir = postgres_bin_dir();
        let run_as = is_root().then_some("postgres");
        let dir =
            std::env::temp_dir().join(format!("natsauth-pg-{}", uuid::Uuid::new_v4().simple()));
        let mut pg = Self {
            bin_dir,
            dir: dir.clone(),
            port: testkit::free_port(),
            password: format!("p{}", uuid::Uuid::new_v4().simple()),
            run_as,
            running: false,
        };
        // Made by the cluster's owner, so initdb may write there.
        let mut mkdir = std::process::Command::new("mkdir");
        mkdir.arg(&dir);
        pg.run(mkdir).await;
        let data = pg.data();
        // Readable by the cluster's owner, like the directory.
        let pwfile = dir.join("superuser-password");
        std::fs::write(&pwfile, format!("{}\n", pg.password)).expect("write the password file");
        let mut initdb = pg.pg_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .arg("--pwfile")
            .arg(&pwfile)
            .args([
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]);
        pg.run(initdb).await;
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
        );
        std::fs::write(&conf, text).expect("write postgresql.conf");
        pg.start_again().await;
        pg
    }

    /// The URL of `database` as the superuser `postgres`, password included.
    pub fn url(&self, database: &str) -> String {
        testkit::loopback_url("postgres", Some(&self.password), self.port, database)
    }

    /// `pg_ctl stop -m fast`: sessions are ended (57P01), the server exits.
    pub async fn stop(&mut self) {
        let mut stop = self.pg_command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "30", "stop"]);
        self.run(stop).await;
        self.running = false;
    }

    /// Starts it (again) on the same port; returns once it accepts
    /// connections.
    pub async fn start_again(&mut self) {
        let mut start = self.pg_command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "30", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start");
        self.run(start).await;
        self.running = true;
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_command(&self, program: &str) -> std::process::Command {
        std::process::Command::new(self.bin_dir.join(program))
    }

    /// `cmd` as the cluster's owner, from a directory that user may enter.
    fn as_owner(&self, cmd: std::process::Command) -> std::process::Command {
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut wrapped = std::process::Command::new("runuser");
                wrapped
                    .args(["-u", user, "--"])
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                wrapped
            }
            None => cmd,
        };
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }

    /// Runs `cmd` as the cluster's owner; fails the test if it fails.
    async fn run(&self, cmd: std::process::Command) {
        let mut cmd = Command::from(self.as_owner(cmd));
        let out = cmd.output().await.expect("run a PostgreSQL command");
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let mut stop = self.pg_command("pg_ctl");
            stop.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = self
                .as_owner(stop)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/<N>/bin` (Debian's layout), else the
/// directory of `initdb` on `PATH`.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        })
        .expect("PostgreSQL's initdb and pg_ctl are needed (apt-get install postgresql)")
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
