//! Creating and opening a volume: the `DATA/lock` flock, the sealed key, the block store and
//! the `Fs` core.
use crate::config::{Config, FORMAT_VERSION, Paths, write_new_file};
use crate::sync::{Identity, NetSource, SyncParts};
use crate::unlock::Secret;
use anyhow::{Context, Result, anyhow, bail};
use blockstore::{BlockSource, BlockStore, StoreError, StoreOptions};
use fossa_fs::crypto::{VolumeSecret, random_array};
use fossa_fs::volkey::{self, KdfParams};
use fossa_fs::{Caller, Fs, FsError, FsOptions};
use std::fs::{File, OpenOptions};
use std::io;
use std::sync::Arc;

/// The message for a volume whose lock another process holds (docs/cli.md).
pub(crate) const IN_USE: &str = "volume is in use by another fossa process";

/// The exclusive lock on `DATA/lock`; released when dropped or when the process exits.
#[derive(Debug)]
pub(crate) struct VolumeLock {
    _file: File,
}

impl VolumeLock {
    /// Takes the lock without waiting; `Ok(None)` if another process holds it.
    pub(crate) fn try_acquire(paths: &Paths) -> Result<Option<Self>> {
        let p = paths.lock();
        // Opened with O_CLOEXEC by std: helpers we spawn (fusermount3) must not inherit it.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .with_context(|| format!("{}", p.display()))?;
        let op = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        match rustix::fs::flock(&file, op) {
            Ok(()) => Ok(Some(VolumeLock { _file: file })),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(io::Error::from(e)).with_context(|| format!("{}", p.display())),
        }
    }

    /// Takes the lock or fails with [`IN_USE`].
    pub(crate) fn acquire(paths: &Paths) -> Result<Self> {
        match Self::try_acquire(paths)? {
            Some(l) => Ok(l),
            None => bail!(IN_USE),
        }
    }
}

/// Creates a new volume: directories, sealed secret, `config.json`, device key, and this device
/// as the first member (named `name`, default host name and short device id). Returns the volume id (hex).
///
/// The metadata database is created by the first `Fs::open` (at mount), so this needs no more
/// of the core than the key sealing.
pub(crate) fn create(paths: &Paths, secret: &Secret, name: Option<&str>) -> Result<String> {
    let id: [u8; 16] = random_array()?;
    let vs = VolumeSecret::generate()?;
    let hex_id = create_with(paths, secret, id, &vs)?;
    Identity::load_or_create(paths, id, name)?;
    Ok(hex_id)
}

/// Creates the volume `id` with secret `vs` (a new one, or one joined by invitation): sealed
/// secret and `config.json`. The member list is the caller's business.
pub(crate) fn create_with(
    paths: &Paths,
    secret: &Secret,
    id: [u8; 16],
    vs: &VolumeSecret,
) -> Result<String> {
    if paths.volume_exists() {
        bail!("a volume already exists in {}", paths.data.display());
    }
    paths.create_dirs()?;
    let _lock = VolumeLock::acquire(paths)?;
    let sealed = volkey::seal(vs, &id, &secret.as_unlock(), KdfParams::default())?;
    write_new_file(&paths.sealed_key(), &sealed, 0o600)?;
    std::fs::create_dir_all(paths.blocks())
        .with_context(|| format!("{}", paths.blocks().display()))?;
    let volume_id = hex::encode(id);
    Config {
        volume_id: volume_id.clone(),
        format_version: FORMAT_VERSION,
    }
    .create(paths)?;
    Ok(volume_id)
}

/// Reads `volume.key` and unseals the volume secret (checking it matches `config.json`).
pub(crate) fn unseal(paths: &Paths, secret: &Secret) -> Result<(Config, VolumeSecret)> {
    let config = Config::load(paths)?;
    let p = paths.sealed_key();
    let sealed = std::fs::read(&p).with_context(|| format!("{}", p.display()))?;
    if hex::encode(volkey::volume_id(&sealed)?) != config.volume_id {
        bail!(
            "{} and {} belong to different volumes",
            paths.config_file().display(),
            p.display()
        );
    }
    let vs = volkey::unseal(&sealed, &secret.as_unlock())?;
    Ok((config, vs))
}

/// An open volume: the lock, the store, the filesystem core and its sync identity.
pub(crate) struct Volume {
    /// The volume's configuration.
    pub(crate) config: Config,
    /// The local block store.
    pub(crate) store: Arc<BlockStore>,
    /// The filesystem core.
    pub(crate) fs: Arc<Fs>,
    /// Device key, members, network block source.
    pub(crate) sync: SyncParts,
    /// Where the volume lives.
    pub(crate) paths: Paths,
    _lock: VolumeLock,
}

impl Volume {
    /// Opens the volume under `lock`: unseals, opens the store and the metadata database. A
    /// damaged database fails with a message that names `fossa fsck --repair`.
    pub(crate) fn open(
        paths: &Paths,
        lock: VolumeLock,
        secret: &Secret,
        read_only: bool,
    ) -> Result<Self> {
        let (config, vs) = unseal(paths, secret)?;
        let store =
            BlockStore::open(&paths.blocks(), StoreOptions::default()).map_err(store_hint)?;
        let store = Arc::new(store);
        let net_source = Arc::new(NetSource::new(store.clone()));
        let opts = FsOptions {
            read_only,
            ..FsOptions::default()
        };
        let fs = open_fs(paths, &store, &net_source, &vs, opts).map_err(fs_hint)?;
        Self::assemble(paths, lock, (config, vs), (store, net_source), fs)
    }

    /// The rest of an open once the store and the `Fs` are open.
    pub(crate) fn assemble(
        paths: &Paths,
        lock: VolumeLock,
        (config, vs): (Config, VolumeSecret),
        (store, net_source): (Arc<BlockStore>, Arc<NetSource>),
        fs: Fs,
    ) -> Result<Self> {
        let sync = SyncParts::new(paths, config.volume_bytes()?, vs, net_source)?;
        sync.enable(&fs)?;
        Ok(Volume {
            config,
            store,
            fs: Arc::new(fs),
            sync,
            paths: paths.clone(),
            _lock: lock,
        })
    }
}

/// A store open error, with the way out when the index is damaged.
fn store_hint(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::IndexDamaged { .. } => {
            anyhow!("{e}; run `fossa fsck --repair` to rebuild it from the data files")
        }
        other => other.into(),
    }
}

/// An `Fs` open error, with the way out when the metadata database is damaged.
fn fs_hint(e: FsError) -> anyhow::Error {
    match e {
        FsError::MetaDamaged { .. } => anyhow!(
            "{e}; run `fossa fsck --repair` to recover it from the latest snapshot or the other devices"
        ),
        other => other.into(),
    }
}

/// The owner of a new volume's root directory: the user running fossa.
pub(crate) fn owner() -> Caller {
    Caller {
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        umask: 0,
    }
}

/// Opens the metadata database of the volume at `paths` over `store`.
pub(crate) fn open_fs(
    paths: &Paths,
    store: &Arc<BlockStore>,
    net_source: &Arc<NetSource>,
    vs: &VolumeSecret,
    opts: FsOptions,
) -> Result<Fs, FsError> {
    let source: Arc<dyn BlockSource> = net_source.clone();
    Fs::open(store.clone(), source, &paths.meta(), vs, owner(), opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_between_open_files() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::resolve_with(Some(d.path()), |_| None).unwrap();
        paths.create_dirs().unwrap();
        let held = VolumeLock::acquire(&paths).unwrap();
        // flock locks belong to the open file description, so a second open conflicts.
        assert!(VolumeLock::try_acquire(&paths).unwrap().is_none());
        let e = VolumeLock::acquire(&paths).unwrap_err().to_string();
        assert_eq!(e, IN_USE);
        drop(held);
        assert!(VolumeLock::try_acquire(&paths).unwrap().is_some());
    }
}
