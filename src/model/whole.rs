//! Integers in JSON request bodies as JSON Schema counts them: `5` and `5.0` are both the integer
//! 5 (a client that builds JSON from floating-point numbers, as Python and JavaScript may, must
//! not be refused for it); `5.5` is refused, and so is anything past JSON's int64 (the OpenAPI
//! document's `format` for these fields).

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// A whole number that fits `T`, written as a JSON integer or as a float with no fraction.
pub fn number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    let n = serde_json::Number::deserialize(d)?;
    let whole: i128 = if let Some(i) = n.as_i64() {
        i.into()
    } else if let Some(u) = n.as_u64() {
        u.into()
    } else {
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e38 => f as i128,
            _ => return Err(D::Error::custom(format!("{n} is not a whole number"))),
        }
    };
    i64::try_from(whole)
        .ok()
        .and_then(|w| T::try_from(w.into()).ok())
        .ok_or_else(|| D::Error::custom(format!("{n} is out of range")))
}

/// [`number`] for an optional field (`null` or absent = `None`; use with `#[serde(default)]`).
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    #[derive(Deserialize)]
    struct Wrap<T>(#[serde(deserialize_with = "number")] T)
    where
        T: TryFrom<i128>;
    Ok(Option::<Wrap<T>>::deserialize(d)?.map(|Wrap(v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct S {
        #[serde(deserialize_with = "number")]
        a: u32,
        #[serde(default, deserialize_with = "optional")]
        b: Option<i64>,
    }

    #[test]
    fn whole_floats_count_as_integers_fractions_do_not() {
        let s: S = serde_json::from_str(r#"{"a": 1256.0, "b": -3}"#).unwrap();
        assert_eq!((s.a, s.b), (1256, Some(-3)));
        let s: S = serde_json::from_str(r#"{"a": 7, "b": null}"#).unwrap();
        assert_eq!((s.a, s.b), (7, None));
        let s: S = serde_json::from_str(r#"{"a": 7}"#).unwrap();
        assert_eq!(s.b, None);
        assert!(serde_json::from_str::<S>(r#"{"a": 1.5}"#).is_err());
        assert!(serde_json::from_str::<S>(r#"{"a": -1}"#).is_err());
        assert!(serde_json::from_str::<S>(r#"{"a": 4294967296}"#).is_err());
        assert!(serde_json::from_str::<S>(r#"{"a": "7"}"#).is_err());
        let big = r#"{"a": 1, "b": 9223372036854775808}"#;
        assert!(serde_json::from_str::<S>(big).is_err(), "past int64");
    }
}
