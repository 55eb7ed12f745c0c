//! Small deserialisation helpers shared by the admin-API parsers.
//!
//! Envoy's admin output is protobuf rendered as JSON: numbers may come as numbers or as
//! strings, keys may be snake_case or camelCase, and most of every document is irrelevant
//! to the facts. These helpers let the typed structs skip what they do not need without
//! allocating for it.

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON string borrowed from the input when it has no escapes (most have none), so a
/// field that is only looked at, never kept, costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Why a document could not be turned into facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Above this the parsers refuse the input instead of trying: the read-file limit of the
/// actions, so anything bigger was cut short anyway.
pub const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;

/// Rejects inputs that are empty or over `limit`, and drops a UTF-8 byte-order mark,
/// which serde_json refuses but some editors and tools write.
pub(crate) fn check_input<'a>(
    what: &str,
    bytes: &'a [u8],
    limit: usize,
) -> Result<&'a [u8], ParseError> {
    if bytes.len() > limit {
        return Err(ParseError(format!(
            "{what} is {} bytes; the limit is {limit} bytes",
            bytes.len()
        )));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError(format!("{what} is empty")));
    }
    Ok(bytes)
}

/// Words a serde_json error so a reader can tell a cut-off download from a wrong document.
pub(crate) fn json_error(what: &str, e: &serde_json::Error) -> ParseError {
    if e.is_eof() {
        ParseError(format!("{what} ends early ({e}); was it truncated?"))
    } else {
        ParseError(format!("{what} is not the expected JSON: {e}"))
    }
}

/// The number of elements of a JSON array, counted without keeping them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count(pub usize);

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0usize;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_none<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// A protobuf uint32 that may arrive as a number or a numeric string; anything that is not
/// a number in range becomes `None` rather than failing the whole document.
pub(crate) fn lenient_u32<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    struct U32Visitor;
    impl<'de> Visitor<'de> for U32Visitor {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(u32::try_from(v).ok())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u32::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            let whole = v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v);
            // The range check above makes the cast exact.
            Ok(whole.then_some(v as u32))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(U32Visitor)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // Some encoders render UInt32Value wrappers as {"value": n}.
            let mut found = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "value" {
                    found = map.next_value_seed(LenientU32Seed)?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    deserializer.deserialize_any(U32Visitor)
}

struct LenientU32Seed;

impl<'de> de::DeserializeSeed<'de> for LenientU32Seed {
    type Value = Option<u32>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        lenient_u32(deserializer)
    }
}

/// A string field that tolerates other scalar types (numbers, booleans) by rendering them,
/// and ignores objects and arrays; protobuf Struct values in node metadata are like that.
pub(crate) fn lenient_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct StringVisitor;
    impl<'de> Visitor<'de> for StringVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(StringVisitor)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    deserializer.deserialize_any(StringVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Port {
        #[serde(default, deserialize_with = "lenient_u32")]
        port: Option<u32>,
    }

    fn port(json: &str) -> Option<u32> {
        serde_json::from_str::<Port>(json)
            .map(|p| p.port)
            .unwrap_or(Some(999_999))
    }

    #[test]
    fn lenient_u32_takes_numbers_strings_and_wrappers() {
        assert_eq!(port(r#"{"port": 80}"#), Some(80));
        assert_eq!(port(r#"{"port": "8080"}"#), Some(8080));
        assert_eq!(port(r#"{"port": {"value": 443}}"#), Some(443));
        assert_eq!(port(r#"{"port": -1}"#), None);
        assert_eq!(port(r#"{"port": 1.5}"#), None);
        assert_eq!(port(r#"{"port": null}"#), None);
        assert_eq!(port(r#"{"port": [1]}"#), None);
        assert_eq!(port(r#"{}"#), None);
    }

    #[test]
    fn str_borrows_unless_escaped() {
        let plain: Vec<Str<'_>> = serde_json::from_str(r#"["a/b", "a\/b"]"#).unwrap_or_default();
        assert!(matches!(plain[0].0, Cow::Borrowed("a/b")));
        assert!(matches!(&plain[1].0, Cow::Owned(s) if s == "a/b"));
        assert!(serde_json::from_str::<Str<'_>>("5").is_err());
    }

    #[test]
    fn count_counts_without_keeping() {
        let c: Count = serde_json::from_str(r#"[{"a": [1,2]}, 2, "x"]"#).unwrap_or_default();
        assert_eq!(c, Count(3));
    }
}
