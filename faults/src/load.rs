//! Clients that keep working through a fault, as a careful client would: every command carries
//! an `Idempotency-Key` and is retried with the same key and body until it is answered (no
//! answer at all while a service is down or killed; 503, whose `Retry-After` must be there);
//! every answer is counted, and any answer the contract does not allow is recorded, so a case
//! can assert that there were none.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{RealSystem, random_id};

/// How long a client keeps retrying one command before it gives up (and records that).
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);

/// The customers and products the orders are placed against.
#[derive(Debug, Clone)]
pub struct Shop {
    pub customers: Vec<Uuid>,
    pub products: Vec<Uuid>,
}

impl Shop {
    /// Registers customers with these credit limits and products with these (price, stock).
    pub async fn open(system: &RealSystem, credit_limits: &[i64], products: &[(i64, i64)]) -> Self {
        let tally = Tally::default();
        let mut shop = Self {
            customers: Vec::new(),
            products: Vec::new(),
        };
        for (n, limit) in credit_limits.iter().enumerate() {
            let body = json!({ "name": format!("Customer {n}"), "credit_limit_cents": limit });
            let (_, answer) = send(system, &tally, "/customers", &random_id(), &body, &[201])
                .await
                .expect("customer registered");
            shop.customers.push(id_of(&answer));
        }
        for (n, (price, stock)) in products.iter().enumerate() {
            let body = json!({ "sku": format!("SKU-{}-{n}", random_id()), "name": format!("Product {n}"),
                "price_cents": price, "stock": stock });
            let (_, answer) = send(system, &tally, "/products", &random_id(), &body, &[201])
                .await
                .expect("product added");
            shop.products.push(id_of(&answer));
        }
        tally.assert_clean("opening the shop");
        shop
    }

    /// The order a client places as its `n`-th: a customer and one to three lines, from `seed`.
    fn order_body(&self, seed: usize) -> Value {
        let customer = self.customers[seed % self.customers.len()];
        let first = seed / 7 % self.products.len();
        let lines: Vec<Value> = (0..1 + seed % self.products.len().min(3))
            .map(|k| {
                json!({ "product_id": self.products[(first + k) % self.products.len()],
                        "quantity": 1 + (seed / 3 + k) % 4 })
            })
            .collect();
        json!({ "customer_id": customer, "lines": lines })
    }
}

/// An order the command-api acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub key: String,
    pub id: Uuid,
    pub position: i64,
}

/// What the clients sent and saw.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

#[derive(Debug, Default, Clone)]
pub struct TallyInner {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection refused or reset: a service down or killed).
    pub unanswered: u64,
    /// 2xx answers replayed from an Idempotency-Key record.
    pub replayed: u64,
    /// Answers the contract does not allow here, and commands given up on.
    pub violations: Vec<String>,
    pub orders: Vec<PlacedOrder>,
}

impl Tally {
    pub fn snapshot(&self) -> TallyInner {
        self.inner.lock().expect("lock").clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut TallyInner) -> R) -> R {
        f(&mut self.inner.lock().expect("lock"))
    }

    pub fn violation(&self, what: String) {
        self.with(|t| t.violations.push(what));
    }

    /// Panics, listing them, if any answer broke the contract.
    pub fn assert_clean(&self, during: &str) {
        let tally = self.snapshot();
        assert!(
            tally.violations.is_empty(),
            "{} answers broke the contract during {during}, e.g.:\n{}",
            tally.violations.len(),
            tally.violations[..tally.violations.len().min(10)].join("\n")
        );
    }

    /// Counts one answer; a 503 must carry `Retry-After` and a problem+json body.
    fn answered(&self, what: &str, response: &Response) {
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let problem = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"application/problem+json"));
        let replayed = response.headers().contains_key("idempotent-replayed");
        self.with(|t| {
            t.requests += 1;
            *t.statuses.entry(status.as_u16()).or_default() += 1;
            if replayed {
                t.replayed += 1;
            }
            if status == StatusCode::SERVICE_UNAVAILABLE && !(retry_after && problem) {
                t.violations
                    .push(format!("{what}: a 503 without Retry-After or problem+json"));
            }
        });
    }

    fn unanswered(&self) {
        self.with(|t| {
            t.requests += 1;
            t.unanswered += 1;
        });
    }
}

/// Sends a command with `key` until it is answered with something other than 503, retrying the
/// same key and body; returns the status and body if the status is one of `expected`, else
/// records a violation. Gives up (a violation too) after `GIVE_UP_AFTER`.
pub async fn send(
    system: &RealSystem,
    tally: &Tally,
    path: &str,
    key: &str,
    body: &Value,
    expected: &[u16],
) -> Option<(u16, Value)> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match system
            .command(path)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
        {
            Err(_) => tally.unanswered(),
            Ok(response) => {
                tally.answered(path, &response);
                let status = response.status().as_u16();
                if status != 503 {
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    if expected.contains(&status) {
                        return Some((status, answer));
                    }
                    tally.violation(format!(
                        "POST {path} (key {key}) answered {status}: {answer}"
                    ));
                    return None;
                }
            }
        }
        if started.elapsed() > GIVE_UP_AFTER {
            tally.violation(format!(
                "POST {path} (key {key}) was not answered in {GIVE_UP_AFTER:?}"
            ));
            return None;
        }
        // A client's backoff between retries, growing to 500 ms.
        tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt.min(20)))).await;
    }
}

/// Concurrent clients placing orders, some of which they cancel, with restocks in between: the
/// saga has to reserve, release and reject all the while.
#[derive(Debug, Clone)]
pub struct OrderLoad {
    pub clients: usize,
    pub orders_per_client: usize,
    /// Every n-th order of a client is cancelled right after it is placed (0: none).
    pub cancel_every: usize,
    /// Every n-th order of a client is followed by a restock of its first product (0: none).
    pub restock_every: usize,
}

impl OrderLoad {
    /// Runs the clients to the end; `placed` counts acknowledged orders as they come, for a
    /// fault that waits for the load to be under way.
    pub async fn run(&self, system: &RealSystem, shop: &Shop, tally: &Tally, placed: &AtomicUsize) {
        let run = random_id();
        futures_util::future::join_all((0..self.clients).map(|client| {
            let run = &run;
            async move {
                for n in 0..self.orders_per_client {
                    let seed = client * 7_919 + n * 104_729;
                    let body = shop.order_body(seed);
                    let key = format!("order-{run}-{client}-{n}");
                    let Some((_, answer)) =
                        send(system, tally, "/orders", &key, &body, &[202]).await
                    else {
                        continue;
                    };
                    let order = PlacedOrder {
                        key,
                        id: id_of(&answer),
                        position: answer["position"].as_i64().unwrap_or_default(),
                    };
                    tally.with(|t| t.orders.push(order.clone()));
                    placed.fetch_add(1, Ordering::Relaxed);
                    if self.cancel_every > 0 && n % self.cancel_every == 0 {
                        // 409 once the saga has rejected it.
                        let path = format!("/orders/{}/cancel", order.id);
                        let key = format!("cancel-{run}-{client}-{n}");
                        send(system, tally, &path, &key, &json!({}), &[202, 409]).await;
                    }
                    if self.restock_every > 0 && n % self.restock_every == 0 {
                        let product = &body["lines"][0]["product_id"];
                        let path =
                            format!("/products/{}/restock", product.as_str().unwrap_or_default());
                        let key = format!("restock-{run}-{client}-{n}");
                        send(
                            system,
                            tally,
                            &path,
                            &key,
                            &json!({ "quantity": 2 }),
                            &[200],
                        )
                        .await;
                    }
                }
            }
        }))
        .await;
    }
}

/// Reads `paths` from the query-api in a loop until `stop`, counting every answer; any status
/// outside `allowed` is a violation. Returns how many answers had each status.
pub async fn read_until(
    system: &RealSystem,
    paths: &[String],
    allowed: &[u16],
    tally: &Tally,
    mut stop: watch::Receiver<bool>,
) {
    'reading: loop {
        for path in paths {
            if *stop.borrow_and_update() {
                break 'reading;
            }
            match system.query(path).send().await {
                Err(_) => tally.unanswered(),
                Ok(response) => {
                    tally.answered(path, &response);
                    let status = response.status().as_u16();
                    if !allowed.contains(&status) {
                        let body = response.text().await.unwrap_or_default();
                        tally.violation(format!("GET {path} answered {status}: {body}"));
                    }
                }
            }
        }
    }
}

/// Waits until `count` reaches `at_least` (the load is under way), for at most a minute.
pub async fn wait_for(count: &AtomicUsize, at_least: usize) {
    let reached = testkit::eventually(Duration::from_secs(60), || async {
        count.load(Ordering::Relaxed) >= at_least
    })
    .await;
    assert!(
        reached,
        "the load did not reach {at_least} orders within a minute"
    );
}

/// Checks exactly-once: every key the clients sent produced exactly one `OrderPlaced`, the one
/// whose id the client was answered, and no order exists that no client placed.
pub async fn assert_each_order_exactly_once(system: &RealSystem, orders: &[PlacedOrder]) {
    let stored: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT stream_id, metadata ->> 'idempotency_key' FROM events WHERE event_type = 'OrderPlaced'",
    )
    .fetch_all(system.pool())
    .await
    .expect("placed orders");
    let mut by_key: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for (id, key) in &stored {
        by_key
            .entry(key.clone().unwrap_or_default())
            .or_default()
            .push(*id);
    }
    for order in orders {
        assert_eq!(
            by_key.get(&order.key).map(Vec::as_slice),
            Some([order.id].as_slice()),
            "the order of key {} is stored exactly once, with the id its client was answered",
            order.key
        );
    }
    assert_eq!(
        stored.len(),
        orders.len(),
        "every stored order was acknowledged to a client, and every acknowledged one is stored"
    );
}

/// Shares a tally and a progress counter between the load and the fault.
pub fn shared() -> (Arc<Tally>, Arc<AtomicUsize>) {
    (Arc::new(Tally::default()), Arc::new(AtomicUsize::new(0)))
}

pub fn id_of(answer: &Value) -> Uuid {
    answer["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("an answer without an id: {answer}"))
}
