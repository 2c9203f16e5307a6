//! Golden bytes of one frame per message tag (`tests/fixtures/format-v1/net-msg-*.bin`),
//! through the real frame codec: each fixed message encodes to the committed frame, and the
//! frame's body decodes back to the message.
use super::frame::{check_len, decode, encode};
use super::*;
use crate::golden::check;

fn member(seed: u8) -> SignedMemberWire {
    SignedMemberWire {
        record: RecordWire {
            device: [seed; 32],
            public_key: [seed + 1; 32],
            name: "laptop".into(),
            added_by: [seed + 2; 32],
            revoked: false,
            role: RoleWire::Keeper,
        },
        signer: [seed + 2; 32],
        sig: vec![seed + 3; 64],
        addrs: vec!["127.0.0.2:22000".parse().expect("addr")],
    }
}

fn messages() -> Vec<(&'static str, Message)> {
    vec![
        (
            "hello",
            Message::Hello(Hello {
                minor: MINOR,
                volume: [1; 16],
                device: [2; 32],
                name: "desktop".into(),
                index_id: 0x1122_3344_5566_7788,
                seq: 300,
            }),
        ),
        (
            "members",
            Message::Members(MembersMsg {
                records: vec![member(10)],
            }),
        ),
        (
            "want",
            Message::Want(Want {
                index_id: 5,
                after: 128,
            }),
        ),
        (
            "index",
            Message::Index(Index {
                index_id: 5,
                upto: 130,
                updates: vec![(129, serde_bytes::ByteBuf::from(vec![9u8; 20]))],
            }),
        ),
        (
            "get-blocks",
            Message::GetBlocks(GetBlocks {
                ids: vec![[3; 32], [4; 32]],
            }),
        ),
        (
            "block",
            Message::Block(Block {
                id: [5; 32],
                data: Some(b"ciphertext".to_vec()),
            }),
        ),
        (
            "join-request",
            Message::JoinRequest(JoinRequest {
                volume: [1; 16],
                device: [6; 32],
                public_key: [7; 32],
                name: "phone".into(),
                proof: [8; 32],
            }),
        ),
        (
            "join-accept",
            Message::JoinAccept(JoinAccept {
                k_wrap: Some([9; 32]),
                members: vec![member(20)],
            }),
        ),
        (
            "put-blocks",
            Message::PutBlocks(PutBlocks {
                blocks: vec![([10; 32], serde_bytes::ByteBuf::from(b"bytes".to_vec()))],
            }),
        ),
        (
            "put-results",
            Message::PutResults(PutResults {
                results: vec![
                    PutStatusWire::Stored,
                    PutStatusWire::QuotaFull,
                    PutStatusWire::Bad,
                    PutStatusWire::Failed,
                ],
            }),
        ),
        (
            "has-blocks",
            Message::HasBlocks(IdList {
                ids: vec![[11; 32]],
            }),
        ),
        (
            "has-result",
            Message::HasResult(Bitmap::pack(&[true, false, true])),
        ),
        (
            "audit",
            Message::Audit(Audit {
                nonce: [12; 32],
                ids: vec![[13; 32]],
            }),
        ),
        (
            "audit-result",
            Message::AuditResult(AuditResult {
                proofs: vec![Some([14; 32]), None],
            }),
        ),
        (
            "drop-blocks",
            Message::DropBlocks(IdList {
                ids: vec![[15; 32]],
            }),
        ),
        ("dropped", Message::Dropped(Bitmap::pack(&[false, true]))),
        ("join-confirm", Message::JoinConfirm(JoinConfirm {})),
        (
            "join-done",
            Message::JoinDone(JoinDone {
                members: vec![member(30)],
            }),
        ),
    ]
}

#[test]
fn one_frame_per_tag() {
    let all = messages();
    assert_eq!(
        all.len() as u32,
        MAX_KNOWN_TAG + 1,
        "every tag has a fixture"
    );
    for (name, msg) in all {
        let frame = encode(&msg).expect("encode");
        check(&format!("net-msg-{name}"), &frame);
        let mut prefix = [0u8; 4];
        prefix.copy_from_slice(&frame[..4]);
        assert_eq!(check_len(prefix).expect("length"), frame.len() - 4);
        assert_eq!(decode(&frame[4..]).expect("decode"), msg, "{name}");
    }
}
