//! A real mount through the `fossa` binary: daemon start, file operations through the kernel,
//! commands through the control socket, unmount. Needs FUSE (fusermount3) and the fs core.
#![allow(clippy::unwrap_used, missing_docs)]
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Lazily unmounts whatever is left at the mount point, even when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).output();
    }
}

fn fossa(home: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fossa"))
        .env_remove("FOSSA_HOME")
        .env_remove("FOSSA_PASSPHRASE")
        .arg("--home")
        .arg(home)
        .arg("--key-file")
        .arg(key)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn json(o: Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}

#[test]
fn daemon_mount_serves_files_and_control_requests() {
    let d = tempfile::tempdir().unwrap();
    let (home, key, mnt) = (d.path().join("h"), d.path().join("k"), d.path().join("m"));
    std::fs::create_dir(&mnt).unwrap();
    let _guard = Unmount(mnt.clone());
    ok(fossa(&home, &key, &["init"]));
    let m = mnt.to_str().unwrap();
    ok(fossa(&home, &key, &["mount", m, "--daemon"]));

    std::fs::write(mnt.join("a"), b"hello").unwrap();
    assert_eq!(std::fs::read(mnt.join("a")).unwrap(), b"hello");
    std::fs::hard_link(mnt.join("a"), mnt.join("b")).unwrap();
    assert_eq!(std::fs::metadata(mnt.join("a")).unwrap().nlink(), 2);
    std::fs::remove_file(mnt.join("b")).unwrap();
    // TTL 0 for linked files: the count is fresh right after the unlink.
    assert_eq!(std::fs::metadata(mnt.join("a")).unwrap().nlink(), 1);
    std::fs::create_dir(mnt.join("dir")).unwrap();
    for i in 0..200 {
        std::fs::write(mnt.join(format!("dir/f{i}")), b"").unwrap();
    }
    assert_eq!(std::fs::read_dir(mnt.join("dir")).unwrap().count(), 200);
    std::fs::rename(mnt.join("a"), mnt.join("dir/a")).unwrap();
    assert!(!mnt.join("a").exists());

    let st = json(fossa(&home, &key, &["status", "--json"]));
    assert_eq!(st["mounted"], true);
    assert_eq!(st["mountpoint"], m);
    assert!(st["files"].as_u64().unwrap() >= 201, "{st}");
    assert_eq!(ok(fossa(&home, &key, &["snapshot", "s1"])).trim(), "s1");
    let list = json(fossa(&home, &key, &["snapshot", "list", "--json"]));
    assert_eq!(list[0]["name"], "s1");

    ok(fossa(&home, &key, &["umount", m]));
    let st = json(fossa(&home, &key, &["status", "--json"]));
    assert_eq!(st["mounted"], false);
    assert_eq!(st["snapshots"], 1);
}

/// Waits until `mnt` is (or is no longer) a mount point.
fn wait_mounted(mnt: &Path, want: bool) {
    let m = mnt.to_str().unwrap();
    for _ in 0..300 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mounted = info.lines().any(|l| l.split(' ').nth(4) == Some(m));
        if mounted == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{m}: mounted is not {want}");
}

#[test]
fn foreground_mount_auto_inits_and_stops_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let (home, mnt) = (d.path().join("h"), d.path().join("m"));
    std::fs::create_dir(&mnt).unwrap();
    let _guard = Unmount(mnt.clone());
    let bin = env!("CARGO_BIN_EXE_fossa");
    let spawn = || {
        Command::new(bin)
            .env_remove("FOSSA_HOME")
            .env_remove("FOSSA_PASSPHRASE")
            .arg("--home")
            .arg(&home)
            .arg("mount")
            .arg(&mnt)
            .spawn()
            .unwrap()
    };
    // No volume, no key, no passphrase: the volume is created with a generated key file.
    let mut child = spawn();
    wait_mounted(&mnt, true);
    assert!(home.join("config/volume.keyfile").is_file());
    std::fs::write(mnt.join("f"), b"data").unwrap();
    let killed = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    wait_mounted(&mnt, false);

    // External unmount also ends the process cleanly; the file survived the first session
    // (its metadata: content durability is the block store's and the end-to-end tests' part).
    let mut child = spawn();
    wait_mounted(&mnt, true);
    assert_eq!(std::fs::metadata(mnt.join("f")).unwrap().len(), 4);
    let out = Command::new("fusermount3")
        .arg("-u")
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(child.wait().unwrap().success());
}
