//! Namespace operations on the live tree, each an `impl Core` per concern: lookup, create,
//! link, unlink and readdir (`dir`), rename, setattr (chmod, chown, truncate, utimens),
//! extended attributes (`xattr`), and the path names shown in logs (`names`).
pub(crate) mod dir;
pub(crate) mod names;
mod rename;
mod setattr;
pub(crate) mod xattr;
