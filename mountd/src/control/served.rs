//! What a mounted daemon adds to a request's context, and the checks of requests that need it.
use crate::sync::SyncDaemon;
use anyhow::{Result, anyhow};
use std::path::PathBuf;
use std::sync::Arc;

/// The message for requests that need the daemon (docs/cli.md).
pub(crate) const NOT_MOUNTED: &str = "not mounted: run `fossa mount` first";

/// What a mounted daemon adds to a request's context.
pub(crate) struct Served {
    /// Where the volume is mounted.
    pub(crate) mountpoint: PathBuf,
    /// The running sync node.
    pub(crate) sync: Arc<SyncDaemon>,
}

impl Served {
    /// The volume-relative form of `path`, absolute inside the mount.
    pub(crate) fn relative<'a>(&self, path: &'a str) -> Result<&'a str> {
        std::path::Path::new(path)
            .strip_prefix(&self.mountpoint)
            .map_err(|_| {
                anyhow!(
                    "{path} is not in the volume mounted at {}",
                    self.mountpoint.display()
                )
            })?
            .to_str()
            .ok_or_else(|| anyhow!("{path}: not UTF-8"))
    }
}

/// The daemon's context, or [`NOT_MOUNTED`].
pub(crate) fn served_or_fail(served: Option<&Served>) -> Result<&Served> {
    served.ok_or_else(|| anyhow!(NOT_MOUNTED))
}
