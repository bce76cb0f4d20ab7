//! Long-running children: started in their own process groups, their output
//! copied line by line to the terminal (prefixed with the process's name)
//! and to `.dev/logs/<name>.log`, and stopped in order with SIGTERM, then
//! SIGKILL after a grace period.
//!
//! Own process groups matter: Ctrl-C in a terminal signals the whole
//! foreground group at once, which would stop nats-server while the workers
//! are still draining. Only xtask gets it; xtask then stops the gateway, the
//! workers and nats-server one stage after the other.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{signals, term, util};

/// When a process is stopped: later stages first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Nats,
    Worker,
    Gateway,
}

impl Stage {
    /// How long a process of this stage may take to stop after SIGTERM.
    fn grace(self) -> Duration {
        match self {
            // Workers drain in-flight requests first.
            Stage::Worker => Duration::from_secs(15),
            Stage::Gateway => Duration::from_secs(10),
            Stage::Nats => Duration::from_secs(5),
        }
    }
}

/// The children of `cargo xtask up`.
#[derive(Debug)]
pub struct Supervisor {
    procs: Vec<Proc>,
    log_dir: PathBuf,
    /// Width of the name column in the terminal.
    width: usize,
    /// Whether the children's output is also shown on the terminal (it
    /// always goes to their log files).
    echo: bool,
    /// Whether the children write straight into their log files, with no
    /// copying thread in this process (for measurements: the copying would
    /// take CPU from the processes measured).
    direct: bool,
}

#[derive(Debug)]
struct Proc {
    name: String,
    stage: Stage,
    child: Child,
    pumps: Vec<JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Supervisor {
    /// A supervisor writing logs to `log_dir`; `width` aligns name prefixes.
    pub fn new(log_dir: &Path, width: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        Ok(Self {
            procs: Vec::new(),
            log_dir: log_dir.to_path_buf(),
            width,
            echo: true,
            direct: false,
        })
    }

    /// Children started from now on write only to their log files, not to
    /// the terminal (`cargo xtask fuzz`: the fuzzer's report stays readable).
    pub fn quiet(mut self) -> Self {
        self.echo = false;
        self
    }

    /// Children write their output straight into their log files (nothing on
    /// the terminal, no copying thread).
    pub fn direct_to_files(mut self) -> Self {
        self.echo = false;
        self.direct = true;
        self
    }

    /// Starts `cmd` as `name`. Its log file starts empty.
    pub fn spawn(&mut self, name: &str, stage: Stage, mut cmd: Command) -> anyhow::Result<()> {
        term::command(&format!("{}   # as {name}", util::display(&cmd)));
        let log_path = self.log_dir.join(format!("{name}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        cmd.stdin(Stdio::null()).process_group(0);
        if self.direct {
            cmd.stdout(log.try_clone()?).stderr(log);
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {name} (`{}`)", util::display(&cmd)))?;
            self.procs.push(Proc {
                name: name.to_owned(),
                stage,
                child,
                pumps: Vec::new(),
                exited: None,
            });
            return Ok(());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let log = Arc::new(Mutex::new(log));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} (`{}`)", util::display(&cmd)))?;
        let echo = self.echo;
        let prefix = format!(
            "{} ",
            term::paint(
                color_of(self.procs.len()),
                &format!("{name:>w$} |", w = self.width)
            )
        );
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(out, prefix.clone(), echo, Arc::clone(&log)));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(err, prefix, echo, log));
        }
        self.procs.push(Proc {
            name: name.to_owned(),
            stage,
            child,
            pumps,
            exited: None,
        });
        Ok(())
    }

    /// `(name, pid)` of every child.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .map(|p| (p.name.clone(), p.child.id()))
            .collect()
    }

    /// Fails if any child has exited (during start-up, every exit is a
    /// failure), naming it and its log.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some((name, status)) = self.first_exit() {
            bail!(
                "{name} exited during start-up ({status}); its output is above and in {}",
                util::shown(&self.log_dir.join(format!("{name}.log")))
            );
        }
        Ok(())
    }

    /// The first child found to have exited, if any.
    pub fn first_exit(&mut self) -> Option<(String, ExitStatus)> {
        for proc in &mut self.procs {
            if proc.exited.is_none()
                && let Ok(Some(status)) = proc.child.try_wait()
            {
                proc.exited = Some(status);
                return Some((proc.name.clone(), status));
            }
        }
        None
    }

    /// Stops every child, the latest stage first: SIGTERM, then SIGKILL if it
    /// has not exited within its stage's grace period (at once after a
    /// second Ctrl-C). Returns the names of children that had to be killed.
    pub fn shutdown(&mut self) -> Vec<String> {
        let mut killed = Vec::new();
        for stage in [Stage::Gateway, Stage::Worker, Stage::Nats] {
            let group: Vec<usize> = (0..self.procs.len())
                .filter(|&i| self.procs[i].stage == stage && self.procs[i].exited.is_none())
                .collect();
            for &i in &group {
                let proc = &mut self.procs[i];
                if let Ok(Some(status)) = proc.child.try_wait() {
                    proc.exited = Some(status);
                    continue;
                }
                term::step(&format!("stopping {} (SIGTERM)", proc.name));
                if let Ok(pid) = i32::try_from(proc.child.id()) {
                    // It may have exited a moment ago; that is fine.
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
            }
            let deadline = Instant::now() + stage.grace();
            for &i in &group {
                let proc = &mut self.procs[i];
                if proc.exited.is_some() {
                    continue;
                }
                match wait_until(&mut proc.child, deadline) {
                    Some(status) => proc.exited = Some(status),
                    None => {
                        term::warn(&format!(
                            "{} did not stop within {}s; killing it",
                            proc.name,
                            stage.grace().as_secs()
                        ));
                        let _ = proc.child.kill();
                        proc.exited = proc.child.wait().ok();
                        killed.push(proc.name.clone());
                    }
                }
            }
        }
        // The pipes are closed now; let the last lines reach the terminal.
        for proc in &mut self.procs {
            for pump in proc.pumps.drain(..) {
                let _ = pump.join();
            }
        }
        killed
    }
}

impl Drop for Supervisor {
    /// Never leave children behind, even on an early error.
    fn drop(&mut self) {
        if self.procs.iter().any(|p| p.exited.is_none()) {
            self.shutdown();
        }
    }
}

/// Waits for `child` until `deadline`, or until a second stop signal asks for
/// haste.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline || signals::count() > 1 {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Copies `stream` line by line to the terminal (after `prefix`, if `echo`)
/// and `log`.
fn pump(
    stream: impl Read + Send + 'static,
    prefix: String,
    echo: bool,
    log: Arc<Mutex<File>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if echo {
                println!("{prefix}{text}");
            }
            if let Ok(mut file) = log.lock() {
                let _ = writeln!(file, "{text}");
            }
        }
    })
}

/// A colour per process, cycling.
fn color_of(index: usize) -> &'static str {
    const COLORS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];
    COLORS[index % COLORS.len()]
}
