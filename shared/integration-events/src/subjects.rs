//! The subject scheme: `<prefix>.events.<aggregate>.<event>`, e.g. `shop.events.order.approved`.
//! A consumer filters with NATS wildcards: `shop.events.>` (everything), `shop.events.order.>`
//! (every order event), `shop.events.*.placed`, or one exact subject. The prefix is configurable
//! (`NATS_SUBJECT_PREFIX`) so that several systems, or tests, can share one NATS.

/// The subject of events of the type named `event_type` (e.g. `order.approved`, an
/// `EventType`'s `name` and the envelope's `type`).
pub fn of_type(prefix: &str, event_type: &str) -> String {
    format!("{prefix}.events.{event_type}")
}

/// Every integration event: the stream's subject filter.
pub fn all(prefix: &str) -> String {
    format!("{prefix}.events.>")
}

/// Every event of one aggregate type (`customer`, `product` or `order`).
pub fn of_aggregate(prefix: &str, aggregate: &str) -> String {
    format!("{prefix}.events.{aggregate}.>")
}

/// Checks a subject prefix: one or more dot-separated tokens of letters, digits, `-` and `_`
/// (no wildcards, no spaces, no empty token).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let valid = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{prefix:?} is not a usable subject prefix: use dot-separated tokens of letters, digits, '-' and '_' (e.g. shop or acme.shop)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;

    #[test]
    fn subjects_follow_the_scheme() {
        assert_eq!(
            of_type("shop", EventType::ORDER_APPROVED.name),
            "shop.events.order.approved"
        );
        assert_eq!(all("acme.shop"), "acme.shop.events.>");
        assert_eq!(of_aggregate("shop", "order"), "shop.events.order.>");
        for event_type in EventType::ALL {
            let subject = of_type("shop", event_type.name);
            assert!(
                subject.starts_with(&format!("shop.events.{}.", event_type.aggregate)),
                "{subject}"
            );
        }
    }

    #[test]
    fn prefixes_without_wildcards_or_empty_tokens_are_accepted() {
        assert!(check_prefix("shop").is_ok());
        assert!(check_prefix("acme.shop-1_test").is_ok());
        for bad in ["", "shop.", ".shop", "shop.*", "shop.>", "a b", "shop..x"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
