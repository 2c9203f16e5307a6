//! Asking peers to keep blocks (docs/redundancy.md): the messages `PutBlocks`, `HasBlocks`,
//! `Audit` and `DropBlocks`, sent by member devices ([`KeepClient`]) and served by any node
//! with a [`crate::BlockHolder`] (every keeper, and a device that accepts copies for
//! redundancy; [`serve_request`]).
//!
//! A keeper only stores: it answers these four requests and `GetBlocks` from member devices,
//! and nothing else (no index, no volume secret). Only a member device's node has a
//! [`KeepClient`], so a keeper cannot send these requests.
mod client;
mod serve;

pub(crate) use client::KeepClient;
pub(crate) use serve::serve_request;
