//! Parse, don't validate: values whose constructors refuse bad input, so an invalid value cannot
//! reach a `decide` function. Each refusal names the field it came from.

use serde::{Deserialize, Serialize};

/// One validation failure, as it appears in a problem+json `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where in the body, e.g. `lines[0].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Upper bound on any money amount: keeps every sum of 50 lines far from i64 overflow.
pub const MAX_CENTS: i64 = 1_000_000_000_000_000;
/// Upper bound on any quantity or stock level.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// A non-negative amount of money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cents(i64);

impl Cents {
    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        if (0..=MAX_CENTS).contains(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                field,
                format!("must be between 0 and {MAX_CENTS} cents"),
            ))
        }
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A positive number of units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        if (1..=MAX_QUANTITY).contains(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                field,
                format!("must be between 1 and {MAX_QUANTITY}"),
            ))
        }
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stock-keeping unit: 1 to 64 of `A-Z a-z 0-9 . _ -`. Unique across products, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku(String);

impl Sku {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if value.is_empty() || value.len() > Self::MAX_CHARS || !value.chars().all(valid_char) {
            return Err(FieldError::new(
                field,
                format!(
                    "must be 1 to {} characters of A-Z, a-z, 0-9, '.', '_' or '-'",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(value.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form uniqueness is checked on.
    pub fn unique_key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_refuse_out_of_range_input_and_name_the_field() {
        assert_eq!(
            Cents::parse("price_cents", -1).map_err(|e| e.field),
            Err("price_cents".to_owned())
        );
        assert!(Cents::parse("price_cents", 0).is_ok());
        assert!(Quantity::parse("quantity", 0).is_err());
        assert!(Quantity::parse("quantity", MAX_QUANTITY + 1).is_err());
        assert_eq!(
            Name::parse("name", "  Ada  ").expect("valid").as_str(),
            "Ada"
        );
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
        assert!(Sku::parse("sku", "ABC-1.x_2").is_ok());
        assert!(Sku::parse("sku", "has space").is_err());
        assert_eq!(Sku::parse("sku", "AbC").expect("valid").unique_key(), "abc");
    }
}
