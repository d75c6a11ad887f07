//! What kind of aggregate a stream holds. Stored in `events.stream_type`; a type rather than a
//! string so that every place that reads or compares it is checked by the compiler, and loading
//! an aggregate can refuse a stream of another kind.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamType {
    Customer,
    Product,
    Order,
}

impl StreamType {
    pub const ALL: [Self; 3] = [Self::Customer, Self::Product, Self::Order];

    /// The name stored in the event table (and shown in history and errors).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Product => "product",
            Self::Order => "order",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

impl fmt::Display for StreamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::StreamType;

    #[test]
    fn stream_types_round_trip_through_their_stored_names() {
        for kind in StreamType::ALL {
            assert_eq!(StreamType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(StreamType::parse("Order"), None);
    }
}
