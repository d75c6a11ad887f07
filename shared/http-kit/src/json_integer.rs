//! JSON Schema counts `2.0` as an integer, and so do the OpenAPI documents and the clients
//! generated from them; serde does not. Integer body fields use this to accept a number with no
//! fractional part, while `2.5` (or a string) stays a 400.

use serde::{Deserialize, Deserializer, de::Error};

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(i64),
    Float(f64),
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Number::deserialize(deserializer)? {
        Number::Integer(value) => Ok(value),
        Number::Float(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Ok(value as i64),
        Number::Float(value) => Err(D::Error::custom(format!(
            "expected an integer, found {value}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::deserialize")]
        quantity: i64,
    }

    fn parse(json: &str) -> Result<i64, serde_json::Error> {
        serde_json::from_str::<Body>(json).map(|body| body.quantity)
    }

    #[test]
    fn integral_numbers_are_integers_and_fractions_are_not() {
        assert_eq!(parse(r#"{"quantity": 3}"#).ok(), Some(3));
        assert_eq!(parse(r#"{"quantity": 3.0}"#).ok(), Some(3));
        assert_eq!(parse(r#"{"quantity": -2}"#).ok(), Some(-2));
        assert!(parse(r#"{"quantity": 2.5}"#).is_err());
        assert!(parse(r#"{"quantity": "3"}"#).is_err());
        assert!(parse(r#"{"quantity": 1e300}"#).is_err());
    }
}
