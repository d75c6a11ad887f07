//! The order flow through the Rust clients that progenitor generates (build.rs) from the committed
//! documents, down-converted to OpenAPI 3.0. Registers a customer, adds a product with a SKU unique
//! to this run, places an order, reads it back from the query-api with min_position until the
//! saga has decided it, and checks what the read models say.
//!
//!   SYSTEM_COMMAND_URL=... SYSTEM_QUERY_URL=... SYSTEM_TOKEN=... cargo run

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

#[allow(dead_code, unused_imports, clippy::all)]
mod command_api {
    include!(concat!(env!("OUT_DIR"), "/command_api.rs"));
}
#[allow(dead_code, unused_imports, clippy::all)]
mod query_api {
    include!(concat!(env!("OUT_DIR"), "/query_api.rs"));
}

use command_api::types::{AddProduct, PlaceOrder, RegisterCustomer, RequestedLine};
use query_api::types::OrderStatus;

const PRICE_CENTS: i64 = 450;
const STOCK: i64 = 10;
const QUANTITY: i64 = 3;
const CREDIT_LIMIT_CENTS: i64 = 100_000;
const DECISION_DEADLINE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| anyhow!("{name} is not set: export it (clients/run-all passes it through)"))
}

/// Names the step, the HTTP status and the problem+json body of a failed call. progenitor types
/// only `application/json` bodies, so the problem details arrive as a byte stream.
async fn failed(
    step: &str,
    error: progenitor_client::Error<progenitor_client::ByteStream>,
) -> anyhow::Error {
    match error {
        progenitor_client::Error::ErrorResponse(response) => {
            let status = response.status();
            let mut stream = response.into_inner().into_inner();
            let mut body = Vec::new();
            while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                match chunk {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(error) => {
                        return anyhow!("{step}: HTTP {status}, body unreadable: {error}");
                    }
                }
            }
            anyhow!("{step}: HTTP {status} {}", String::from_utf8_lossy(&body))
        }
        progenitor_client::Error::UnexpectedResponse(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            anyhow!("{step}: undocumented HTTP {status} {body}")
        }
        other => anyhow::Error::new(other).context(step.to_owned()),
    }
}

fn position_header(step: &str, headers: &HeaderMap) -> anyhow::Result<i64> {
    headers
        .get("X-Position")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("{step}: answer has no X-Position header"))
}

macro_rules! expect_eq {
    ($actual:expr, $expected:expr, $what:expr) => {{
        let (actual, expected) = (&$actual, &$expected);
        ensure!(
            actual == expected,
            "{}: expected {:?}, got {:?}",
            $what,
            expected,
            actual
        );
    }};
}

async fn flow() -> anyhow::Result<()> {
    let mut auth = HeaderMap::new();
    auth.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", env("SYSTEM_TOKEN")?))?,
    );
    let http = |headers: HeaderMap| {
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(15))
            .build()
    };
    let commands = command_api::Client::new_with_client(&env("SYSTEM_COMMAND_URL")?, http(auth)?);
    let queries =
        query_api::Client::new_with_client(&env("SYSTEM_QUERY_URL")?, http(HeaderMap::new())?);
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();

    let customer = match commands
        .register_customer()
        .body(
            RegisterCustomer::builder()
                .name(format!("Rust flow {run}"))
                .credit_limit_cents(CREDIT_LIMIT_CENTS),
        )
        .send()
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(error) => return Err(failed("register customer", error).await),
    };

    let sku = format!("FLOW-RS-{run}");
    let product = match commands
        .add_product()
        .body(
            AddProduct::builder()
                .sku(sku.as_str())
                .name(format!("Flow tea {run}"))
                .price_cents(PRICE_CENTS)
                .stock(STOCK),
        )
        .send()
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(error) => return Err(failed("add product", error).await),
    };

    let line = RequestedLine::builder()
        .product_id(product.id)
        .quantity(std::num::NonZeroU64::new(QUANTITY as u64).context("quantity is positive")?);
    let placed = match commands
        .place_order()
        .idempotency_key(format!("flow-rs-{run}").as_str())
        .body(PlaceOrder::builder().customer_id(customer.id).lines(vec![
            RequestedLine::try_from(line).map_err(|e| anyhow!("order line: {e}"))?,
        ]))
        .send()
        .await
    {
        Ok(answer) => {
            expect_eq!(answer.status().as_u16(), 202, "place order: HTTP status");
            answer.into_inner()
        }
        Err(error) => return Err(failed("place order", error).await),
    };
    expect_eq!(
        placed.status,
        Some(command_api::types::OrderStatus::Pending),
        "place order: status"
    );

    // Read our own write, then keep reading until the saga has decided the order.
    let deadline = Instant::now() + DECISION_DEADLINE;
    let (order, seen_at) = loop {
        let answer = match queries
            .get_order()
            .id(placed.id)
            .min_position(placed.position)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(error) => return Err(failed("read order", error).await),
        };
        let seen_at = position_header("read order", answer.headers())?;
        let order = answer.into_inner();
        if order.status != OrderStatus::Pending {
            break (order, seen_at);
        }
        ensure!(
            Instant::now() < deadline,
            "order {} still pending after {:?}",
            placed.id,
            DECISION_DEADLINE
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    expect_eq!(order.status, OrderStatus::Approved, "order status");
    expect_eq!(order.rejection_reason, None, "order rejection_reason");
    expect_eq!(order.customer_id, customer.id, "order customer_id");
    expect_eq!(order.lines.len(), 1, "order line count");
    let line = &order.lines[0];
    expect_eq!(line.product_id, product.id, "line product_id");
    expect_eq!(line.quantity, QUANTITY, "line quantity");
    expect_eq!(line.unit_price_cents, PRICE_CENTS, "line unit_price_cents");
    expect_eq!(
        order.total_cents,
        PRICE_CENTS * QUANTITY,
        "order total_cents (price x quantity)"
    );

    // The reservations precede the approval, so read models at its position show them.
    let stock = match queries
        .get_product()
        .id(product.id)
        .min_position(seen_at)
        .send()
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(error) => return Err(failed("read product", error).await),
    };
    expect_eq!(stock.sku, sku, "product sku");
    expect_eq!(stock.stock_on_hand, STOCK, "product stock_on_hand");
    expect_eq!(stock.stock_reserved, QUANTITY, "product stock_reserved");
    expect_eq!(
        stock.stock_available,
        STOCK - QUANTITY,
        "product stock_available"
    );

    let credit = match queries
        .get_customer()
        .id(customer.id)
        .min_position(seen_at)
        .send()
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(error) => return Err(failed("read customer", error).await),
    };
    expect_eq!(
        credit.credit_reserved_cents,
        PRICE_CENTS * QUANTITY,
        "customer credit_reserved_cents"
    );
    expect_eq!(
        credit.credit_available_cents,
        CREDIT_LIMIT_CENTS - PRICE_CENTS * QUANTITY,
        "customer credit_available_cents"
    );

    println!(
        "rust flow ok: order {} approved, total {} cents, {} of {} reserved (position {seen_at})",
        order.id, order.total_cents, stock.stock_reserved, stock.stock_on_hand
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match flow().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rust flow failed: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
