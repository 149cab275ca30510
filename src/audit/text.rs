//! [`Text`]: a string of an audit entry that equal strings of other entries share.
//!
//! A boundary records an entry per action, and most of an entry's strings are the same as its
//! neighbours' (the actor, the event, the environment, the reason, the result, often the
//! states before and after). Entries parsed or recorded together share one copy of each
//! distinct value through an [`Interner`], so 10,000 entries keep one `"curfew"`, not 10,000.

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A string of an audit entry: shared, immutable, serialised as a plain string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(Arc<str>);

impl Text {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(text.into())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(text.into())
    }
}

impl From<Arc<str>> for Text {
    /// Shares `text`, with no copy.
    fn from(text: Arc<str>) -> Self {
        Text(text)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        **self == *other.0
    }
}

/// Hands out one shared copy of each distinct value it has seen, up to [`Interner::LIMIT`]
/// values; beyond that a value is kept as it is (entries then share less, nothing is lost).
#[derive(Default)]
pub struct Interner {
    known: HashSet<Arc<str>>,
}

impl Interner {
    /// Distinct values kept at most.
    pub const LIMIT: usize = 4096;

    /// Replaces `text` by the shared copy of its value.
    pub fn intern(&mut self, text: &mut Text) {
        if let Some(known) = self.known.get(&text.0) {
            text.0 = Arc::clone(known);
        } else if self.known.len() < Self::LIMIT {
            self.known.insert(Arc::clone(&text.0));
        }
    }

    /// Replaces `text`, if any, by the shared copy of its value.
    pub fn intern_optional(&mut self, text: &mut Option<Text>) {
        if let Some(text) = text {
            self.intern(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_interned_share_one_copy_and_serialise_as_strings() {
        let mut interner = Interner::default();
        let mut first = Text::from("scale_down");
        let mut second = Text::from(String::from("scale_down"));
        let mut other = Text::from("scale_up");
        assert!(!Arc::ptr_eq(&first.0, &second.0));
        for text in [&mut first, &mut second, &mut other] {
            interner.intern(text);
        }
        assert!(Arc::ptr_eq(&first.0, &second.0));
        assert!(!Arc::ptr_eq(&first.0, &other.0));
        assert_eq!(first, "scale_down");
        assert_eq!(serde_json::to_string(&second).unwrap(), "\"scale_down\"");
        let parsed: Text = serde_json::from_str("\"scale_up\"").unwrap();
        assert_eq!(parsed, other);
    }

    #[test]
    fn an_interner_keeps_at_most_its_limit_of_values() {
        let mut interner = Interner::default();
        for n in 0..Interner::LIMIT + 10 {
            interner.intern(&mut Text::from(n.to_string()));
        }
        assert_eq!(interner.known.len(), Interner::LIMIT);
        let mut late = Text::from((Interner::LIMIT + 5).to_string());
        let before = Arc::as_ptr(&late.0);
        interner.intern(&mut late);
        assert_eq!(Arc::as_ptr(&late.0), before, "kept as it is");
    }
}
