//! Extended attributes: the size-0 probe, ERANGE for small buffers, create/replace flags.
use super::dir::reply_empty;
use super::errno::errno;
use fossa_fs::{Fs, XattrMode};
use fuser::{Errno, INodeNo, ReplyEmpty, ReplyXattr};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The core's mode for `setxattr` flags; `None` if invalid (both, or unknown bits).
pub(crate) fn xattr_mode(flags: i32) -> Option<XattrMode> {
    match flags {
        0 => Some(XattrMode::Any),
        libc::XATTR_CREATE => Some(XattrMode::Create),
        libc::XATTR_REPLACE => Some(XattrMode::Replace),
        _ => None,
    }
}

/// `setxattr`. `position` only exists for macOS resource forks.
pub(crate) fn setxattr(
    fs: &Fs,
    ino: INodeNo,
    name: &OsStr,
    value: &[u8],
    (flags, position): (i32, u32),
    reply: ReplyEmpty,
) {
    let Some(mode) = xattr_mode(flags).filter(|_| position == 0) else {
        return reply.error(Errno::EINVAL);
    };
    let r = fs.setxattr(ino.0, name.as_bytes(), value, mode);
    reply_empty(reply, "setxattr", ino.0, r);
}

/// Answers a size probe (`size == 0`), `ERANGE`, or the bytes.
pub(crate) fn reply_sized(reply: ReplyXattr, size: u32, bytes: &[u8]) {
    match u32::try_from(bytes.len()) {
        Err(_) => reply.error(Errno::from_i32(libc::E2BIG)),
        Ok(n) if size == 0 => reply.size(n),
        Ok(n) if n > size => reply.error(Errno::from_i32(libc::ERANGE)),
        Ok(_) => reply.data(bytes),
    }
}

/// `getxattr`.
pub(crate) fn getxattr(fs: &Fs, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
    match fs.getxattr(ino.0, name.as_bytes()) {
        Ok(v) => reply_sized(reply, size, &v),
        Err(e) => reply.error(errno("getxattr", ino.0, e)),
    }
}

/// The `listxattr` buffer: each name followed by a NUL.
pub(crate) fn name_list(names: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(names.iter().map(|n| n.len() + 1).sum());
    for n in names {
        out.extend_from_slice(n);
        out.push(0);
    }
    out
}

/// `listxattr`.
pub(crate) fn listxattr(fs: &Fs, ino: INodeNo, size: u32, reply: ReplyXattr) {
    match fs.listxattr(ino.0) {
        Ok(names) => reply_sized(reply, size, &name_list(&names)),
        Err(e) => reply.error(errno("listxattr", ino.0, e)),
    }
}

/// `removexattr`.
pub(crate) fn removexattr(fs: &Fs, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    reply_empty(
        reply,
        "removexattr",
        ino.0,
        fs.removexattr(ino.0, name.as_bytes()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_name_lists() {
        assert_eq!(xattr_mode(0), Some(XattrMode::Any));
        assert_eq!(xattr_mode(libc::XATTR_CREATE), Some(XattrMode::Create));
        assert_eq!(xattr_mode(libc::XATTR_REPLACE), Some(XattrMode::Replace));
        assert_eq!(xattr_mode(libc::XATTR_CREATE | libc::XATTR_REPLACE), None);
        let names = vec![b"user.a".to_vec(), b"user.bc".to_vec()];
        assert_eq!(name_list(&names), b"user.a\0user.bc\0");
        assert!(name_list(&[]).is_empty());
    }
}
