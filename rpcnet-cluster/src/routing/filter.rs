//! [`TagFilter`]: which members a call may go to, by their tags.

use std::collections::HashMap;
use std::fmt;

use crate::tags::Tags;

/// One condition on a member's tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Condition {
    /// The tag `key` is present with exactly this value.
    Equals(String, String),
    /// The tag `key` is present, with any value.
    Present(String),
    /// The tag `key` is absent.
    Absent(String),
}

impl Condition {
    fn matches(&self, tags: &Tags) -> bool {
        match self {
            Condition::Equals(key, value) => tags.get(key) == Some(value.as_str()),
            Condition::Present(key) => tags.get(key).is_some(),
            Condition::Absent(key) => tags.get(key).is_none(),
        }
    }
}

/// Selects members by their tags: every condition must hold (an empty filter matches every
/// member of the pool).
///
/// ```
/// use rpcnet_cluster::{TagFilter, Tags};
///
/// let gpu_workers = TagFilter::new().with_tag("role", "worker").with_tag("gpu", "true");
/// let tags = Tags::new().with("role", "worker").unwrap().with("gpu", "true").unwrap();
/// assert!(gpu_workers.matches(&tags));
/// assert!(!TagFilter::new().without_tag("gpu").matches(&tags));
/// ```
///
/// Filters compare and hash by their conditions (in any order of writing), so the
/// registry can keep the workers matching each filter it has seen ready for the next call.
/// A `HashMap<String, String>` of required values converts into a filter, as does
/// `Option<&HashMap<String, String>>` (`None` is the empty filter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TagFilter {
    /// Sorted and deduplicated, so equal filters compare and hash equal.
    conditions: Vec<Condition>,
}

impl TagFilter {
    /// The empty filter: every member of the pool.
    pub fn new() -> Self {
        TagFilter::default()
    }

    /// Also requires the tag `key` to be `value` (`role=worker`, `gpu=true`).
    pub fn with_tag(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with(Condition::Equals(key.into(), value.into()))
    }

    /// Also requires the tag `key` to be present, with any value.
    pub fn with_tag_present(self, key: impl Into<String>) -> Self {
        self.with(Condition::Present(key.into()))
    }

    /// Also requires the tag `key` to be absent.
    pub fn without_tag(self, key: impl Into<String>) -> Self {
        self.with(Condition::Absent(key.into()))
    }

    /// Whether a member with these tags satisfies every condition.
    pub fn matches(&self, tags: &Tags) -> bool {
        self.conditions.iter().all(|c| c.matches(tags))
    }

    /// Whether the filter has no condition (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    fn with(mut self, condition: Condition) -> Self {
        if let Err(at) = self.conditions.binary_search(&condition) {
            self.conditions.insert(at, condition);
        }
        self
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conditions.is_empty() {
            return f.write_str("any worker");
        }
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match condition {
                Condition::Equals(key, value) => write!(f, "{key}={value}")?,
                Condition::Present(key) => write!(f, "{key}")?,
                Condition::Absent(key) => write!(f, "!{key}")?,
            }
        }
        Ok(())
    }
}

impl From<&TagFilter> for TagFilter {
    fn from(filter: &TagFilter) -> Self {
        filter.clone()
    }
}

impl From<&HashMap<String, String>> for TagFilter {
    fn from(required: &HashMap<String, String>) -> Self {
        required
            .iter()
            .fold(TagFilter::new(), |f, (k, v)| f.with_tag(k, v))
    }
}

impl From<HashMap<String, String>> for TagFilter {
    fn from(required: HashMap<String, String>) -> Self {
        TagFilter::from(&required)
    }
}

impl From<Option<&HashMap<String, String>>> for TagFilter {
    fn from(required: Option<&HashMap<String, String>>) -> Self {
        required.map(TagFilter::from).unwrap_or_default()
    }
}

impl From<Option<&TagFilter>> for TagFilter {
    fn from(filter: Option<&TagFilter>) -> Self {
        filter.cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .fold(Tags::new(), |t, (k, v)| t.with(*k, *v).expect("small tags"))
    }

    #[test]
    fn every_condition_must_hold() {
        let filter = TagFilter::new()
            .with_tag("role", "worker")
            .with_tag("gpu", "true");
        assert!(filter.matches(&tags(&[
            ("role", "worker"),
            ("gpu", "true"),
            ("zone", "eu")
        ])));
        assert!(!filter.matches(&tags(&[("role", "worker"), ("gpu", "false")])));
        assert!(!filter.matches(&tags(&[("role", "worker")])));
        assert!(!filter.matches(&tags(&[("role", "director"), ("gpu", "true")])));
    }

    #[test]
    fn presence_and_absence_ignore_the_value() {
        let t = tags(&[("gpu", "a100")]);
        assert!(TagFilter::new().with_tag_present("gpu").matches(&t));
        assert!(!TagFilter::new().without_tag("gpu").matches(&t));
        assert!(TagFilter::new().without_tag("zone").matches(&t));
    }

    #[test]
    fn the_empty_filter_matches_everything() {
        assert!(TagFilter::new().matches(&Tags::new()));
        assert!(TagFilter::from(None::<&HashMap<String, String>>).is_empty());
    }

    #[test]
    fn filters_are_equal_whatever_the_order_of_their_conditions() {
        let a = TagFilter::new().with_tag("a", "1").with_tag_present("b");
        let b = TagFilter::new()
            .with_tag_present("b")
            .with_tag("a", "1")
            .with_tag("a", "1");
        assert_eq!(a, b);
    }

    #[test]
    fn a_map_of_required_values_is_a_filter() {
        let mut map = HashMap::new();
        map.insert("role".to_owned(), "worker".to_owned());
        map.insert("gpu".to_owned(), "true".to_owned());
        let filter = TagFilter::from(Some(&map));
        assert_eq!(
            filter,
            TagFilter::new()
                .with_tag("gpu", "true")
                .with_tag("role", "worker")
        );
        assert_eq!(filter.to_string(), "gpu=true, role=worker");
    }
}
