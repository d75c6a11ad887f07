//! A saga-heavy workload, for the tests that crash, scale or repartition the projector under
//! load: customers with tight credit, products with scarce stock, concurrent multi-line orders
//! with cancels and restocks racing the saga. Once the system is quiet, `assert_invariants`
//! checks exactly what the contract promises (`crate::invariants`).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::TestSystem;

pub struct Workload {
    pub customers: Vec<Uuid>,
    pub products: Vec<Uuid>,
}

impl Workload {
    /// Registers four customers and adds five products.
    pub async fn set_up(system: &TestSystem) -> Self {
        let mut customers = Vec::new();
        for limit in [3_000, 5_000, 8_000, 20_000] {
            customers.push(system.register_customer(limit).await.0);
        }
        let mut products = Vec::new();
        for (index, (price, stock)) in [(100, 40), (250, 25), (400, 15), (90, 60), (1_000, 8)]
            .into_iter()
            .enumerate()
        {
            let (id, _) = system
                .add_product(
                    &format!("P{index}"),
                    &format!("Product {index}"),
                    price,
                    stock,
                )
                .await;
            products.push(id);
        }
        Self {
            customers,
            products,
        }
    }

    /// `clients` clients each place `per_client` orders of one to three lines at once; every
    /// fifth is cancelled right away (racing the saga), every seventeenth restocks a product.
    /// `round` varies the orders from one call to the next.
    pub async fn place_orders(
        &self,
        system: &TestSystem,
        clients: usize,
        per_client: usize,
        round: usize,
    ) {
        futures_util::future::join_all((0..clients).map(|client| async move {
            for n in 0..per_client {
                let seed = client * 7919 + n * 104_729 + round * 15_485_863;
                let customer = self.customers[seed % self.customers.len()];
                let first = seed % self.products.len();
                let lines: Vec<(Uuid, i64)> = (0..1 + seed % 3)
                    .map(|k| {
                        (
                            self.products[(first + k) % self.products.len()],
                            1 + ((seed / 3 + k) % 4) as i64,
                        )
                    })
                    .collect();
                let (order, _) = system.place_order(customer, &lines).await;
                if n % 5 == 0 {
                    let _ = system.cancel(order).await; // may race the saga; 409 once it is rejected
                }
                if n % 17 == 0 {
                    system
                        .send(
                            &format!("/products/{}/restock", lines[0].0),
                            serde_json::json!({"quantity": 2}),
                        )
                        .await;
                }
            }
        }))
        .await;
    }

    /// Ships a few approved orders (the system must be caught up).
    pub async fn ship_some(&self, system: &TestSystem) {
        let approved = system.read("/orders?status=approved&limit=5").await.1;
        for order in approved["items"].as_array().into_iter().flatten() {
            let id: Uuid = order["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("id");
            assert_eq!(system.ship(id).await.status(), reqwest::StatusCode::OK);
        }
    }

    /// Checks the contract's invariants exactly once the system is quiet
    /// (`invariants::SystemUnderTest::assert_invariants`: against the log, the read models, the
    /// aggregates and a rebuild), and that every order placed is there, once. Returns how many
    /// orders ended in each status.
    pub async fn assert_invariants(
        &self,
        system: &TestSystem,
        orders_placed: usize,
    ) -> BTreeMap<String, usize> {
        system.wait_until_caught_up().await;
        let state = system.under_test().assert_invariants().await;
        assert_eq!(
            state.orders_total(),
            orders_placed,
            "every order placed, once"
        );
        assert_eq!(state.products, self.products.len());
        assert_eq!(state.customers, self.customers.len());
        state.orders
    }
}
