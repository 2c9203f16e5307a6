//! Nothing in clear on disk: names, contents, xattrs and symlink targets never appear in the
#![allow(clippy::unwrap_used)]
//! raw bytes of any file under the data directory.
mod common;
use common::*;
use fossa_fs::*;

fn all_bytes(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_bytes(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn nothing_in_clear_on_disk() {
    let v = Vol::new();
    let secrets: [&[u8]; 5] = [
        b"zebra-unicorn-dirname",
        b"quokka-pangolin-filename",
        b"CONTENT-MARKER-7f3a9c",
        b"user.xattr-name-okapi",
        b"symlink-target-narwhal",
    ];
    {
        let fs = v.open();
        let d = fs.mkdir(WHO, ROOT_INO, secrets[0], 0o755).unwrap();
        let body = secrets[2].repeat(1000);
        let (a, fh) = fs.create(WHO, d.ino, secrets[1], 0o644, RW).unwrap();
        fs.write(a.ino, fh, 0, &body).unwrap();
        fs.release(a.ino, fh).unwrap();
        fs.setxattr(a.ino, secrets[3], b"xattr-value-axolotl", XattrMode::Any)
            .unwrap();
        fs.symlink(WHO, d.ino, b"link", secrets[4]).unwrap();
        fs.sync().unwrap();
    }
    let mut files = Vec::new();
    all_bytes(v.dir.path(), &mut files);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for s in secrets.iter().chain([&&b"xattr-value-axolotl"[..]]) {
            let found = bytes.windows(s.len()).any(|w| w == *s);
            assert!(!found, "{} found in {path}", String::from_utf8_lossy(s));
        }
    }
}
