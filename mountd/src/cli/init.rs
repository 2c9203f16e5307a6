//! `fossa init`, and the automatic init done by `fossa mount` on a fresh home.
use super::Ctx;
use crate::unlock;
use crate::volume;
use anyhow::{Result, bail};
use std::path::Path;

/// `fossa init [--key-file F]`: creates the volume and prints its id.
pub(crate) fn init(ctx: &Ctx, name: Option<&str>) -> Result<()> {
    let id = create(ctx, false, name)?;
    println!("{id}");
    Ok(())
}

/// Creates the volume. With `make_key_file` (auto-init by `mount`) and neither a passphrase
/// nor a key file given, a new key file is made at `CONFIG/volume.keyfile`.
pub(crate) fn create(ctx: &Ctx, make_key_file: bool, name: Option<&str>) -> Result<String> {
    if ctx.paths.volume_exists() {
        bail!("a volume already exists in {}", ctx.paths.data.display());
    }
    ctx.paths.create_dirs()?;
    let (secret, made) = unlock::for_new(ctx.key_file.as_deref(), &ctx.paths, make_key_file)?;
    let id = volume::create(&ctx.paths, &secret, name)?;
    if let Some(f) = made {
        announce_key_file(&f);
    }
    tracing::info!(volume = %id, "created volume in {}", ctx.paths.data.display());
    Ok(id)
}

pub(crate) fn announce_key_file(f: &Path) {
    // stderr: stdout of `init` is exactly the volume id, for scripts.
    crate::logging::stderr_line(&format!(
        "fossa: created key file {} (back it up: without it the volume cannot be opened)",
        f.display()
    ));
}
