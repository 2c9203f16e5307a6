//! The printable swarm join code (crypto.md, "Swarm tickets"): `FOSSAS1-` ‖ base32(body ‖
//! check), in the style of invitation codes.
use super::{SwarmCodeError, SwarmId, SwarmTicket};
use crate::proto::swarm::JoinCodeWire;
use data_encoding::BASE32_NOPAD;
use std::net::SocketAddr;

/// Prefix of a printable join code.
const PREFIX: &str = "FOSSAS1-";
/// Domain separation of the code's check.
const CHECK_CONTEXT: &[u8] = b"fossa swarm code v1";
/// Bytes of check at the end of the decoded code.
const CHECK_LEN: usize = 4;
/// Most bootstrap addresses in a code.
const MAX_BOOTSTRAP: usize = 8;

/// How the swarm admits nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Any node may join.
    Open,
    /// A node needs a ticket rooted at `founder`; this one admits the code's recipient.
    Ticket {
        /// The founder's Ed25519 public key.
        founder: [u8; 32],
        /// The recipient's ticket (verified by the recipient against its own id and clock).
        ticket: SwarmTicket,
    },
}

/// What a join code carries: the swarm, how it admits, and where to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinCode {
    /// The swarm.
    pub swarm: SwarmId,
    /// Open, or the founder key and the recipient's ticket.
    pub admission: Admission,
    /// Addresses of nodes to bootstrap from, 1..=8.
    pub bootstrap: Vec<SocketAddr>,
}

impl JoinCode {
    /// The printable code.
    pub fn encode(&self) -> String {
        let (founder, ticket) = match &self.admission {
            Admission::Open => (None, None),
            Admission::Ticket { founder, ticket } => (Some(*founder), Some(ticket.to_wire())),
        };
        let wire = JoinCodeWire {
            swarm: self.swarm.0,
            founder,
            ticket,
            bootstrap: self.bootstrap.clone(),
        };
        // A struct of arrays, options and vectors always serializes.
        let mut bytes = postcard::to_allocvec(&wire).unwrap_or_default();
        let check = check(&bytes);
        bytes.extend_from_slice(&check);
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes))
    }

    /// Parses a printable code: whitespace and case ignored; prefix, base32, check, then the
    /// body with its bounds, in that order (crypto.md).
    pub fn decode(s: &str) -> Result<Self, SwarmCodeError> {
        let clean: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let rest = clean.strip_prefix(PREFIX).ok_or(SwarmCodeError::NoPrefix)?;
        let raw = BASE32_NOPAD
            .decode(rest.as_bytes())
            .map_err(|_| SwarmCodeError::Garbled)?;
        let (body, got) = raw
            .split_last_chunk::<CHECK_LEN>()
            .ok_or(SwarmCodeError::Garbled)?;
        if check(body) != *got {
            return Err(SwarmCodeError::Checksum);
        }
        let malformed = |what| SwarmCodeError::Malformed { what };
        let (w, left) = postcard::take_from_bytes::<JoinCodeWire>(body)
            .map_err(|_| malformed("body does not decode"))?;
        if !left.is_empty() {
            return Err(malformed("bytes after the body"));
        }
        if w.bootstrap.is_empty() || w.bootstrap.len() > MAX_BOOTSTRAP {
            return Err(malformed("1 to 8 bootstrap addresses"));
        }
        let admission = match (w.founder, w.ticket) {
            (None, None) => Admission::Open,
            (Some(founder), Some(t)) => Admission::Ticket {
                founder,
                ticket: SwarmTicket::from_wire(t).map_err(|_| malformed("ticket"))?,
            },
            _ => return Err(malformed("founder and ticket go together")),
        };
        Ok(JoinCode {
            swarm: SwarmId(w.swarm),
            admission,
            bootstrap: w.bootstrap,
        })
    }
}

/// The first [`CHECK_LEN`] bytes of `BLAKE3(CHECK_CONTEXT ‖ PREFIX ‖ body)`.
fn check(body: &[u8]) -> [u8; CHECK_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(CHECK_CONTEXT);
    h.update(PREFIX.as_bytes());
    h.update(body);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..CHECK_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::test_keys::key;

    pub(crate) fn code() -> JoinCode {
        let f = key(1);
        let ticket = SwarmTicket::found(&f, SwarmId([7; 16]), 1_800_000_000)
            .issue(&f, key(3).id(), false, 1_800_000_000)
            .unwrap();
        JoinCode {
            swarm: SwarmId([7; 16]),
            admission: Admission::Ticket {
                founder: f.public_key(),
                ticket,
            },
            bootstrap: vec!["127.0.0.2:4433".parse().unwrap()],
        }
    }

    #[test]
    fn codes_round_trip_ignoring_case_and_whitespace() {
        let c = code();
        let s = c.encode();
        assert!(s.starts_with(PREFIX));
        assert_eq!(JoinCode::decode(&s), Ok(c.clone()));
        let spaced: String = s.to_lowercase().chars().flat_map(|ch| [ch, ' ']).collect();
        assert_eq!(JoinCode::decode(&spaced), Ok(c));
        let open = JoinCode {
            swarm: SwarmId([9; 16]),
            admission: Admission::Open,
            bootstrap: vec!["[::1]:4433".parse().unwrap()],
        };
        assert_eq!(JoinCode::decode(&open.encode()), Ok(open));
    }

    #[test]
    fn bad_codes_are_refused_in_order() {
        let s = code().encode();
        assert_eq!(
            JoinCode::decode("FOSSA2-AAAA"),
            Err(SwarmCodeError::NoPrefix)
        );
        assert_eq!(
            JoinCode::decode(&format!("{s}1")),
            Err(SwarmCodeError::Garbled)
        );
        // Every single changed character is caught by the check (or is not base32).
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        for i in PREFIX.len()..s.len() {
            let orig = s.as_bytes()[i] as char;
            let repl = alphabet.chars().find(|c| *c != orig).unwrap();
            let mut t = s.clone();
            t.replace_range(i..=i, &repl.to_string());
            let e = JoinCode::decode(&t).unwrap_err();
            assert!(
                matches!(e, SwarmCodeError::Checksum | SwarmCodeError::Garbled),
                "{i}: {e:?}"
            );
        }
        // A founder without a ticket, with a correct check.
        let w = JoinCodeWire {
            swarm: [1; 16],
            founder: Some([2; 32]),
            ticket: None,
            bootstrap: vec!["127.0.0.2:1".parse().unwrap()],
        };
        let mut body = postcard::to_allocvec(&w).unwrap();
        body.extend_from_slice(&check(&body));
        let made = format!("{PREFIX}{}", BASE32_NOPAD.encode(&body));
        assert!(matches!(
            JoinCode::decode(&made),
            Err(SwarmCodeError::Malformed { .. })
        ));
        let none = JoinCode {
            swarm: SwarmId([9; 16]),
            admission: Admission::Open,
            bootstrap: vec![],
        };
        assert!(matches!(
            JoinCode::decode(&none.encode()),
            Err(SwarmCodeError::Malformed { .. })
        ));
    }
}
