//! The message codec: MessagePack (rmp-serde, structs encoded as maps so that adding an
//! optional field does not break older peers), written straight into the frames that carry
//! the messages and read back without copying byte fields.
//!
//! - `encode`: a message into its frame, in place.
//! - `segments`: outputs whose large payloads travel from their own memory.
//! - `decode`: received messages, byte fields sliced from the received bytes.

mod decode;
mod encode;
mod segments;

pub(crate) use self::decode::{decode, decode_in, share_from_source};
pub(crate) use self::encode::{encode, put_item, put_message, FrameBuf};
pub(crate) use self::segments::{lend, put_message_segments, Frozen, Segments};

#[cfg(test)]
mod tests;
