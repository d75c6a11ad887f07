//! The catalog's answer to an order being placed: is the customer registered, and what does
//! each product cost now. Both are fixed by each aggregate's first event (`CustomerRegistered`,
//! `ProductAdded`: no later event changes a price), so the customer and every product are read
//! in one query of their first events only; the rest of a product's stream, which grows with
//! every order that names it, is never read. What to do with the answer is the domain's
//! business (`OrderCommand::Place`).

use domain::{
    Aggregate,
    customer::Customer,
    order::{CatalogAnswer, RequestedLines},
    product::Product,
};
use event_store::{Loaded, StoreError, StoredStream, StreamRequest, load_first_events};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn answer(
    pool: &PgPool,
    customer_id: Uuid,
    lines: &RequestedLines,
) -> Result<CatalogAnswer, StoreError> {
    let mut requests = vec![StreamRequest::of::<Customer>(customer_id, false)];
    requests.extend(
        lines
            .product_ids()
            .map(|product_id| StreamRequest::of::<Product>(product_id, false)),
    );
    let mut conn = pool.acquire().await?;
    let mut streams = load_first_events(&mut conn, &requests).await?.into_iter();
    let mut answer = CatalogAnswer::default();
    if let Some(customer) = streams.next() {
        answer.customer_registered = existing::<Customer>(customer)?.is_some();
    }
    for (product_id, stored) in lines.product_ids().zip(streams) {
        if let Some(product) = existing::<Product>(stored)? {
            answer.prices.insert(product_id, product.price_cents);
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
