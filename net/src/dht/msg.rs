//! Domain messages of fossa/dht/1 (docs/protocol.md, "Messages"); the wire structs and the
//! codec live in `proto::dht`.
use super::contact::{Contact, ProviderRecord};
use super::key::Key;
use std::net::SocketAddr;

/// A request from one node to another.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    /// Are you there? Answered by `Pong`.
    Ping,
    /// The answerer's contacts closest to `target`; answered by `Nodes`.
    FindNode {
        /// The id looked for.
        target: Key,
    },
    /// The providers of `key` and closer contacts; answered by `Providers`.
    GetProviders {
        /// The key looked for.
        key: Key,
    },
    /// Record the sender as a provider of `key`; answered by `ProviderAck`.
    AddProvider {
        /// The key the sender holds.
        key: Key,
        /// Where the sender takes connections (1..=4).
        addrs: Vec<SocketAddr>,
    },
}

/// The answer to a [`Request`], of the matching kind.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Response {
    /// Answer to `Ping`.
    Pong {
        /// The source address the answerer saw.
        observed: SocketAddr,
    },
    /// Answer to `FindNode`.
    Nodes {
        /// At most `K` contacts closest to the target, never the asker.
        closer: Vec<Contact>,
    },
    /// Answer to `GetProviders`.
    Providers {
        /// At most `K` unexpired providers of the key.
        providers: Vec<ProviderRecord>,
        /// At most `K` contacts closest to the key, never the asker.
        closer: Vec<Contact>,
    },
    /// Answer to `AddProvider`.
    ProviderAck {
        /// False when the record was refused (over a limit).
        stored: bool,
    },
}

/// The kind of a request, without its fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RequestKind {
    Ping,
    FindNode,
    GetProviders,
    AddProvider,
}

impl Request {
    pub(crate) fn kind(&self) -> RequestKind {
        match self {
            Request::Ping => RequestKind::Ping,
            Request::FindNode { .. } => RequestKind::FindNode,
            Request::GetProviders { .. } => RequestKind::GetProviders,
            Request::AddProvider { .. } => RequestKind::AddProvider,
        }
    }
}

impl Response {
    /// Whether `self` is the kind of answer `req` calls for.
    pub fn answers(&self, req: &Request) -> bool {
        self.answers_kind(req.kind())
    }

    pub(crate) fn answers_kind(&self, kind: RequestKind) -> bool {
        matches!(
            (kind, self),
            (RequestKind::Ping, Response::Pong { .. })
                | (RequestKind::FindNode, Response::Nodes { .. })
                | (RequestKind::GetProviders, Response::Providers { .. })
                | (RequestKind::AddProvider, Response::ProviderAck { .. })
        )
    }
}
