//! [`Keeper`]: a `fossa keeper` storage peer in its own temporary home, listening on a fixed
//! loopback address; the process is killed (SIGKILL) when the fixture drops.

use std::path::PathBuf;
use std::process::Child;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::process::{fossa, spawn_until_status};

/// A running (or killed) storage peer.
#[derive(Debug)]
pub struct Keeper {
    /// Its `--home`.
    pub home: PathBuf,
    /// Where it listens.
    pub listen: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Keeper {
    /// `fossa keeper CODE --quota QUOTA --listen LISTEN`, waiting until it has joined.
    pub fn join(code: &str, quota: &str, listen: &str, env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("fossa-keeper-").tempdir()?;
        let home = dir.path().canonicalize()?.join("home");
        std::fs::create_dir(&home)?;
        let mut k = Keeper {
            home,
            listen: listen.to_owned(),
            child: None,
            _dir: dir,
        };
        k.start(Some(code), quota, env)?;
        Ok(k)
    }

    /// Starts the process (with a code the first time, to resume without).
    pub fn start(&mut self, code: Option<&str>, quota: &str, env: &[(&str, &str)]) -> Result<()> {
        let mut cmd = fossa(&["--home"])?;
        cmd.arg(&self.home).arg("keeper");
        if let Some(c) = code {
            cmd.arg(c);
        }
        cmd.args(["--quota", quota, "--listen", &self.listen]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (log, status) = (
            self.home.join("keeper.log"),
            self.home.join("data/keeper-status.json"),
        );
        self.child = Some(spawn_until_status(&mut cmd, &log, &status, "fossa keeper")?);
        Ok(())
    }

    /// The keeper's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("keeper.log")).unwrap_or_default()
    }

    /// Its `keeper-status.json`.
    pub fn status(&self) -> Result<Value> {
        let p = self.home.join("data/keeper-status.json");
        let b = std::fs::read(&p).with_context(|| format!("{}", p.display()))?;
        Ok(serde_json::from_slice(&b)?)
    }

    /// Blocks it holds (from its status file).
    pub fn blocks(&self) -> Result<u64> {
        self.status()?["blocks"]
            .as_u64()
            .context("keeper status has no blocks")
    }

    /// Its device id.
    pub fn id(&self) -> Result<String> {
        self.status()?["device_id"]
            .as_str()
            .map(str::to_owned)
            .context("keeper status has no device_id")
    }

    /// SIGKILL, then delete its data directory.
    pub fn kill_and_wipe(&mut self) -> Result<()> {
        self.kill();
        std::fs::remove_dir_all(self.home.join("data"))?;
        Ok(())
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every file under its home (for the no-plaintext check).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.home.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.kill();
    }
}
