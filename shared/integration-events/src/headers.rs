//! The message headers: the envelope's metadata, so that a consumer (or a broker-side filter, or
//! an operator looking at a stream) can route and de-duplicate without parsing the payload. The
//! payload is the whole `Envelope` either way.

use crate::Envelope;

/// The event's id (its position in the shop's log): JetStream drops a second message with the
/// same id within the stream's duplicate window.
pub const MESSAGE_ID: &str = "Nats-Msg-Id";
pub const CONTENT_TYPE: &str = "Content-Type";
/// The envelope's `type`, e.g. `order.approved`.
pub const EVENT_TYPE: &str = "Event-Type";
/// The envelope's `version`: the version of the data's shape.
pub const EVENT_VERSION: &str = "Event-Version";
pub const OCCURRED_AT: &str = "Occurred-At";
pub const AGGREGATE_TYPE: &str = "Aggregate-Type";
pub const AGGREGATE_ID: &str = "Aggregate-Id";
pub const AGGREGATE_VERSION: &str = "Aggregate-Version";
/// Present only when the event has one (and it is printable ASCII, as a header must be).
pub const CORRELATION_ID: &str = "Correlation-Id";
/// Present only when the event has one (and it is printable ASCII).
pub const CAUSATION_ID: &str = "Causation-Id";

/// The headers of the message that carries `envelope`, as (name, value) pairs.
pub fn of(envelope: &Envelope) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (MESSAGE_ID, envelope.id.clone()),
        (CONTENT_TYPE, "application/json".to_owned()),
        (EVENT_TYPE, envelope.event_type.clone()),
        (EVENT_VERSION, envelope.version.to_string()),
        (
            OCCURRED_AT,
            envelope
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        (AGGREGATE_TYPE, envelope.aggregate.kind.clone()),
        (AGGREGATE_ID, envelope.aggregate.id.to_string()),
        (AGGREGATE_VERSION, envelope.aggregate.version.to_string()),
    ];
    for (name, value) in [
        (CORRELATION_ID, &envelope.correlation_id),
        (CAUSATION_ID, &envelope.causation_id),
    ] {
        if let Some(value) = value.as_ref().filter(|v| is_header_value(v)) {
            headers.push((name, value.clone()));
        }
    }
    headers
}

fn is_header_value(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::{Aggregate, IntegrationEvent, OrderShipped};

    #[test]
    fn headers_carry_the_metadata_and_leave_out_what_a_header_cannot_hold() {
        let id = Uuid::new_v4();
        let envelope = Envelope::new(
            7,
            &IntegrationEvent::OrderShipped(OrderShipped {
                order_id: id,
                customer_id: Uuid::new_v4(),
                total_cents: 1,
            }),
            Utc::now(),
            Aggregate {
                kind: "order".into(),
                id,
                version: 4,
            },
            Some("line\r\nbreak".into()),
            Some("5".into()),
        );
        let headers = of(&envelope);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(MESSAGE_ID), Some("7"));
        assert_eq!(get(EVENT_TYPE), Some("order.shipped"));
        assert_eq!(get(EVENT_VERSION), Some("1"));
        assert_eq!(get(AGGREGATE_ID), Some(id.to_string().as_str()));
        assert_eq!(get(AGGREGATE_VERSION), Some("4"));
        assert_eq!(get(CAUSATION_ID), Some("5"));
        assert_eq!(get(CORRELATION_ID), None);
    }
}
