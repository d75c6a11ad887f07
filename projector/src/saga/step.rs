//! What a saga handler works with while it handles one event: the batch's unit of work (every
//! command goes through the same `decide` functions as the command-api, decided on the
//! aggregates' current state in memory), and the orchestrator's instances. Each appended event
//! carries the correlation id of the request that started the chain and, as causation id, the
//! position of the event that triggered the step.

use domain::{
    Cents, DomainEvent, Quantity,
    customer::{CreditHold, Customer, CustomerCommand},
    order::{Order, OrderCommand},
    product::{Product, ProductCommand, StockHold},
};
use event_store::{Metadata, RecordedEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    SagaError,
    orchestration::Instances,
    unit_of_work::{AggregateCache, SagaAggregate, UnitOfWork},
};

pub struct Step<'a> {
    conn: &'a mut PgConnection,
    cache: &'a AggregateCache,
    unit: &'a mut UnitOfWork,
    instances: &'a mut Instances,
    metadata: Metadata,
    trigger: &'a RecordedEvent,
}

impl<'a> Step<'a> {
    pub fn new(
        conn: &'a mut PgConnection,
        cache: &'a AggregateCache,
        unit: &'a mut UnitOfWork,
        instances: &'a mut Instances,
        trigger: &'a RecordedEvent,
    ) -> Self {
        let metadata = Metadata {
            correlation_id: trigger.correlation_id().map(str::to_owned),
            causation_id: Some(trigger.position.to_string()),
            idempotency_key: None,
        };
        Self {
            conn,
            cache,
            unit,
            instances,
            metadata,
            trigger,
        }
    }

    pub fn instances(&mut self) -> &mut Instances {
        self.instances
    }

    /// The event that triggered this step.
    pub fn trigger(&self) -> &RecordedEvent {
        self.trigger
    }

    /// The current state of an aggregate, as this batch sees it (loaded now if the batch did
    /// not load it up front).
    pub async fn load<A: SagaAggregate>(&mut self, id: Uuid) -> Result<A, SagaError> {
        if !self.unit.is_loaded::<A>(id) {
            self.unit.load::<A>(self.conn, self.cache, [id]).await?;
        }
        Ok(self.unit.state::<A>(id))
    }

    pub async fn product(
        &mut self,
        id: Uuid,
        command: ProductCommand,
    ) -> Result<Product, SagaError> {
        self.issue::<Product>(id, command).await
    }

    pub async fn customer(
        &mut self,
        id: Uuid,
        command: CustomerCommand,
    ) -> Result<Customer, SagaError> {
        self.issue::<Customer>(id, command).await
    }

    pub async fn order(&mut self, id: Uuid, command: OrderCommand) -> Result<Order, SagaError> {
        self.issue::<Order>(id, command).await
    }

    /// Reserves an order line's stock (a no-op if this order already asked this product) and
    /// answers what the product now holds for the order.
    pub async fn reserve_stock(
        &mut self,
        order_id: Uuid,
        product_id: Uuid,
        quantity: i64,
    ) -> Result<Option<StockHold>, SagaError> {
        let quantity =
            Quantity::parse("quantity", quantity).map_err(|e| SagaError::Corrupt(e.message))?;
        let product = self
            .product(
                product_id,
                ProductCommand::ReserveStock { order_id, quantity },
            )
            .await?;
        Ok(product.stock_by_order.get(&order_id).copied())
    }

    /// Releases whatever stock the order holds of these products (a no-op where it holds none).
    pub async fn release_stock(
        &mut self,
        order_id: Uuid,
        products: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), SagaError> {
        for product_id in products {
            self.product(product_id, ProductCommand::ReleaseStock { order_id })
                .await?;
        }
        Ok(())
    }

    /// Moves the order's reserved stock of these products out of the shop.
    pub async fn ship_stock(
        &mut self,
        order_id: Uuid,
        products: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), SagaError> {
        for product_id in products {
            self.product(product_id, ProductCommand::ShipStock { order_id })
                .await?;
        }
        Ok(())
    }

    /// Reserves an order's total against its customer's credit (a no-op if already asked) and
    /// answers what the customer now holds for the order.
    pub async fn reserve_credit(
        &mut self,
        order_id: Uuid,
        customer_id: Uuid,
        total_cents: i64,
    ) -> Result<Option<CreditHold>, SagaError> {
        let amount =
            Cents::parse("total_cents", total_cents).map_err(|e| SagaError::Corrupt(e.message))?;
        let customer = self
            .customer(
                customer_id,
                CustomerCommand::ReserveCredit { order_id, amount },
            )
            .await?;
        Ok(customer.credit_by_order.get(&order_id).copied())
    }

    async fn issue<A: SagaAggregate>(
        &mut self,
        id: Uuid,
        command: A::Command,
    ) -> Result<A, SagaError>
    where
        A::Command: std::fmt::Debug,
    {
        if !self.unit.is_loaded::<A>(id) {
            self.unit.load::<A>(self.conn, self.cache, [id]).await?;
        }
        let described = tracing::enabled!(tracing::Level::DEBUG).then(|| format!("{command:?}"));
        let (state, events) = self
            .unit
            .decide::<A, _>(id, &self.metadata, |state| state.decide(command))?;
        // Debug, not info: a line per step would cost more than the step on the hot path.
        for event in &events {
            tracing::debug!(
                stream_type = %A::STREAM_TYPE,
                stream_id = %id,
                command = described.as_deref().unwrap_or_default(),
                event = event.event_type(),
                "saga step"
            );
        }
        Ok(state)
    }
}
