//! [`Text`]: a JSON string read from a buffer, borrowed from it when it can be.
//!
//! serde borrows a `Cow<str>` field only when the field's type is exactly `Cow<str>`;
//! inside an `Option` it always allocates a `String`. The strings read on every request
//! and answer (an input line's `method` and `url`, an answer's `model`) almost never hold
//! an escape, so they can point into the buffer instead.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// A JSON string: borrowed from the buffer when it holds no escape, else decoded into a
/// `String` of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub(crate) fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Read;
        impl<'de> Visitor<'de> for Read {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_a_plain_string_and_decodes_an_escaped_one() {
        let plain: Text = serde_json::from_str(r#""gpt-4o-mini""#).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("gpt-4o-mini")));
        let escaped: Text = serde_json::from_str(r#""gpt\u002d4o""#).unwrap();
        assert!(matches!(&escaped.0, Cow::Owned(s) if s == "gpt-4o"));
        assert!(serde_json::from_str::<Text>("42").is_err());
        #[derive(serde::Deserialize)]
        struct Field<'a> {
            #[serde(borrow)]
            model: Option<Text<'a>>,
        }
        let field: Field = serde_json::from_str(r#"{"model":"m"}"#).unwrap();
        assert!(matches!(
            field.model.map(Text::into_cow),
            Some(Cow::Borrowed("m"))
        ));
    }
}
