//! Everything the read models hold, in a form that compares equal when the content is equal
//! (whatever generation it lives in), to check an incrementally built state against a rebuild.

use std::collections::BTreeMap;

use read_models::RedisKeys;
use redis::aio::ConnectionManager;
use serde_json::Value;
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq)]
pub struct ReadModelSnapshot {
    /// `order:<id>` etc. to the document.
    pub redis: BTreeMap<String, Value>,
    pub orders: Vec<Value>,
    pub products: Vec<Value>,
    pub history: Vec<Value>,
    pub event_feed: Vec<Value>,
}

impl ReadModelSnapshot {
    pub async fn take(pool: &PgPool, redis: &ConnectionManager, keys: &RedisKeys) -> Self {
        let mut redis = redis.clone();
        let live: i64 = redis::cmd("GET")
            .arg(keys.live_generation())
            .query_async(&mut redis)
            .await
            .expect("live generation");
        let base = keys.generation_base(live);
        let found: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{base}*"))
            .query_async(&mut redis)
            .await
            .expect("keys");
        let mut documents = BTreeMap::new();
        for key in found
            .into_iter()
            .filter(|key| !key.ends_with(":checkpoint"))
        {
            let doc: String = redis::cmd("HGET")
                .arg(&key)
                .arg("doc")
                .query_async(&mut redis)
                .await
                .expect("doc");
            documents.insert(
                key[base.len()..].to_owned(),
                serde_json::from_str(&doc).expect("JSON doc"),
            );
        }
        let rows = |sql: &'static str| async move {
            sqlx::query_scalar::<_, Value>(sql)
                .fetch_all(pool)
                .await
                .expect(sql)
        };
        Self {
            redis: documents,
            orders: rows("SELECT doc || jsonb_build_object('_placed', placed_position) FROM read_model.orders ORDER BY id").await,
            products: rows("SELECT doc FROM read_model.products ORDER BY id").await,
            history: rows(
                "SELECT to_jsonb(h) FROM read_model.order_history h ORDER BY order_id, position",
            )
            .await,
            event_feed: rows("SELECT to_jsonb(f) FROM read_model.event_feed f ORDER BY position")
                .await,
        }
    }
}
