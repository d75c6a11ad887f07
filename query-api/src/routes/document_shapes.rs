//! The query-api answers the stored documents as they are, so the types that document its
//! answers must have exactly the documents' shape: every document the projector writes must
//! survive a round trip through its response type unchanged (a field missing from either side
//! would be lost, and the JSON would differ).

use chrono::Utc;
use domain::{
    customer::CustomerEvent,
    order::{OrderEvent, OrderLine, RejectionReason},
    product::ProductEvent,
};
use read_models::{CustomerView, EventMeta, OrderView, ProductView};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{customers::CustomerResponse, orders::OrderResponse, products::ProductResponse};

fn meta(version: i64) -> EventMeta {
    EventMeta {
        stream_id: Uuid::new_v4(),
        version,
        recorded_at: Utc::now(),
    }
}

fn assert_round_trips<Document: Serialize, Response: Serialize + DeserializeOwned>(
    document: &Document,
) {
    let stored = serde_json::to_value(document).expect("document serializes");
    let response: Response = serde_json::from_value(stored.clone()).expect("response decodes");
    let answered = serde_json::to_value(response).expect("response serializes");
    assert_eq!(answered, stored);
}

#[test]
fn every_stored_document_is_exactly_its_documented_response() {
    let placed = OrderEvent::OrderPlaced {
        customer_id: Uuid::new_v4(),
        lines: vec![OrderLine {
            product_id: Uuid::new_v4(),
            quantity: 2,
            unit_price_cents: 150,
        }],
        total_cents: 300,
    };
    let order = OrderView::fold(None, &meta(1), &placed);
    let rejected = OrderView::fold(
        order.clone(),
        &meta(2),
        &OrderEvent::OrderRejected {
            reason: RejectionReason::CreditLimitExceeded,
        },
    );
    for order in [order, rejected] {
        assert_round_trips::<_, OrderResponse>(&order.expect("an order document"));
    }
    let product = ProductView::fold(
        None,
        &meta(1),
        &ProductEvent::ProductAdded {
            sku: "TEA".into(),
            name: "Tea".into(),
            price_cents: 100,
            stock: 5,
        },
    );
    assert_round_trips::<_, ProductResponse>(&product.expect("a product document"));
    let customer = CustomerView::fold(
        None,
        &meta(1),
        &CustomerEvent::CustomerRegistered {
            name: "Ada".into(),
            credit_limit_cents: 1_000,
        },
    );
    assert_round_trips::<_, CustomerResponse>(&customer.expect("a customer document"));
}
