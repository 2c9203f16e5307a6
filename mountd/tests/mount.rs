//! A real mount through the `fossa` binary: daemon start, file operations through the kernel,
//! commands through the control socket, unmount. Needs FUSE (fusermount3) and the fs core.
#![allow(clippy::unwrap_used, missing_docs)]
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// Cleans up whatever a test leaves, also when it panics: kills the foreground daemon (our
/// child) or the `--daemon` process serving `home` (found by its command line, which names our
/// unique temporary home), then detaches the mount (`fusermount3 -uz`, else `umount -l`).
struct Cleanup {
    mnt: PathBuf,
    home: PathBuf,
    child: Option<Child>,
}

impl Cleanup {
    fn new(mnt: &Path, home: &Path) -> Self {
        Self {
            mnt: mnt.to_owned(),
            home: home.to_owned(),
            child: None,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in daemons_of(&self.home) {
            let _ = Command::new("kill").arg("-KILL").arg(pid).status();
        }
        if Command::new("fusermount3")
            .arg("-uz")
            .arg(&self.mnt)
            .output()
            .map_or(true, |o| !o.status.success())
        {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).output();
        }
    }
}

/// Pids of `fossa` processes whose command line contains `home`.
fn daemons_of(home: &Path) -> Vec<String> {
    let needle = home.as_os_str().as_encoded_bytes();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let ours = cmd.windows(needle.len()).any(|w| w == needle);
            (ours && pid != std::process::id().to_string()).then_some(pid)
        })
        .collect()
}

/// Fails with a clear message unless `fusermount3` (package fuse3) is installed.
fn require_fusermount3() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("fusermount3").is_file()));
    assert!(
        found,
        "`fusermount3` is not installed (package fuse3; ./test.sh installs it)"
    );
}

fn fossa(home: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fossa"))
        .env_remove("FOSSA_HOME")
        .env_remove("FOSSA_PASSPHRASE")
        .env("FOSSA_DISCOVERY", "off")
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
    require_fusermount3();
    let _guard = Cleanup::new(&mnt, &home);
    ok(fossa(&home, &key, &["init"]));
    let m = mnt.to_str().unwrap();
    ok(fossa(
        &home,
        &key,
        &["mount", m, "--daemon", "--listen", "127.0.0.1:0"],
    ));

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
    require_fusermount3();
    let mut guard = Cleanup::new(&mnt, &home);
    let bin = env!("CARGO_BIN_EXE_fossa");
    let spawn = || {
        Command::new(bin)
            .env_remove("FOSSA_HOME")
            .env_remove("FOSSA_PASSPHRASE")
            .env("FOSSA_DISCOVERY", "off")
            .arg("--home")
            .arg(&home)
            .arg("mount")
            .arg(&mnt)
            .args(["--listen", "127.0.0.1:0"])
            .spawn()
            .unwrap()
    };
    // No volume, no key, no passphrase: the volume is created with a generated key file.
    let child = guard.child.insert(spawn());
    let pid = child.id().to_string();
    wait_mounted(&mnt, true);
    assert!(home.join("config/volume.keyfile").is_file());
    std::fs::write(mnt.join("f"), b"data").unwrap();
    let killed = Command::new("kill").arg(&pid).status().unwrap();
    assert!(killed.success());
    assert!(guard.child.take().unwrap().wait().unwrap().success());
    wait_mounted(&mnt, false);

    // External unmount also ends the process cleanly; the file survived the first session
    // (its metadata: content durability is the block store's and the end-to-end tests' part).
    guard.child = Some(spawn());
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
    assert!(guard.child.take().unwrap().wait().unwrap().success());
}
