//! The catalog's answer to an order being placed: is the customer registered, and what does
//! each product cost now. The customer and every product load in one query; what to do with
//! the answer is the domain's business (`OrderCommand::Place`).

use domain::{
    Aggregate,
    customer::Customer,
    order::{CatalogAnswer, RequestedLines},
    product::Product,
};
use event_store::{Loaded, StoreError, StreamRequest, load_streams};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn answer(
    pool: &PgPool,
    customer_id: Uuid,
    lines: &RequestedLines,
) -> Result<CatalogAnswer, StoreError> {
    let mut requests = vec![StreamRequest::of::<Customer>(customer_id, true)];
    requests.extend(
        lines
            .product_ids()
            .map(|product_id| StreamRequest::of::<Product>(product_id, true)),
    );
    let mut conn = pool.acquire().await?;
    let mut streams = load_streams(&mut conn, &requests).await?.into_iter();
    let mut answer = CatalogAnswer::default();
    if let Some(customer) = streams.next() {
        answer.customer_registered =
            existing(customer.fold::<Customer>(&mut conn).await)?.is_some();
    }
    for (product_id, stored) in lines.product_ids().zip(streams) {
        if let Some(product) = existing(stored.fold::<Product>(&mut conn).await)? {
            answer.prices.insert(product_id, product.price_cents);
        }
    }
    Ok(answer)
}

/// The aggregate if it exists as this kind; an id of another kind names nothing here.
fn existing<A: Aggregate>(loaded: Result<Loaded<A>, StoreError>) -> Result<Option<A>, StoreError> {
    match loaded {
        Ok(loaded) => Ok(loaded.state.exists().then_some(loaded.state)),
        Err(StoreError::OtherStreamType { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}
