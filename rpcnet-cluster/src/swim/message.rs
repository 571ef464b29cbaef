//! Gossip messages and their bounded, versioned wire format (byte by byte in
//! `rpcnet-cluster/PROTOCOL.md`).
//!
//! A message on the wire is one version byte ([`PROTOCOL_VERSION`]) followed by the msgpack
//! encoding (rmp-serde, structs as arrays, enum variants by name) of [`Message`]. The decoder
//! checks the total length ([`MAX_MESSAGE_BYTES`]) before parsing, rmp-serde reads strings
//! only as many bytes as actually follow (so a forged length cannot allocate beyond the input), node ids and tags
//! are checked by their own decoders, and the update counts are checked against
//! [`MAX_PIGGYBACK_UPDATES`] and [`MAX_PUSH_PULL_MEMBERS`] before the message is used.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::member::{Member, MemberState, NodeId};
use crate::tags::Tags;

/// The first byte of every encoded message.
pub const PROTOCOL_VERSION: u8 = 1;

/// The largest encoded message [`Message::decode`] accepts, in bytes (push-pull included).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The most updates piggybacked on one message other than push-pull.
pub const MAX_PIGGYBACK_UPDATES: usize = 64;

/// The most members in one push-pull state.
pub const MAX_PUSH_PULL_MEMBERS: usize = 4096;

/// One gossip message between two nodes. Opaque: produced by
/// [`Swim::poll_transmit`](crate::Swim::poll_transmit), consumed by
/// [`Swim::handle_message`](crate::Swim::handle_message), carried as bytes by
/// [`encode`](Self::encode) and [`decode`](Self::decode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub(crate) from: NodeId,
    pub(crate) body: Body,
    #[serde(deserialize_with = "updates")]
    pub(crate) updates: Vec<Update>,
}

/// What a message asks or answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Body {
    /// Are you `target`? Answer with `Ack { seq }`.
    Ping { seq: u32, target: NodeId },
    /// The answer to a ping (directly, or relayed by the member that probed on our behalf).
    Ack { seq: u32 },
    /// A relay heard nothing from the target of our `PingReq { seq }` (Lifeguard).
    Nack { seq: u32 },
    /// Please probe `target` at `target_addr` for me and relay its ack as `Ack { seq }`.
    PingReq {
        seq: u32,
        target: NodeId,
        target_addr: SocketAddr,
    },
    /// Nothing but the piggybacked updates.
    Gossip,
    /// The sender's full state; answered with the receiver's unless `reply`.
    PushPull {
        reply: bool,
        #[serde(deserialize_with = "updates")]
        state: Vec<Update>,
    },
}

/// The most updates room is made for before they arrive.
const PREALLOCATED_UPDATES: usize = 8;

/// Deserializes a list of updates, making room for them as they arrive rather than for the
/// count the list announces: serde's own `Vec` trusts an announced count up to 1 MiB of
/// elements, which a few forged bytes would claim.
fn updates<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Update>, D::Error> {
    struct Updates;

    impl<'de> serde::de::Visitor<'de> for Updates {
        type Value = Vec<Update>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of member updates")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<Update>, A::Error> {
            let announced = seq.size_hint().unwrap_or(0);
            let mut updates = Vec::with_capacity(announced.min(PREALLOCATED_UPDATES));
            while let Some(update) = seq.next_element()? {
                updates.push(update);
            }
            Ok(updates)
        }
    }

    deserializer.deserialize_seq(Updates)
}

/// What a [`Message`] is, for drivers that route or count messages by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A direct or relayed probe.
    Ping,
    /// The answer to a probe.
    Ack,
    /// A relay's report that an indirect probe went unanswered.
    Nack,
    /// A request to probe a member on the sender's behalf.
    PingReq,
    /// Piggybacked updates only.
    Gossip,
    /// A full-state exchange (the only kind that may exceed the packet budget).
    PushPull,
}

/// One member's state as gossiped: who, where, which incarnation, what state and tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Update {
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
    pub(crate) state: MemberState,
    /// The member's tags at `incarnation` (adopted with any update that raises it).
    pub(crate) tags: Tags,
    /// For `Suspect`: who suspects, so Lifeguard can count independent confirmations.
    pub(crate) suspecter: Option<NodeId>,
}

impl Update {
    pub(crate) fn of(member: &Member, with_tags: bool) -> Self {
        Self {
            id: member.id.clone(),
            addr: member.addr,
            incarnation: member.incarnation,
            state: member.state,
            tags: if with_tags {
                member.tags.clone()
            } else {
                Tags::new()
            },
            suspecter: None,
        }
    }

    /// The size of this update's encoding, in bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        rmp_serde::to_vec(self)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX)
    }
}

/// Why bytes could not be decoded into a [`Message`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input was empty.
    #[error("empty message")]
    Empty,
    /// The input was longer than [`MAX_MESSAGE_BYTES`]; nothing was parsed.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The input length.
        len: usize,
        /// The limit, [`MAX_MESSAGE_BYTES`].
        max: usize,
    },
    /// The version byte is not [`PROTOCOL_VERSION`].
    #[error("unsupported gossip protocol version {0}")]
    UnsupportedVersion(u8),
    /// The body is not a valid message (bad msgpack, wrong shape, an invalid node id, tags
    /// over [`MAX_TAGS_BYTES`](crate::MAX_TAGS_BYTES)).
    #[error("malformed gossip message")]
    Malformed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Bytes were left after a complete message.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
    /// More piggybacked updates than [`MAX_PIGGYBACK_UPDATES`].
    #[error("{count} piggybacked updates exceed the limit of {max}")]
    TooManyUpdates {
        /// How many the message carried.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A push-pull state with more members than [`MAX_PUSH_PULL_MEMBERS`].
    #[error("push-pull state of {count} members exceeds the limit of {max}")]
    TooManyMembers {
        /// How many the message carried.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl Message {
    /// Decodes a message, rejecting anything malformed or over the limits without panicking
    /// and without allocating more than a small multiple of the input's length (a forged
    /// string or list length reserves nothing beyond what actually follows).
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        // Reading from `&[u8]` copies each string into a buffer no longer than the bytes that
        // actually follow, so a forged length cannot allocate beyond the input.
        let mut rest: &[u8] = body;
        let msg = Message::deserialize(&mut rmp_serde::Deserializer::new(&mut rest))
            .map_err(|e| DecodeError::Malformed(Box::new(e)))?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        if msg.updates.len() > MAX_PIGGYBACK_UPDATES {
            return Err(DecodeError::TooManyUpdates {
                count: msg.updates.len(),
                max: MAX_PIGGYBACK_UPDATES,
            });
        }
        if let Body::PushPull { state, .. } = &msg.body {
            if state.len() > MAX_PUSH_PULL_MEMBERS {
                return Err(DecodeError::TooManyMembers {
                    count: state.len(),
                    max: MAX_PUSH_PULL_MEMBERS,
                });
            }
        }
        Ok(msg)
    }

    /// Encodes the message: [`PROTOCOL_VERSION`] then msgpack.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        // Our types are plain structs, enums, strings and integers: writing them into a Vec
        // has no failure mode.
        rmp_serde::encode::write(&mut out, self).expect("encoding a message into a Vec");
        out
    }

    /// What kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self.body {
            Body::Ping { .. } => MessageKind::Ping,
            Body::Ack { .. } => MessageKind::Ack,
            Body::Nack { .. } => MessageKind::Nack,
            Body::PingReq { .. } => MessageKind::PingReq,
            Body::Gossip => MessageKind::Gossip,
            Body::PushPull { .. } => MessageKind::PushPull,
        }
    }

    /// The id of the node that sent the message.
    pub fn sender(&self) -> &NodeId {
        &self.from
    }
}

/// A conservative bound on the encoded size of a message from `from` with `body` and no
/// updates (push-pull excluded), so piggybacking can fill the rest of the packet budget.
pub(crate) fn header_bound(from: &NodeId, body: &Body) -> usize {
    // version + outer array + from (str header ≤ 2) + body variant map and name ≤ 10
    // + seq ≤ 5 + target (≤ 2 + len) + address ≤ 24 + updates array header ≤ 3.
    let target = match body {
        Body::Ping { target, .. } | Body::PingReq { target, .. } => target.as_str().len() + 2,
        _ => 0,
    };
    1 + 1 + 2 + from.as_str().len() + 10 + 5 + target + 24 + 3 + 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid id")
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], 7946))
    }

    fn update(name: &str) -> Update {
        Update {
            id: id(name),
            addr: addr(),
            incarnation: 7,
            state: MemberState::Suspect,
            tags: Tags::new().with("role", "worker").expect("small tags"),
            suspecter: Some(id("n0")),
        }
    }

    fn samples() -> Vec<Message> {
        let from = id("n1");
        vec![
            Message {
                from: from.clone(),
                body: Body::Ping {
                    seq: 3,
                    target: id("n2"),
                },
                updates: vec![update("n3"), update("n4")],
            },
            Message {
                from: from.clone(),
                body: Body::Ack { seq: u32::MAX },
                updates: vec![],
            },
            Message {
                from: from.clone(),
                body: Body::Nack { seq: 9 },
                updates: vec![],
            },
            Message {
                from: from.clone(),
                body: Body::PingReq {
                    seq: 1,
                    target: id("n5"),
                    target_addr: "[::1]:9000".parse().expect("valid address"),
                },
                updates: vec![update("n6")],
            },
            Message {
                from: from.clone(),
                body: Body::Gossip,
                updates: vec![update("n7")],
            },
            Message {
                from,
                body: Body::PushPull {
                    reply: true,
                    state: vec![update("n8"), update("n9")],
                },
                updates: vec![],
            },
        ]
    }

    #[test]
    fn every_kind_of_message_survives_a_round_trip() {
        for msg in samples() {
            let decoded = Message::decode(&msg.encode()).expect("valid message");
            assert_eq!(decoded, msg);
        }
    }

    #[test]
    fn the_wire_format_matches_protocol_md_byte_for_byte() {
        let ping = Message {
            from: id("a"),
            body: Body::Ping {
                seq: 5,
                target: id("b"),
            },
            updates: vec![Update {
                id: id("c"),
                addr: addr(),
                incarnation: 2,
                state: MemberState::Alive,
                tags: Tags::new().with("k", "v").expect("small tags"),
                suspecter: None,
            }],
        };
        #[rustfmt::skip]
        let expected = [
            0x01,                                   // version
            0x93,                                   // message: array of 3
            0xa1, b'a',                             // from
            0x81, 0xa4, b'P', b'i', b'n', b'g',     // body: {"Ping": …}
            0x92, 0x05, 0xa1, b'b',                 //   [seq, target]
            0x91,                                   // updates: array of 1
            0x96,                                   //   update: array of 6
            0xa1, b'c',                             //   id
            0x81, 0xa2, b'V', b'4',                 //   addr: {"V4": …}
            0x92, 0x94, 0x0a, 0x00, 0x00, 0x01,     //     [[10, 0, 0, 1],
            0xcd, 0x1f, 0x0a,                       //      7946]
            0x02,                                   //   incarnation
            0xa5, b'A', b'l', b'i', b'v', b'e',     //   state
            0x81, 0xa1, b'k', 0xa1, b'v',           //   tags
            0xc0,                                   //   suspecter: nil
        ];
        assert_eq!(ping.encode(), expected);
        let gossip = Message {
            from: id("a"),
            body: Body::Gossip,
            updates: vec![],
        };
        let expected = [
            0x01, 0x93, 0xa1, b'a', 0xa6, b'G', b'o', b's', b's', b'i', b'p', 0x90,
        ];
        assert_eq!(gossip.encode(), expected);
    }

    #[test]
    fn oversized_input_is_rejected_before_parsing() {
        let bytes = vec![PROTOCOL_VERSION; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_input_and_unknown_versions_are_rejected() {
        assert!(matches!(Message::decode(&[]), Err(DecodeError::Empty)));
        let mut bytes = samples()[1].encode();
        bytes[0] = 2;
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = samples()[1].encode();
        bytes.push(0);
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::TrailingBytes(1))
        ));
    }

    #[test]
    fn too_many_piggybacked_updates_are_rejected() {
        let msg = Message {
            from: id("n1"),
            body: Body::Gossip,
            updates: (0..=MAX_PIGGYBACK_UPDATES)
                .map(|i| update(&format!("m{i}")))
                .collect(),
        };
        assert!(matches!(
            Message::decode(&msg.encode()),
            Err(DecodeError::TooManyUpdates { .. })
        ));
    }

    #[test]
    fn a_push_pull_state_over_max_push_pull_members_is_rejected_and_one_at_the_limit_accepted() {
        let push_pull = |count: usize| Message {
            from: id("n1"),
            body: Body::PushPull {
                reply: false,
                state: (0..count).map(|i| update(&format!("m{i}"))).collect(),
            },
            updates: vec![],
        };
        let at_limit = push_pull(MAX_PUSH_PULL_MEMBERS);
        assert_eq!(
            Message::decode(&at_limit.encode()).expect("a state at the limit decodes"),
            at_limit
        );
        match Message::decode(&push_pull(MAX_PUSH_PULL_MEMBERS + 1).encode()) {
            Err(DecodeError::TooManyMembers { count, max }) => {
                assert_eq!(
                    (count, max),
                    (MAX_PUSH_PULL_MEMBERS + 1, MAX_PUSH_PULL_MEMBERS)
                );
            }
            other => panic!("expected TooManyMembers, got {other:?}"),
        }
    }

    #[test]
    fn forged_huge_lengths_are_rejected_as_errors() {
        // fixarray(3), then a str32 header claiming 4 GiB of node id.
        let mut bytes = vec![PROTOCOL_VERSION, 0x93, 0xdb, 0xff, 0xff, 0xff, 0xff];
        bytes.extend_from_slice(b"abc");
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
        // An array32 of updates claiming 4 billion entries.
        let mut bytes = samples()[4].encode();
        let cut = bytes.len() - update("n7").encoded_len() - 1;
        bytes.truncate(cut);
        bytes.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        assert!(Message::decode(&bytes).is_err());
    }

    /// A list that announces more updates than it holds (here four billion, and none)
    /// gets room only for a few: found by the `gossip_message` fuzz target, where ten bytes
    /// announcing 1,479 updates reserved 150 KB.
    #[test]
    fn a_forged_list_length_reserves_room_for_few_updates() {
        struct Lying;
        impl Iterator for Lying {
            type Item = u8;
            fn next(&mut self) -> Option<u8> {
                None
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (u32::MAX as usize, Some(u32::MAX as usize))
            }
        }
        let seq = serde::de::value::SeqDeserializer::<_, serde::de::value::Error>::new(Lying);
        let list = updates(seq).expect("an empty list");
        assert!(list.is_empty());
        assert!(
            list.capacity() <= PREALLOCATED_UPDATES,
            "{}",
            list.capacity()
        );
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let valid: Vec<Vec<u8>> = samples().iter().map(Message::encode).collect();
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = rng.gen_range(0..256);
                (0..len).map(|_| rng.gen()).collect()
            } else {
                // Mutate a valid message: flip, insert or cut bytes.
                let mut b = valid[round % valid.len()].clone();
                for _ in 0..rng.gen_range(1..6) {
                    let i = rng.gen_range(0..b.len());
                    match rng.gen_range(0..3) {
                        0 => b[i] = rng.gen(),
                        1 => b.insert(i, rng.gen()),
                        _ => b.truncate(i.max(1)),
                    }
                }
                b
            };
            let _ = Message::decode(&bytes);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_decode_to_a_result_not_a_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048)
        ) {
            let mut versioned = vec![PROTOCOL_VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = Message::decode(&bytes);
            let _ = Message::decode(&versioned);
        }
    }
}
