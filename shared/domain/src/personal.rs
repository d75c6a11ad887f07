//! Personal data: which fields of which events hold it, and what shows in their place once the
//! person it belongs to asked to be forgotten. The event store keeps these fields encrypted with
//! a key of the stream's own (the subject's) and destroys the key on erasure
//! (crypto-shredding): every reader then sees `ERASED`. To mark a new field personal, name it
//! here; nothing else changes.

/// What every reader sees in place of erased personal data.
pub const ERASED: &str = "[erased]";

/// The event whose stream's personal data is erased from then on.
pub const ERASURE_EVENT: &str = "CustomerForgotten";

/// Each event type with personal fields, and those fields (top-level keys of its data). Their
/// subject is the stream the event belongs to.
pub const PERSONAL_FIELDS: &[(&str, &[&str])] = &[("CustomerRegistered", &["name"])];

/// The personal fields of an event type's data (none for most).
pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
    PERSONAL_FIELDS
        .iter()
        .find(|(kind, _)| *kind == event_type)
        .map_or(&[], |(_, fields)| fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_customers_name_is_personal_today() {
        assert_eq!(personal_fields("CustomerRegistered"), ["name"]);
        assert!(personal_fields("OrderPlaced").is_empty());
        assert!(personal_fields(ERASURE_EVENT).is_empty());
    }
}
