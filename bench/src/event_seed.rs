//! Seeds the event log fast with `COPY ... FROM STDIN`: valid domain events (built from the
//! domain's own types and stored at their current schema versions), so that the projector folds
//! them like any others. The table's trigger still assigns every position and transaction id.
//!
//! - `seed_orders`: customers and products, then orders each placed, reserved and approved as the
//!   orchestrated saga would record them: four events per one-line order.
//! - `seed_hot_product`: one product with a long history of restocks.

use std::time::{Duration, Instant};

use anyhow::Context;
use domain::{
    DomainEvent, StreamType, customer::CustomerEvent, event_to_parts, order::OrderEvent,
    order::OrderLine, product::ProductEvent,
};
use sqlx::{PgPool, postgres::PgPoolCopyExt};
use uuid::Uuid;

/// Rows per `COPY`: each is one transaction, and a transaction may append at most 2^20 events.
const ROWS_PER_COPY: usize = 250_000;
const SEND_BYTES: usize = 1 << 20;

/// Encodes events as COPY text rows and sends them in transactions of `ROWS_PER_COPY`.
struct Copier<'a> {
    pool: &'a PgPool,
    buffer: Vec<u8>,
    rows_in_copy: usize,
    copy: Option<sqlx::postgres::PgCopyIn<sqlx::pool::PoolConnection<sqlx::Postgres>>>,
    rows: u64,
}

impl<'a> Copier<'a> {
    fn new(pool: &'a PgPool) -> Self {
        Self {
            pool,
            buffer: Vec::with_capacity(SEND_BYTES * 2),
            rows_in_copy: 0,
            copy: None,
            rows: 0,
        }
    }

    async fn push<E: DomainEvent>(
        &mut self,
        stream_id: Uuid,
        stream_type: StreamType,
        version: i64,
        event: &E,
    ) -> anyhow::Result<()> {
        if self.copy.is_none() {
            self.copy = Some(
                self.pool
                    .copy_in_raw(
                        "COPY events (stream_id, stream_type, stream_version, event_type, schema_version, data) FROM STDIN",
                    )
                    .await?,
            );
        }
        let (event_type, data) = event_to_parts(event);
        let schema_version = event_store::upcast::current_schema_version(&event_type);
        let data = serde_json::to_string(&data)?;
        let row = format!(
            "{stream_id}\t{}\t{version}\t{event_type}\t{schema_version}\t{}\n",
            stream_type.as_str(),
            copy_text(&data)
        );
        self.buffer.extend_from_slice(row.as_bytes());
        self.rows_in_copy += 1;
        self.rows += 1;
        if self.buffer.len() >= SEND_BYTES {
            self.send().await?;
        }
        if self.rows_in_copy >= ROWS_PER_COPY {
            self.finish_copy().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> anyhow::Result<()> {
        if let Some(copy) = &mut self.copy
            && !self.buffer.is_empty()
        {
            copy.send(std::mem::take(&mut self.buffer)).await?;
        }
        Ok(())
    }

    async fn finish_copy(&mut self) -> anyhow::Result<()> {
        self.send().await?;
        if let Some(copy) = self.copy.take() {
            copy.finish().await.context("COPY into events")?;
        }
        self.rows_in_copy = 0;
        Ok(())
    }
}

/// COPY's text format: a backslash, tab, newline or carriage return in a field is escaped.
fn copy_text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c => escaped.push(c),
        }
    }
    escaped
}

pub struct Seeded {
    pub events: u64,
    pub elapsed: Duration,
}

/// About `events` events: 1,000 customers and 1,000 products, then one-line orders placed,
/// reserved and approved (four events each).
pub async fn seed_orders(pool: &PgPool, events: u64) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let mut copier = Copier::new(pool);
    let customers: Vec<Uuid> = (0..1_000).map(|_| Uuid::now_v7()).collect();
    let products: Vec<Uuid> = (0..1_000).map(|_| Uuid::now_v7()).collect();
    let mut customer_versions = vec![1_i64; customers.len()];
    let mut product_versions = vec![1_i64; products.len()];
    for (n, customer) in customers.iter().enumerate() {
        let event = CustomerEvent::CustomerRegistered {
            name: format!("Seeded customer {n}"),
            credit_limit_cents: 1_000_000_000_000_000,
        };
        copier
            .push(*customer, StreamType::Customer, 1, &event)
            .await?;
    }
    for (n, product) in products.iter().enumerate() {
        let event = ProductEvent::ProductAdded {
            sku: format!("SEED-{}", product.simple()),
            name: format!("Seeded tea {n}"),
            price_cents: 100 + n as i64,
            stock: 1_000_000_000,
        };
        copier
            .push(*product, StreamType::Product, 1, &event)
            .await?;
    }
    let orders = events.saturating_sub(2_000) / 4;
    for n in 0..orders as usize {
        let (c, p) = (n % customers.len(), (n * 7) % products.len());
        let order = Uuid::now_v7();
        let quantity = 1 + (n % 3) as i64;
        let unit_price_cents = 100 + p as i64;
        let total_cents = quantity * unit_price_cents;
        let placed = OrderEvent::OrderPlaced {
            customer_id: customers[c],
            lines: vec![OrderLine {
                product_id: products[p],
                quantity,
                unit_price_cents,
            }],
            total_cents,
        };
        copier.push(order, StreamType::Order, 1, &placed).await?;
        product_versions[p] += 1;
        let reserved = ProductEvent::StockReserved {
            order_id: order,
            quantity,
        };
        copier
            .push(
                products[p],
                StreamType::Product,
                product_versions[p],
                &reserved,
            )
            .await?;
        customer_versions[c] += 1;
        let credit = CustomerEvent::CreditReserved {
            order_id: order,
            amount_cents: total_cents,
        };
        copier
            .push(
                customers[c],
                StreamType::Customer,
                customer_versions[c],
                &credit,
            )
            .await?;
        copier
            .push(order, StreamType::Order, 2, &OrderEvent::OrderApproved {})
            .await?;
    }
    copier.finish_copy().await?;
    Ok(Seeded {
        events: copier.rows,
        elapsed: started.elapsed(),
    })
}

/// A product with `events` events: added with no stock, then restocked one unit at a time.
pub async fn seed_hot_product(pool: &PgPool, events: u64) -> anyhow::Result<(Uuid, Seeded)> {
    let started = Instant::now();
    let mut copier = Copier::new(pool);
    let product = Uuid::now_v7();
    let added = ProductEvent::ProductAdded {
        sku: format!("HOT-{}", product.simple()),
        name: "Hot tea".to_owned(),
        price_cents: 250,
        stock: 0,
    };
    copier.push(product, StreamType::Product, 1, &added).await?;
    for version in 2..=events.max(1) as i64 {
        let restocked = ProductEvent::ProductRestocked { quantity: 1 };
        copier
            .push(product, StreamType::Product, version, &restocked)
            .await?;
    }
    copier.finish_copy().await?;
    Ok((
        product,
        Seeded {
            events: copier.rows,
            elapsed: started.elapsed(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::copy_text;

    #[test]
    fn copy_text_escapes_what_copy_would_read_as_a_delimiter_or_an_escape() {
        assert_eq!(copy_text(r#"{"a":"b"}"#), r#"{"a":"b"}"#);
        assert_eq!(copy_text("a\\b\tc\nd\re"), r"a\\b\tc\nd\re");
    }
}
