//! [`Device`]: one member device of a synced volume — a [`Volume`] fixture of its own (home,
//! key file, mount point, foreground daemon) that listens on a fixed loopback address and
//! calls its peers there.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::process::{Output, assert_success, wait_until};
use crate::volume::Volume;

/// How long a sync-level condition (a file arriving, a peer connecting) may take.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// A member device on `127.0.0.x:port`.
#[derive(Debug)]
pub struct Device {
    /// The volume fixture (home, key file, mount point, daemon).
    pub vol: Volume,
    /// The device's name in the member list.
    pub name: String,
    /// Where its daemon listens (`127.0.0.x:port`).
    pub listen: String,
    peers: Vec<String>,
}

impl Device {
    /// A device that creates a new volume (`fossa init --name NAME`), not mounted.
    pub fn init(name: &str, listen: &str) -> Result<Self> {
        let dev = Self::fresh(name, listen)?;
        let out = dev.vol.fossa(&["init", "--name", name])?;
        assert_success(&out, "fossa init")?;
        Ok(dev)
    }

    /// A device with an empty home, for `fossa join`.
    pub fn fresh(name: &str, listen: &str) -> Result<Self> {
        Ok(Self {
            vol: Volume::uninitialised()?,
            name: name.to_owned(),
            listen: listen.to_owned(),
            peers: Vec::new(),
        })
    }

    /// Adds an address its daemon calls at every later mount.
    pub fn add_peer(&mut self, addr: &str) {
        if !self.peers.iter().any(|p| p == addr) {
            self.peers.push(addr.to_owned());
        }
    }

    /// Mounts with `--listen` and every `--peer`, the daemon owned by the fixture.
    pub fn mount(&mut self) -> Result<()> {
        self.mount_with(&[])
    }

    /// [`Device::mount`] with more `fossa mount` arguments.
    pub fn mount_with(&mut self, extra: &[&str]) -> Result<()> {
        let mut args = vec!["--listen".to_owned(), self.listen.clone()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        for p in &self.peers {
            args.push("--peer".to_owned());
            args.push(p.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.vol.mount_with(&args)
    }

    /// `fossa umount`, waiting for the daemon to exit cleanly.
    pub fn stop(&mut self) -> Result<()> {
        self.vol.umount()
    }

    /// `fossa invite`: the code.
    pub fn invite(&self) -> Result<String> {
        let out = self.vol.fossa(&["invite", "--expires", "10m"])?;
        assert_success(&out, "fossa invite")?;
        let code = out.stdout.trim().to_owned();
        if !code.starts_with("FOSSA2-") || code.contains('\n') {
            bail!("fossa invite printed no one-line code: {}", out.describe());
        }
        Ok(code)
    }

    /// `fossa join CODE MNT --name N --listen L` on this fresh home (which mounts in the
    /// background), then unmounts and mounts again under the fixture's control with
    /// `inviter` as a peer.
    pub fn join(&mut self, code: &str, inviter: &str) -> Result<()> {
        let mnt = self.vol.mnt();
        let mnt = mnt.to_str().context("mount point not UTF-8")?;
        let args = [
            "join",
            code,
            mnt,
            "--name",
            &self.name,
            "--listen",
            &self.listen,
        ];
        let out = self.vol.fossa(&args)?;
        assert_success(&out, "fossa join")?;
        if !self.vol.is_mounted()? {
            bail!(
                "fossa join returned but {mnt} is not mounted: {}",
                out.describe()
            );
        }
        let out = self.vol.fossa(&["umount", mnt])?;
        assert_success(&out, "fossa umount after join")?;
        self.add_peer(inviter);
        self.mount()
    }

    /// `fossa ARGS` on this device.
    pub fn fossa(&self, args: &[&str]) -> Result<Output> {
        self.vol.fossa(args)
    }

    /// `fossa status --json`.
    pub fn status(&self) -> Result<Value> {
        let out = self.vol.fossa(&["status", "--json"])?;
        assert_success(&out, "fossa status --json")?;
        serde_json::from_str(&out.stdout).with_context(|| out.describe())
    }

    /// A number from the `sync` object of `status --json`.
    pub fn sync_stat(&self, key: &str) -> Result<u64> {
        let v = self.status()?;
        v["sync"][key]
            .as_u64()
            .with_context(|| format!("status --json has no sync.{key}: {v}"))
    }

    /// `fossa devices --json`.
    pub fn devices(&self) -> Result<Vec<Value>> {
        let out = self.vol.fossa(&["devices", "--json"])?;
        assert_success(&out, "fossa devices --json")?;
        let v: Value = serde_json::from_str(&out.stdout).with_context(|| out.describe())?;
        v.as_array()
            .cloned()
            .context("devices --json is not an array")
    }

    /// This device's id (display form).
    pub fn id(&self) -> Result<String> {
        let v = self.status()?;
        v["sync"]["device_id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("status --json has no sync.device_id: {v}"))
    }

    /// `MNT/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.vol.path(rel)
    }

    /// Waits until `fossa status` shows a live session with each of `others`.
    pub fn wait_connected(&self, others: &[&Device]) -> Result<()> {
        let want: Vec<String> = others.iter().map(|d| d.id()).collect::<Result<_>>()?;
        let what = format!("{} to connect to {} peers", self.name, want.len());
        wait_until(SYNC_TIMEOUT, &what, || {
            let v = self.status()?;
            let live: Vec<&str> = v["sync"]["connected"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            Ok(want.iter().all(|w| live.contains(&w.as_str())))
        })
        .with_context(|| self.vol.log_tail_lines(30))
    }

    /// Waits until `rel` reads as exactly `want` on this device.
    pub fn wait_content(&self, rel: &str, want: &[u8]) -> Result<()> {
        let p = self.path(rel);
        let what = format!("{rel} ({} bytes) to arrive on {}", want.len(), self.name);
        wait_until(SYNC_TIMEOUT, &what, || {
            Ok(std::fs::read(&p).is_ok_and(|b| b == want))
        })
        .with_context(|| self.vol.log_tail_lines(30))
    }

    /// Waits until this device holds every block its files need.
    pub fn wait_all_blocks(&self) -> Result<()> {
        let what = format!("{} to hold every block", self.name);
        wait_until(Duration::from_secs(120), &what, || {
            Ok(self.sync_stat("blocks_missing")? == 0)
        })
        .with_context(|| self.vol.log_tail_lines(30))
    }
}
