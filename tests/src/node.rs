//! [`SwarmNode`]: a `fossa node` process in its own temporary home, listening on a fixed
//! loopback address; the process is killed (SIGKILL) when the fixture drops.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::process::{Output, assert_success, fossa, run, spawn_until_status, wait_until};

/// A swarm node's home and, once started, its process.
#[derive(Debug)]
pub struct SwarmNode {
    /// Its `--home`.
    pub home: PathBuf,
    /// Where it listens (`IP:PORT`).
    pub listen: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl SwarmNode {
    /// A fresh home with a node key; nothing runs yet.
    pub fn new(listen: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("fossa-node-").tempdir()?;
        let home = dir.path().canonicalize()?.join("home");
        std::fs::create_dir(&home)?;
        let n = SwarmNode {
            home,
            listen: listen.to_owned(),
            child: None,
            _dir: dir,
        };
        assert_success(&n.fossa(&["node", "init"])?, "fossa node init")?;
        Ok(n)
    }

    /// `fossa --home HOME ARGS`, run to completion.
    pub fn fossa(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = fossa(&["--home"])?;
        cmd.arg(&self.home).args(args);
        run(&mut cmd)
    }

    /// Its node id (display form).
    pub fn id(&self) -> Result<String> {
        let out = self.fossa(&["node", "init"])?;
        assert_success(&out, "fossa node init")?;
        Ok(out.stdout.trim().to_owned())
    }

    /// `fossa swarm create [--open]`: the swarm id.
    pub fn create_swarm(&self, open: bool) -> Result<String> {
        let mut args = vec!["swarm", "create"];
        if open {
            args.push("--open");
        }
        let out = self.fossa(&args)?;
        assert_success(&out, "fossa swarm create")?;
        Ok(out.stdout.trim().to_owned())
    }

    /// A join code for `node` (None: an open swarm's), bootstrapping from this node.
    pub fn invite(&self, node: Option<&str>, admit: bool) -> Result<String> {
        let mut args = vec!["swarm", "invite"];
        args.extend(node);
        if admit {
            args.push("--admit");
        }
        args.extend(["--addr", &self.listen]);
        let out = self.fossa(&args)?;
        assert_success(&out, "fossa swarm invite")?;
        Ok(out.stdout.trim().to_owned())
    }

    /// Starts `fossa node [CODE] --listen LISTEN [--bootstrap B]…` and waits until it
    /// writes its first status.
    pub fn start(&mut self, code: Option<&str>, bootstrap: &[&str]) -> Result<()> {
        let mut cmd = fossa(&["--home"])?;
        cmd.arg(&self.home).arg("node");
        cmd.args(code);
        cmd.args(["--listen", &self.listen]);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let (log, status) = (
            self.home.join("node.log"),
            self.home.join("data/node-status.json"),
        );
        self.child = Some(spawn_until_status(&mut cmd, &log, &status, "fossa node")?);
        Ok(())
    }

    /// The node's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("node.log")).unwrap_or_default()
    }

    /// `fossa status --json` on its home.
    pub fn status(&self) -> Result<Value> {
        let out = self.fossa(&["status", "--json"])?;
        assert_success(&out, "fossa status --json")?;
        Ok(serde_json::from_str(&out.stdout)?)
    }

    /// One number of its status.
    pub fn stat(&self, key: &str) -> Result<u64> {
        self.status()?[key]
            .as_u64()
            .with_context(|| format!("no {key} in the node status"))
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> Result<bool> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// SIGTERM, and waits (up to `timeout`) for the process to exit; its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let Some(mut c) = self.child.take() else {
            bail!("the node is not running");
        };
        let pid = c.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let mut exit = None;
        let waited = wait_until(timeout, "the node to exit after SIGTERM", || {
            exit = c.try_wait()?;
            Ok(exit.is_some())
        });
        if waited.is_err() {
            let _ = c.kill();
            let _ = c.wait();
        }
        waited?;
        exit.context("no exit status")
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SwarmNode {
    fn drop(&mut self) {
        self.kill();
    }
}
