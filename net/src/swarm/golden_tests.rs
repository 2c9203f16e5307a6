//! Golden bytes of a ticket, a release and a join code (`tests/fixtures/format-v1/swarm-*.bin`):
//! fixed keys (Ed25519 signs deterministically) give fixed bytes, which decode back to the
//! same value and encode to the same bytes.
use super::test_keys::key;
use super::*;
use crate::golden::check;

const NOW: u64 = 1_800_000_000;

pub(crate) fn ticket() -> SwarmTicket {
    let (f, a) = (key(1), key(2));
    SwarmTicket::found(&f, SwarmId([7; 16]), NOW + 1000)
        .issue(&f, a.id(), true, NOW + 500)
        .expect("issue")
        .issue(&a, key(3).id(), false, NOW + 100)
        .expect("issue")
}

#[test]
fn ticket_bytes() {
    let t = ticket();
    let bytes = t.encode();
    check("swarm-ticket", &bytes);
    let back = SwarmTicket::decode(&bytes).expect("decode");
    assert_eq!(back, t);
    assert_eq!(back.encode(), bytes);
    assert_eq!(
        back.verify(&SwarmId([7; 16]), &key(1).public_key(), &key(3).id(), NOW),
        Ok(())
    );
}

#[test]
fn release_bytes() {
    let owner = OwnerKey::from_volume_secret(&[11; 32]).expect("owner key");
    let r = Release::sign(
        &owner,
        SwarmId([7; 16]),
        key(3).id(),
        key(4).id(),
        NOW,
        vec![[12; 32], [13; 32]],
    )
    .expect("sign");
    let bytes = r.encode();
    check("swarm-release", &bytes);
    let back = Release::decode(&bytes).expect("decode");
    assert_eq!(back, r);
    assert_eq!(back.encode(), bytes);
    assert_eq!(back.verify(&SwarmId([7; 16]), &key(3).id()), Ok(()));
}

#[test]
fn join_code_text() {
    let code = JoinCode {
        swarm: SwarmId([7; 16]),
        admission: Admission::Ticket {
            founder: key(1).public_key(),
            ticket: ticket(),
        },
        bootstrap: vec!["127.0.0.2:4433".parse().expect("addr")],
    };
    let text = code.encode();
    check("swarm-join-code", text.as_bytes());
    let back = JoinCode::decode(&text).expect("decode");
    assert_eq!(back, code);
    assert_eq!(back.encode(), text);
}
