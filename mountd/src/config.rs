//! Where a volume lives (XDG directories or `--home`) and its `config.json`.
//!
//! Layout (docs/cli.md): `CONFIG/config.json`, `CONFIG/volume.keyfile` (generated key, if any),
//! `DATA/volume.key`, `DATA/blocks/`, `DATA/meta.redb`, `DATA/lock`, `DATA/control.sock`,
//! `DATA/fossa.log`, `DATA/device.key`, `DATA/members`.
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version of the on-disk volume layout written by this build.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The two directories of a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Paths {
    /// Configuration directory (`CONFIG`).
    pub(crate) config: PathBuf,
    /// Data directory (`DATA`).
    pub(crate) data: PathBuf,
}

impl Paths {
    /// Resolves the directories from `--home`, else `$XDG_CONFIG_HOME`/`$XDG_DATA_HOME`,
    /// else `$HOME/.config` and `$HOME/.local/share`.
    pub(crate) fn resolve(home: Option<&Path>) -> Result<Self> {
        let env = |k: &str| std::env::var_os(k);
        Self::resolve_with(home, env)
    }

    /// [`Paths::resolve`] with the environment passed in (for tests).
    pub(crate) fn resolve_with(
        home: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self> {
        if let Some(h) = home {
            let h = std::path::absolute(h).with_context(|| format!("{}", h.display()))?;
            return Ok(Paths {
                config: h.join("config"),
                data: h.join("data"),
            });
        }
        // XDG: relative values are invalid and must be ignored.
        let xdg = |k: &str| env(k).map(PathBuf::from).filter(|p| p.is_absolute());
        let user_home = env("HOME").map(PathBuf::from).filter(|p| p.is_absolute());
        let pick = |xdg_var: &str, fallback: &[&str]| -> Result<PathBuf> {
            if let Some(p) = xdg(xdg_var) {
                return Ok(p.join("fossa"));
            }
            match &user_home {
                Some(h) => Ok(fallback
                    .iter()
                    .fold(h.clone(), |p, c| p.join(c))
                    .join("fossa")),
                None => bail!("cannot find the home directory: set HOME or use --home"),
            }
        };
        Ok(Paths {
            config: pick("XDG_CONFIG_HOME", &[".config"])?,
            data: pick("XDG_DATA_HOME", &[".local", "share"])?,
        })
    }

    /// `CONFIG/config.json`.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.config.join("config.json")
    }
    /// `CONFIG/volume.keyfile`: the key file made when a volume is created without a key.
    pub(crate) fn default_key_file(&self) -> PathBuf {
        self.config.join("volume.keyfile")
    }
    /// `DATA/volume.key`: the sealed volume secret.
    pub(crate) fn sealed_key(&self) -> PathBuf {
        self.data.join("volume.key")
    }
    /// `DATA/blocks`.
    pub(crate) fn blocks(&self) -> PathBuf {
        self.data.join("blocks")
    }
    /// `DATA/meta.redb`.
    pub(crate) fn meta(&self) -> PathBuf {
        self.data.join("meta.redb")
    }
    /// `DATA/lock`.
    pub(crate) fn lock(&self) -> PathBuf {
        self.data.join("lock")
    }
    /// `DATA/control.sock`.
    pub(crate) fn control_socket(&self) -> PathBuf {
        self.data.join("control.sock")
    }
    /// `DATA/fossa.log`.
    pub(crate) fn log(&self) -> PathBuf {
        self.data.join("fossa.log")
    }
    /// `DATA/device.key`: this device's Ed25519 key (PKCS#8, mode 0600).
    pub(crate) fn device_key(&self) -> PathBuf {
        self.data.join("device.key")
    }
    /// `DATA/members`: the signed member list.
    pub(crate) fn members(&self) -> PathBuf {
        self.data.join("members")
    }

    /// Whether a volume has been created here.
    pub(crate) fn volume_exists(&self) -> bool {
        self.sealed_key().exists() || self.config_file().exists()
    }

    /// Creates both directories, private to the user.
    pub(crate) fn create_dirs(&self) -> Result<()> {
        for d in [&self.config, &self.data] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(())
    }
}

/// The contents of `config.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Config {
    /// Volume id, 32 hex digits (also stored in `volume.key`).
    pub(crate) volume_id: String,
    /// Layout version ([`FORMAT_VERSION`]).
    pub(crate) format_version: u32,
}

impl Config {
    /// The volume id as bytes.
    pub(crate) fn volume_bytes(&self) -> Result<[u8; 16]> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(&self.volume_id, &mut id)
            .with_context(|| format!("bad volume id {:?} in config.json", self.volume_id))?;
        Ok(id)
    }

    /// Reads `config.json`.
    pub(crate) fn load(paths: &Paths) -> Result<Self> {
        let p = paths.config_file();
        let bytes = fs::read(&p).with_context(|| format!("no volume: {}", p.display()))?;
        let c: Config =
            serde_json::from_slice(&bytes).with_context(|| format!("{}", p.display()))?;
        if c.format_version > FORMAT_VERSION {
            bail!(
                "{}: format version {} is newer than this fossa ({FORMAT_VERSION})",
                p.display(),
                c.format_version
            );
        }
        Ok(c)
    }

    /// Writes `config.json` (new file; fails if one exists).
    pub(crate) fn create(&self, paths: &Paths) -> Result<()> {
        let p = paths.config_file();
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        write_new_file(&p, &json, 0o644)
    }
}

/// Writes a new file durably with `mode`; fails if it exists.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some(dir) = path.parent() {
        // The directory entry must be durable too, or a crash can lose the new file.
        fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).map(OsString::from)
    }

    #[test]
    fn home_option_wins() {
        let p = Paths::resolve_with(Some(Path::new("/h")), env(&[("HOME", "/u")])).unwrap();
        assert_eq!(p.config, Path::new("/h/config"));
        assert_eq!(p.data, Path::new("/h/data"));
        assert_eq!(p.lock(), Path::new("/h/data/lock"));
        assert_eq!(p.config_file(), Path::new("/h/config/config.json"));
    }

    #[test]
    fn xdg_then_home_fallback() {
        let p = Paths::resolve_with(
            None,
            env(&[
                ("HOME", "/u"),
                ("XDG_CONFIG_HOME", "/c"),
                ("XDG_DATA_HOME", "rel"),
            ]),
        )
        .unwrap();
        assert_eq!(p.config, Path::new("/c/fossa"));
        // A relative XDG value is ignored.
        assert_eq!(p.data, Path::new("/u/.local/share/fossa"));
        let p = Paths::resolve_with(None, env(&[("HOME", "/u")])).unwrap();
        assert_eq!(p.config, Path::new("/u/.config/fossa"));
        assert!(Paths::resolve_with(None, env(&[])).is_err());
    }

    #[test]
    fn config_round_trip_and_newer_version_refused() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::resolve_with(Some(d.path()), env(&[])).unwrap();
        paths.create_dirs().unwrap();
        assert!(!paths.volume_exists());
        let c = Config {
            volume_id: "ab".repeat(16),
            format_version: FORMAT_VERSION,
        };
        c.create(&paths).unwrap();
        assert!(paths.volume_exists());
        assert_eq!(Config::load(&paths).unwrap(), c);
        assert!(c.create(&paths).is_err());
        fs::write(
            paths.config_file(),
            br#"{"volume_id":"00","format_version":99}"#,
        )
        .unwrap();
        assert!(Config::load(&paths).is_err());
    }
}
