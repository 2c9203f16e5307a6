//! The `fossa` binary's documented errors (docs/cli.md) for the paths that need no mount.
#![allow(clippy::unwrap_used, missing_docs)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn fossa(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fossa"));
    c.env_remove("FOSSA_HOME")
        .env_remove("FOSSA_PASSPHRASE")
        .env("RUST_LOG", "error")
        .arg("--home")
        .arg(home)
        .args(args);
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    fossa(home, args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn init_with_key_file_then_second_init_fails() {
    let d = tempfile::tempdir().unwrap();
    let (home, key) = (d.path().join("h"), d.path().join("k"));
    let o = run(&home, &["init", "--key-file", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = String::from_utf8(o.stdout).unwrap();
    assert_eq!(id.trim().len(), 32, "{id}");
    assert!(id.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(home.join("data/volume.key").is_file());
    assert!(home.join("data/blocks").is_dir());
    let config = std::fs::read_to_string(home.join("config/config.json")).unwrap();
    assert!(config.contains(id.trim()), "{config}");

    let o = run(&home, &["init", "--key-file", key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("fossa: error: a volume already exists"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn mount_on_a_missing_dir_fails_with_the_documented_message() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("h");
    let missing = d.path().join("mnt");
    let o = run(&home, &["mount", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("fossa: error: {}: no such directory\n", missing.display())
    );
    // The check comes before any volume is created.
    assert!(!home.join("data/volume.key").exists());
}

#[test]
fn mount_on_a_mount_point_fails() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&d.path().join("h"), &["mount", "/"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "fossa: error: / is already a mount point\n");
}

#[test]
fn wrong_key_file_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (home, key, wrong) = (d.path().join("h"), d.path().join("k"), d.path().join("w"));
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    assert!(
        run(&home, &["init", "--key-file", key.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        run(
            &d.path().join("h2"),
            &["init", "--key-file", wrong.to_str().unwrap()]
        )
        .status
        .success()
    );
    let wrong = wrong.to_str().unwrap();
    for args in [
        vec!["mount", mnt.to_str().unwrap(), "--key-file", wrong],
        vec![
            "mount",
            mnt.to_str().unwrap(),
            "--daemon",
            "--key-file",
            wrong,
        ],
        vec!["status", "--key-file", wrong],
    ] {
        let o = run(&home, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&o),
            "fossa: error: wrong passphrase or key file\n",
            "{args:?}"
        );
    }
    let o = run(&home, &["fsck", "--key-file", wrong]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn wrong_passphrase_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("h");
    let o = fossa(&home, &["init"])
        .env("FOSSA_PASSPHRASE", "right")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = fossa(&home, &["status"])
        .env("FOSSA_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "fossa: error: wrong passphrase or key file\n");
}

#[test]
fn umount_of_a_plain_dir_fails() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&d.path().join("h"), &["umount", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "fossa: error: {} is not a fossa mount\n",
            d.path().display()
        )
    );
}

#[test]
fn commands_without_a_volume_say_so() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&d.path().join("h"), &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("fossa: error: no volume in "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn empty_passphrase_is_refused_for_a_new_volume() {
    let d = tempfile::tempdir().unwrap();
    let (home, mnt) = (d.path().join("h"), d.path().join("m"));
    std::fs::create_dir(&mnt).unwrap();
    for args in [vec!["init"], vec!["mount", mnt.to_str().unwrap()]] {
        let o = fossa(&home, &args)
            .env("FOSSA_PASSPHRASE", "")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("fossa: error: empty passphrase"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!home.join("data/volume.key").exists(), "{args:?}");
    }
}

#[test]
fn mount_on_a_non_empty_dir_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (home, mnt) = (d.path().join("h"), d.path().join("m"));
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(mnt.join("mine"), b"x").unwrap();
    for extra in [&[][..], &["--daemon"]] {
        let mut args = vec!["mount", mnt.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = run(&home, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&o),
            format!(
                "fossa: error: {} is not empty (a mount would hide its files; --nonempty \
                 mounts anyway)\n",
                mnt.display()
            ),
            "{args:?}"
        );
    }
    // Refused before anything is created.
    assert!(!home.join("data/volume.key").exists());
}

#[test]
fn argument_errors_exit_1_and_help_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("h");
    for args in [
        vec!["mount"],
        vec!["--no-such-flag"],
        vec!["redundancy", "/x", "99"],
        vec![],
    ] {
        let o = run(&home, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("fossa: error: "),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    for args in [vec!["--help"], vec!["mount", "--help"], vec!["--version"]] {
        let o = run(&home, &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!o.stdout.is_empty(), "{args:?}");
    }
}
