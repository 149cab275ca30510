//! Free text from people (override reasons, names, anything a request carries) on its way in
//! and out. Characters that could forge a log line or drive a terminal are refused on the way
//! in and escaped on the way out, so text stored before the check cannot do harm either.
//!
//! Refused: control characters (C0, DEL and C1: newline, carriage return, escape, the
//! one-byte CSI, ...), the Unicode line and paragraph separators, and the bidirectional
//! embedding, override and isolate characters (which make text display in another order than
//! it is stored).

use std::borrow::Cow;
use std::fmt;

/// A refused character in a text: where, which, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Its position, counting characters from 1.
    pub position: usize,
    /// The character.
    pub character: char,
    /// What kind of character it is.
    pub kind: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "character {} is U+{:04X}",
            self.position,
            u32::from(self.character)
        )?;
        if let Some(name) = name(self.character) {
            write!(f, " ({name})")?;
        }
        write!(f, ", {}", self.kind)
    }
}

/// Why `character` is refused in free text, or `None` when it is fine.
pub fn refusal(character: char) -> Option<&'static str> {
    match character {
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some("a control character"),
        '\u{2028}' | '\u{2029}' => Some("a line separator"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            Some("a bidirectional formatting character")
        }
        _ => None,
    }
}

/// The first refused character of `text`, if any.
pub fn first_refused(text: &str) -> Option<Refused> {
    text.chars().enumerate().find_map(|(index, character)| {
        refusal(character).map(|kind| Refused {
            position: index + 1,
            character,
            kind,
        })
    })
}

/// `text` with every refused character written as a `\uXXXX` escape, safe to print to a
/// terminal or a log line.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_where(text, |character| refusal(character).is_some())
}

/// A JSON document (compact or pretty) made safe to print to a terminal, and still the same
/// JSON: refused characters inside strings are written as `\uXXXX` escapes, while the line
/// feeds of pretty printing (which JSON strings never hold raw) stay.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    escape_where(json, |character| {
        character != '\n' && refusal(character).is_some()
    })
}

fn escape_where(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if escaped(character) {
            out.push_str(&format!("\\u{:04x}", u32::from(character)));
        } else {
            out.push(character);
        }
    }
    Cow::Owned(out)
}

/// The names of the refused characters people meet most.
fn name(character: char) -> Option<&'static str> {
    Some(match character {
        '\t' => "tab",
        '\n' => "line feed",
        '\r' => "carriage return",
        '\u{1b}' => "escape",
        '\u{7f}' => "delete",
        '\u{9b}' => "control sequence introducer",
        '\u{2028}' => "line separator",
        '\u{2029}' => "paragraph separator",
        '\u{202a}' => "left-to-right embedding",
        '\u{202b}' => "right-to-left embedding",
        '\u{202c}' => "pop directional formatting",
        '\u{202d}' => "left-to-right override",
        '\u{202e}' => "right-to-left override",
        '\u{2066}' => "left-to-right isolate",
        '\u{2067}' => "right-to-left isolate",
        '\u{2068}' => "first strong isolate",
        '\u{2069}' => "pop directional isolate",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_separator_and_bidi_characters_are_found_with_their_position() {
        let refused = first_refused("release\u{1b}]0;pwned\u{7}").unwrap();
        assert_eq!(refused.position, 8);
        assert_eq!(
            refused.to_string(),
            "character 8 is U+001B (escape), a control character"
        );
        assert_eq!(
            first_refused("ok\u{202e}txt.exe").unwrap().to_string(),
            "character 3 is U+202E (right-to-left override), a bidirectional formatting character"
        );
        assert_eq!(
            first_refused("a\u{2028}b").unwrap().kind,
            "a line separator"
        );
        assert_eq!(first_refused("\u{85}").unwrap().kind, "a control character");
        assert_eq!(
            first_refused("Release rehearsal für Ünïcødé, العربية, 日本語 🚀"),
            None
        );
    }

    #[test]
    fn escaping_leaves_ordinary_text_alone_and_neutralises_the_rest() {
        assert!(matches!(escape("plain text"), Cow::Borrowed("plain text")));
        assert_eq!(
            escape("a\nINFO forged\u{1b}[2J\u{202e}"),
            "a\\u000aINFO forged\\u001b[2J\\u202e"
        );
        let value = serde_json::json!({"reason": "x\u{202e}y\u{9b}\n"});
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let escaped = escape_json(&pretty);
        assert!(!escaped.contains('\u{202e}') && !escaped.contains('\u{9b}'));
        assert_eq!(escaped.lines().count(), pretty.lines().count());
        let parsed: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(parsed, value, "the escaped JSON is the same JSON");
    }
}
