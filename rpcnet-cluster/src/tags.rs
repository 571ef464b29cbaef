//! Tags: small key/value labels a member gossips about itself (`role=worker`, `zone=…`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The hard limit on a member's tags, in bytes of their msgpack encoding.
///
/// [`ClusterConfig::with_max_tags_bytes`](crate::ClusterConfig::with_max_tags_bytes) can lower
/// the limit a node accepts for itself; the wire never carries more than this.
pub const MAX_TAGS_BYTES: usize = 512;

/// A member's labels: a sorted map of strings, at most [`MAX_TAGS_BYTES`] encoded.
///
/// Tags are part of the member's gossiped state and versioned by its incarnation: changing
/// them (see [`Swim::set_tags`](crate::Swim::set_tags)) raises the incarnation so the new tags
/// win everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a tag, returning the previous value; fails and leaves the tags
    /// unchanged if they would exceed [`MAX_TAGS_BYTES`].
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Option<String>, TagsTooLarge> {
        let key = key.into();
        let value = value.into();
        let mut candidate = self.0.clone();
        candidate.insert(key.clone(), value.clone());
        check(&candidate, MAX_TAGS_BYTES)?;
        Ok(self.0.insert(key, value))
    }

    /// Builder form of [`insert`](Self::insert).
    pub fn with(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, TagsTooLarge> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Removes a tag, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// The value of a tag.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The tags in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The size of the tags' msgpack encoding, in bytes: what counts against the limits.
    pub fn encoded_len(&self) -> usize {
        encoded_len(&self.0)
    }
}

impl TryFrom<BTreeMap<String, String>> for Tags {
    type Error = TagsTooLarge;

    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        check(&map, MAX_TAGS_BYTES)?;
        Ok(Self(map))
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Tags::try_from(map).map_err(serde::de::Error::custom)
    }
}

/// Tags that exceed a size limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tags take {size} bytes encoded, more than the limit of {limit} bytes")]
pub struct TagsTooLarge {
    size: usize,
    limit: usize,
}

impl TagsTooLarge {
    pub(crate) fn new(size: usize, limit: usize) -> Self {
        Self { size, limit }
    }

    /// The encoded size of the rejected tags, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The limit they exceeded, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

pub(crate) fn check(map: &BTreeMap<String, String>, limit: usize) -> Result<(), TagsTooLarge> {
    let size = encoded_len(map);
    if size > limit {
        Err(TagsTooLarge::new(size, limit))
    } else {
        Ok(())
    }
}

/// The msgpack size of a map of strings, computed without encoding it.
fn encoded_len(map: &BTreeMap<String, String>) -> usize {
    fn header(len: usize, fix: usize) -> usize {
        if len <= fix {
            1
        } else if len <= 0xff && fix == 31 {
            2
        } else if len <= 0xffff {
            3
        } else {
            5
        }
    }
    let strings: usize = map
        .iter()
        .map(|(k, v)| header(k.len(), 31) + k.len() + header(v.len(), 31) + v.len())
        .sum();
    header(map.len(), 15) + strings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_matches_the_msgpack_encoding() {
        let mut tags = Tags::new();
        let encoded = |t: &Tags| {
            rmp_serde::to_vec(t)
                .expect("encoding tags into a Vec")
                .len()
        };
        assert_eq!(tags.encoded_len(), encoded(&tags));
        tags.insert("role", "worker").expect("small tags fit");
        tags.insert("label", "x".repeat(40))
            .expect("small tags fit");
        tags.insert("zone", "y".repeat(300)).expect("300 bytes fit");
        assert_eq!(tags.encoded_len(), encoded(&tags));
        for i in 0..14 {
            tags.insert(format!("k{i}"), "v").expect("small tags fit");
        }
        assert_eq!(tags.encoded_len(), encoded(&tags));
    }

    #[test]
    fn inserting_past_the_limit_fails_and_leaves_tags_unchanged() {
        let mut tags = Tags::new().with("role", "worker").expect("small tags fit");
        let err = tags
            .insert("blob", "z".repeat(MAX_TAGS_BYTES))
            .expect_err("a 512-byte value cannot fit");
        assert_eq!(err.limit(), MAX_TAGS_BYTES);
        assert!(err.size() > MAX_TAGS_BYTES);
        assert_eq!(tags.len(), 1);
        assert_eq!(tags.get("role"), Some("worker"));
    }

    #[test]
    fn tags_of_exactly_the_limit_are_accepted() {
        // fixmap(1) + str8 header(2) + 1-byte key ... fill the value up to the limit.
        let key = "k";
        let overhead = 1 + 1 + key.len() + 3;
        let value = "v".repeat(MAX_TAGS_BYTES - overhead);
        let tags = Tags::new()
            .with(key, value)
            .expect("exactly the limit fits");
        assert_eq!(tags.encoded_len(), MAX_TAGS_BYTES);
    }

    #[test]
    fn decoding_oversized_tags_is_an_error() {
        let mut map = BTreeMap::new();
        map.insert("blob".to_owned(), "z".repeat(MAX_TAGS_BYTES));
        let bytes = rmp_serde::to_vec(&map).expect("encoding a map into a Vec");
        assert!(rmp_serde::from_slice::<Tags>(&bytes).is_err());
    }
}
