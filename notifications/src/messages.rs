//! What a customer is told, and when: a message when an order is approved, rejected, cancelled
//! or shipped. Pure: from a public event to a draft, so the wording is tested without a broker or
//! a database.

use integration_events::{IntegrationEvent, rejection_reasons};
use uuid::Uuid;

/// A message to a customer about one of their orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub customer_id: Uuid,
    pub order_id: Uuid,
    /// `approved`, `rejected`, `cancelled` or `shipped`.
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

/// The message `event` calls for, if any (other events tell a customer nothing).
pub fn compose(event: &IntegrationEvent) -> Option<Draft> {
    let draft = |customer_id: Uuid, order_id: Uuid, kind, subject: &str, body: String| Draft {
        customer_id,
        order_id,
        kind,
        subject: subject.to_owned(),
        body,
    };
    match event {
        IntegrationEvent::OrderApproved(order) => Some(draft(
            order.customer_id,
            order.order_id,
            "approved",
            "Your order is confirmed",
            format!(
                "Good news: your order {} for {} is confirmed. We will tell you when it ships.",
                short(order.order_id),
                amount(order.total_cents)
            ),
        )),
        IntegrationEvent::OrderRejected(order) => {
            let why = match order.reason.as_str() {
                rejection_reasons::INSUFFICIENT_STOCK => {
                    "some of its items are out of stock".to_owned()
                }
                rejection_reasons::CREDIT_LIMIT_EXCEEDED => {
                    "it exceeds your available credit".to_owned()
                }
                other => format!("of {}", other.replace('_', " ")),
            };
            Some(draft(
                order.customer_id,
                order.order_id,
                "rejected",
                "We could not accept your order",
                format!(
                    "Sorry: we could not accept your order {} for {}, because {why}. Nothing has been charged.",
                    short(order.order_id),
                    amount(order.total_cents)
                ),
            ))
        }
        IntegrationEvent::OrderCancelled(order) => {
            let reason = order
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|reason| !reason.is_empty())
                .map(|reason| format!(" (reason given: {reason})"))
                .unwrap_or_default();
            Some(draft(
                order.customer_id,
                order.order_id,
                "cancelled",
                "Your order was cancelled",
                format!(
                    "Your order {} for {} was cancelled{reason}. Nothing has been charged.",
                    short(order.order_id),
                    amount(order.total_cents)
                ),
            ))
        }
        IntegrationEvent::OrderShipped(order) => Some(draft(
            order.customer_id,
            order.order_id,
            "shipped",
            "Your order is on its way",
            format!(
                "Your order {} for {} has shipped.",
                short(order.order_id),
                amount(order.total_cents)
            ),
        )),
        IntegrationEvent::OrderPlaced(_)
        | IntegrationEvent::CustomerRegistered(_)
        | IntegrationEvent::ProductAdded(_)
        | IntegrationEvent::ProductRestocked(_) => None,
    }
}

/// The first block of an order id: what a customer reads in a message.
fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// Cents as an amount with two decimals: `4100` is `41.00`.
fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use integration_events::{
        OrderApproved, OrderCancelled, OrderPlaced, OrderRejected, OrderShipped,
    };

    use super::*;

    #[test]
    fn each_outcome_of_an_order_tells_its_customer_what_happened() {
        let (order_id, customer_id) = (Uuid::new_v4(), Uuid::new_v4());
        let short_id = &order_id.simple().to_string()[..8];
        let cases = [
            (
                IntegrationEvent::OrderApproved(OrderApproved {
                    order_id,
                    customer_id,
                    total_cents: 4_100,
                }),
                "approved",
                "is confirmed",
            ),
            (
                IntegrationEvent::OrderRejected(OrderRejected {
                    order_id,
                    customer_id,
                    total_cents: 4_100,
                    reason: "credit_limit_exceeded".into(),
                }),
                "rejected",
                "exceeds your available credit",
            ),
            (
                IntegrationEvent::OrderRejected(OrderRejected {
                    order_id,
                    customer_id,
                    total_cents: 4_100,
                    reason: "address_unknown".into(),
                }),
                "rejected",
                "because of address unknown",
            ),
            (
                IntegrationEvent::OrderCancelled(OrderCancelled {
                    order_id,
                    customer_id,
                    total_cents: 4_100,
                    reason: Some("changed my mind".into()),
                }),
                "cancelled",
                "(reason given: changed my mind)",
            ),
            (
                IntegrationEvent::OrderShipped(OrderShipped {
                    order_id,
                    customer_id,
                    total_cents: 4_100,
                }),
                "shipped",
                "has shipped",
            ),
        ];
        for (event, kind, says) in cases {
            let draft = compose(&event).expect("a message");
            assert_eq!(
                (draft.kind, draft.customer_id, draft.order_id),
                (kind, customer_id, order_id)
            );
            assert!(draft.body.contains(says), "{}", draft.body);
            assert!(draft.body.contains(short_id), "{}", draft.body);
            assert!(draft.body.contains("41.00"), "{}", draft.body);
        }
        let placed = IntegrationEvent::OrderPlaced(OrderPlaced {
            order_id,
            customer_id,
            lines: vec![],
            total_cents: 1,
        });
        assert_eq!(compose(&placed), None);
    }

    #[test]
    fn amounts_have_two_decimals() {
        assert_eq!(amount(4_100), "41.00");
        assert_eq!(amount(5), "0.05");
        assert_eq!(amount(-250), "-2.50");
    }
}
