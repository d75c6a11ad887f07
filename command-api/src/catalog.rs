//! The catalog's answer to an order being placed: is the customer registered, and what does
//! each product cost now. Both are fixed by each aggregate's first event (`CustomerRegistered`,
//! `ProductAdded`: no later event changes a price, and no aggregate is ever deleted), so the
//! customer and every product are read in one query of their first events only; the rest of a
//! product's stream, which grows with every order that names it, is never read. What to do with
//! the answer is the domain's business (`OrderCommand::Place`).
//!
//! Because those facts never change, what was found once is kept (`Catalog`): an order for a
//! known customer and known products reads nothing at all. Only what exists is kept; an id not
//! found is asked again next time, as it may be registered by then. Every process keeps its
//! own, and none can go stale: a fact another process learns later is the same fact.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use domain::{
    Aggregate,
    customer::Customer,
    order::{CatalogAnswer, RequestedLines},
    product::Product,
};
use event_store::{Loaded, StoreError, StoredStream, StreamRequest, load_first_events};
use sqlx::PgPool;
use uuid::Uuid;

/// Facts kept at most; beyond it the catalog starts afresh (it is only a copy of the log).
const CAPACITY: usize = 100_000;

/// The customers and prices found so far.
#[derive(Default)]
pub struct Catalog {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    customers: HashSet<Uuid>,
    prices: HashMap<Uuid, i64>,
}

impl Catalog {
    pub async fn answer(
        &self,
        pool: &PgPool,
        customer_id: Uuid,
        lines: &RequestedLines,
    ) -> Result<CatalogAnswer, StoreError> {
        let mut answer = CatalogAnswer::default();
        let mut unknown_products = Vec::new();
        {
            let known = self.lock();
            answer.customer_registered = known.customers.contains(&customer_id);
            for product_id in lines.product_ids() {
                match known.prices.get(&product_id) {
                    Some(price) => {
                        answer.prices.insert(product_id, *price);
                    }
                    None => unknown_products.push(product_id),
                }
            }
        }
        if answer.customer_registered && unknown_products.is_empty() {
            return Ok(answer);
        }
        let found = read_first_events(
            pool,
            (!answer.customer_registered).then_some(customer_id),
            &unknown_products,
        )
        .await?;
        let mut known = self.lock();
        if known.customers.len() + known.prices.len() >= CAPACITY {
            *known = Known::default();
        }
        if found.customer_registered {
            answer.customer_registered = true;
            known.customers.insert(customer_id);
        }
        for (product_id, price) in found.prices {
            answer.prices.insert(product_id, price);
            known.prices.insert(product_id, price);
        }
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether the customer (when asked) is registered, and the price of each of `products` that
/// exists, from their first events, in one query.
async fn read_first_events(
    pool: &PgPool,
    customer_id: Option<Uuid>,
    products: &[Uuid],
) -> Result<CatalogAnswer, StoreError> {
    let mut requests: Vec<StreamRequest> = customer_id
        .map(|id| StreamRequest::of::<Customer>(id, false))
        .into_iter()
        .collect();
    requests.extend(
        products
            .iter()
            .map(|product_id| StreamRequest::of::<Product>(*product_id, false)),
    );
    let mut conn = pool.acquire().await?;
    let mut streams = load_first_events(&mut conn, &requests).await?.into_iter();
    let mut answer = CatalogAnswer::default();
    if customer_id.is_some()
        && let Some(customer) = streams.next()
    {
        answer.customer_registered = existing::<Customer>(customer)?.is_some();
    }
    for (product_id, stored) in products.iter().zip(streams) {
        if let Some(product) = existing::<Product>(stored)? {
            answer.prices.insert(*product_id, product.price_cents);
        }
    }
    Ok(answer)
}

/// The aggregate as its first event made it, if it exists as this kind; an id of another kind
/// names nothing here.
fn existing<A: Aggregate>(stored: StoredStream) -> Result<Option<A>, StoreError> {
    match stored.fold_onto::<A>(Loaded::default()) {
        Ok(loaded) => Ok(loaded.state.exists().then_some(loaded.state)),
        Err(StoreError::OtherStreamType { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}
