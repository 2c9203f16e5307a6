//! Running commands under deadlines, and locating the `fossa` binary.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Default deadline for one command.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Poll interval for bounded waits.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    /// How the process ended.
    pub status: ExitStatus,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
    /// The command line, for messages.
    pub cmdline: String,
}

impl Output {
    /// Exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// A readable account of the run for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` ended with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.status,
            tail(&self.stdout, 40),
            tail(&self.stderr, 40)
        )
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `fossa` binary: `$FOSSA_BIN`, else `target/<profile>/fossa` next to this test executable
/// (which is `target/<profile>/deps/<test>-<hash>`).
pub fn fossa_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("FOSSA_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("FOSSA_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test executable has no target/<profile>/deps parent")?;
    let bin = profile_dir.join("fossa");
    if !bin.is_file() {
        bail!(
            "{} not found: run `cargo build -p fossa-mountd` (or `cargo build --workspace`) \
             before the end-to-end tests, or set FOSSA_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// A `Command` for `fossa ARGS`, with the fossa environment variables cleared so that the
/// caller's environment cannot select another volume or passphrase, and LAN discovery kept on
/// loopback (tests never send to any other address).
pub fn fossa(args: &[&str]) -> Result<Command> {
    let mut cmd = Command::new(fossa_bin()?);
    cmd.args(args)
        .env("FOSSA_DISCOVERY", "127.255.255.255")
        .env_remove("FOSSA_HOME")
        .env_remove("FOSSA_PASSPHRASE")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME");
    Ok(cmd)
}

/// Runs `cmd` to completion under the default deadline ([`COMMAND_TIMEOUT`]).
pub fn run(cmd: &mut Command) -> Result<Output> {
    run_timeout(cmd, COMMAND_TIMEOUT)
}

/// Runs `cmd` with stdin closed and its output captured in anonymous files (so grandchildren
/// that keep a pipe open cannot block us); kills it and fails once `timeout` has passed.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let cmdline = format!("{cmd:?}");
    let mut out_file = tempfile::tempfile()?;
    let mut err_file = tempfile::tempfile()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.try_clone()?)
        .stderr(err_file.try_clone()?)
        .spawn()
        .map_err(|e| spawn_error(cmd, e))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = read_all(&mut err_file).unwrap_or_default();
            bail!(
                "`{cmdline}` did not finish within {timeout:?} (killed)\n--- stderr ---\n{}",
                tail(&stderr, 40)
            );
        }
        std::thread::sleep(POLL);
    };
    Ok(Output {
        status,
        stdout: read_all(&mut out_file)?,
        stderr: read_all(&mut err_file)?,
        cmdline,
    })
}

/// A program that is not installed is named as such, like [`require_tool`] does.
fn spawn_error(cmd: &Command, e: std::io::Error) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        return anyhow::anyhow!("{}", not_installed(&program));
    }
    anyhow::anyhow!("spawning {cmd:?}: {e}")
}

/// The message for a missing tool.
fn not_installed(name: &str) -> String {
    format!("`{name}` is not installed (needed by this test; `./test.sh` installs it)")
}

fn read_all(file: &mut std::fs::File) -> Result<String> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Fails unless `out` exited 0.
pub fn assert_success(out: &Output, what: &str) -> Result<()> {
    if !out.success() {
        bail!("{what} failed: {}", out.describe());
    }
    Ok(())
}

/// Fails unless `out` exited with `code` and its stderr has a `fossa: error:` line containing
/// `needle` (case-insensitive), as docs/cli.md requires of errors.
pub fn assert_exit(out: &Output, code: i32, needle: &str, what: &str) -> Result<()> {
    let needle = needle.to_lowercase();
    let has_line = out
        .stderr
        .lines()
        .any(|l| l.starts_with("fossa: error:") && l.to_lowercase().contains(&needle));
    if out.code() != Some(code) || !has_line {
        bail!(
            "{what}: expected exit {code} and a stderr line `fossa: error: ...{needle}...`, got {}",
            out.describe()
        );
    }
    Ok(())
}

/// Fails with a clear message when a tool the test drives is not installed
/// (`./test.sh` installs them).
pub fn require_tool(name: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{}", not_installed(name));
    }
    Ok(())
}

/// Polls `cond` every few milliseconds until it returns true; fails naming `what` after
/// `timeout`.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Spawns `cmd`, a long-running fossa verb (`keeper`, `node`), with stdout and stderr in the
/// file `log`, and waits (30 s) until it writes its first status file `status`; fails with
/// the log if it exits first. On failure the process is killed and reaped.
pub(crate) fn spawn_until_status(
    cmd: &mut Command,
    log: &std::path::Path,
    status: &std::path::Path,
    what: &str,
) -> Result<std::process::Child> {
    let file = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let mut child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    let waited = wait_until(Duration::from_secs(30), &format!("{what} to run"), || {
        if let Some(st) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{what} exited with {st}: {text}");
        }
        Ok(status.is_file())
    });
    if let Err(e) = waited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}
