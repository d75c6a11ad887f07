//! Issues a saga step's commands inside the step's transaction, through the same domain code
//! the command-api uses. Each appended event carries the correlation id of the request that
//! started the chain and, as causation id, the position of the event that triggered the step.

use domain::{
    Aggregate, Cents, DomainEvent, Quantity,
    customer::{Customer, CustomerCommand},
    order::{Order, OrderCommand},
    product::{Product, ProductCommand},
};
use event_store::{CommandOptions, Metadata, RecordedEvent, execute_in_tx, load_aggregate};
use sqlx::PgConnection;
use uuid::Uuid;

use super::SagaError;

pub struct Issuer<'a> {
    conn: &'a mut PgConnection,
    options: CommandOptions,
}

impl<'a> Issuer<'a> {
    pub fn new(conn: &'a mut PgConnection, trigger: &RecordedEvent, snapshot_every: i64) -> Self {
        let metadata = Metadata {
            correlation_id: trigger.correlation_id().map(str::to_owned),
            causation_id: Some(trigger.position.to_string()),
            idempotency_key: None,
        };
        Self {
            conn,
            options: CommandOptions {
                metadata,
                snapshot_every,
                ..CommandOptions::default()
            },
        }
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
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

    /// Reserves an order line's stock (a no-op if this order already asked this product).
    pub async fn reserve_stock(
        &mut self,
        order_id: Uuid,
        product_id: Uuid,
        quantity: i64,
    ) -> Result<(), SagaError> {
        let quantity =
            Quantity::parse("quantity", quantity).map_err(|e| SagaError::Corrupt(e.message))?;
        self.product(
            product_id,
            ProductCommand::ReserveStock { order_id, quantity },
        )
        .await?;
        Ok(())
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

    /// Reserves an order's total against its customer's credit (a no-op if already asked).
    pub async fn reserve_credit(
        &mut self,
        order_id: Uuid,
        customer_id: Uuid,
        total_cents: i64,
    ) -> Result<(), SagaError> {
        let amount =
            Cents::parse("total_cents", total_cents).map_err(|e| SagaError::Corrupt(e.message))?;
        self.customer(
            customer_id,
            CustomerCommand::ReserveCredit { order_id, amount },
        )
        .await?;
        Ok(())
    }

    /// The current state of an aggregate, as this transaction sees it.
    pub async fn load<A: Aggregate>(&mut self, id: Uuid) -> Result<A, SagaError> {
        Ok(
            load_aggregate::<A>(self.conn, id, self.options.snapshot_every > 0)
                .await?
                .state,
        )
    }

    async fn issue<A: Aggregate>(&mut self, id: Uuid, command: A::Command) -> Result<A, SagaError>
    where
        A::Command: std::fmt::Debug,
    {
        let described = tracing::enabled!(tracing::Level::DEBUG).then(|| format!("{command:?}"));
        let executed =
            execute_in_tx::<A, _>(self.conn, id, &self.options, |state| state.decide(command))
                .await?;
        // Debug, not info: a line per step would cost more than the step on the hot path.
        for event in &executed.events {
            tracing::debug!(
                stream_type = %A::STREAM_TYPE,
                stream_id = %id,
                command = described.as_deref().unwrap_or_default(),
                event = event.event_type(),
                "saga step"
            );
        }
        Ok(executed.loaded.state)
    }
}
