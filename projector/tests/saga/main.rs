//! The order saga end to end, every scenario in both modes: orchestration and choreography.

mod admission;
mod contention;
mod dead_letters;
mod mode_switch;
mod scale_out;
mod scenarios;

/// Runs an `async fn(TestSystem)` scenario once per saga mode, each on its own database.
#[macro_export]
macro_rules! in_both_modes {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
                use testkit::{SagaMode, TestSystem};

                #[sqlx::test(migrations = false)]
                async fn orchestration(pool_options: PgPoolOptions, connect: PgConnectOptions) {
                    let system = TestSystem::start_in(SagaMode::Orchestration, pool_options, connect).await;
                    super::$scenario(&system).await;
                    system.stop().await;
                }

                #[sqlx::test(migrations = false)]
                async fn choreography(pool_options: PgPoolOptions, connect: PgConnectOptions) {
                    let system = TestSystem::start_in(SagaMode::Choreography, pool_options, connect).await;
                    super::$scenario(&system).await;
                    system.stop().await;
                }
            }
        )*
    };
}
