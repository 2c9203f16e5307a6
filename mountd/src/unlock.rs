//! What unlocks the volume: a key file (`--key-file`, or the generated `CONFIG/volume.keyfile`)
//! or a passphrase (`FOSSA_PASSPHRASE`, else asked on the terminal with echo off).
use crate::config::{Paths, write_new_file};
use anyhow::{Context, Result, bail};
use fossa_fs::volkey::Unlock;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Environment variable holding the passphrase for unattended use.
pub(crate) const PASSPHRASE_ENV: &str = "FOSSA_PASSPHRASE";

/// The secret the user unlocks the volume with. Zeroed on drop.
pub(crate) enum Secret {
    /// A passphrase (stretched with Argon2id by `volkey`).
    Passphrase(Zeroizing<Vec<u8>>),
    /// The 32 bytes of a key file.
    Key(Zeroizing<[u8; 32]>),
}

impl Secret {
    /// The form `volkey::seal`/`unseal` take.
    pub(crate) fn as_unlock(&self) -> Unlock<'_> {
        match self {
            Secret::Passphrase(p) => Unlock::Passphrase(p),
            Secret::Key(k) => Unlock::KeyFile(k),
        }
    }
}

/// The secret for an existing volume: `--key-file`, else `FOSSA_PASSPHRASE`, else the generated
/// key file if there is one, else a terminal prompt.
pub(crate) fn for_existing(key_file: Option<&Path>, paths: &Paths) -> Result<Secret> {
    if let Some(f) = key_file {
        return read_key_file(f).map(Secret::Key);
    }
    if let Some(p) = passphrase_from_env() {
        return Ok(Secret::Passphrase(p));
    }
    let default = paths.default_key_file();
    if default.exists() {
        return read_key_file(&default).map(Secret::Key);
    }
    prompt("Passphrase: ").map(Secret::Passphrase)
}

/// The secret for a new volume, and the key file created for it if any. `--key-file` is read
/// or created; else `FOSSA_PASSPHRASE`; else, with `make_key_file` (auto-init by `mount`), a new
/// `CONFIG/volume.keyfile`; else a passphrase asked twice on the terminal.
pub(crate) fn for_new(
    key_file: Option<&Path>,
    paths: &Paths,
    make_key_file: bool,
) -> Result<(Secret, Option<PathBuf>)> {
    if let Some(f) = key_file {
        if f.exists() {
            return Ok((Secret::Key(read_key_file(f)?), None));
        }
        return Ok((Secret::Key(create_key_file(f)?), Some(f.to_owned())));
    }
    if let Some(p) = passphrase_from_env() {
        if p.is_empty() {
            bail!("empty passphrase ({PASSPHRASE_ENV} is set but empty)");
        }
        return Ok((Secret::Passphrase(p), None));
    }
    if make_key_file {
        let f = paths.default_key_file();
        return Ok((Secret::Key(create_key_file(&f)?), Some(f)));
    }
    let p = prompt("New passphrase: ")?;
    if *p != *prompt("Repeat passphrase: ")? {
        bail!("the passphrases do not match");
    }
    Ok((Secret::Passphrase(p), None))
}

fn passphrase_from_env() -> Option<Zeroizing<Vec<u8>>> {
    std::env::var_os(PASSPHRASE_ENV).map(|v| {
        use std::os::unix::ffi::OsStringExt;
        Zeroizing::new(v.into_vec())
    })
}

/// Reads a key file: 64 hex digits (surrounding whitespace ignored).
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("key file {}", path.display()))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), &mut key[..])
        .map_err(|_| anyhow::anyhow!("{}: not a key file (64 hex digits)", path.display()))?;
    Ok(key)
}

/// Creates a key file of 32 random bytes as hex, mode 0600; fails if it exists.
pub(crate) fn create_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut key[..]).map_err(|e| anyhow::anyhow!("random bytes: {e}"))?;
    let mut text = Zeroizing::new(hex::encode(&key[..]));
    text.push('\n');
    write_new_file(path, text.as_bytes(), 0o600)?;
    Ok(key)
}

/// Asks for a passphrase on the controlling terminal with echo off.
fn prompt(question: &str) -> Result<Zeroizing<Vec<u8>>> {
    let no_tty = || {
        anyhow::anyhow!(
            "no passphrase: set {PASSPHRASE_ENV} or use --key-file (no terminal to ask on)"
        )
    };
    let mut tty = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_tty())?;
    let saved = rustix::termios::tcgetattr(&tty).map_err(|_| no_tty())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    let now = rustix::termios::OptionalActions::Now;
    rustix::termios::tcsetattr(&tty, now, &quiet)?;
    let answer = read_answer(&mut tty, question);
    // Restore echo whatever happened while reading.
    rustix::termios::tcsetattr(&tty, now, &saved)?;
    let mut line = answer?;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    if line.is_empty() {
        bail!("empty passphrase");
    }
    Ok(line)
}

fn read_answer(tty: &mut fs::File, question: &str) -> Result<Zeroizing<Vec<u8>>> {
    tty.write_all(question.as_bytes())?;
    let mut line = Zeroizing::new(Vec::new());
    BufReader::new(&*tty).read_until(b'\n', &mut line)?;
    tty.write_all(b"\n")?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("k");
        let key = create_key_file(&f).unwrap();
        let mode = fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(&f).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert_eq!(*read_key_file(&f).unwrap(), *key);
        // Never overwrite an existing key.
        assert!(create_key_file(&f).is_err());
    }

    #[test]
    fn bad_key_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("k");
        fs::write(&f, "abcd\n").unwrap();
        let e = read_key_file(&f).unwrap_err().to_string();
        assert!(e.contains("not a key file"), "{e}");
    }

    #[test]
    fn new_volume_with_key_file_creates_it_once() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::resolve_with(Some(d.path()), |_| None).unwrap();
        paths.create_dirs().unwrap();
        let f = d.path().join("k");
        let (s1, made) = for_new(Some(&f), &paths, false).unwrap();
        assert_eq!(made.as_deref(), Some(f.as_path()));
        let (s2, made) = for_new(Some(&f), &paths, false).unwrap();
        assert!(made.is_none());
        match (s1, s2) {
            (Secret::Key(a), Secret::Key(b)) => assert_eq!(*a, *b),
            _ => panic!("expected key secrets"),
        }
    }
}
