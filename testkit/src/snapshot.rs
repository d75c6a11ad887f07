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
    pub document_versions: Vec<Value>,
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
        // The generation's own keys (its checkpoint, a replay's mark, the documents' positions)
        // are not documents.
        for key in found
            .into_iter()
            .filter(|key| !RedisKeys::OWN_SUFFIXES.contains(&&key[base.len()..]))
        {
            let doc: String = redis::cmd("GET")
                .arg(&key)
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
            document_versions: rows(
                "SELECT to_jsonb(v) FROM read_model.document_versions v ORDER BY kind, id, version",
            )
            .await,
        }
    }
}

impl ReadModelSnapshot {
    /// Where `self` and `other` first differ, or `None` when they are equal.
    pub fn first_difference(&self, other: &Self) -> Option<String> {
        for (key, doc) in &self.redis {
            match other.redis.get(key) {
                Some(theirs) if theirs == doc => {}
                theirs => return Some(format!("Redis {key}: {doc} vs {theirs:?}")),
            }
        }
        if let Some(key) = other
            .redis
            .keys()
            .find(|key| !self.redis.contains_key(*key))
        {
            return Some(format!("Redis {key}: missing vs {}", other.redis[key]));
        }
        for (table, ours, theirs) in [
            ("orders", &self.orders, &other.orders),
            ("products", &self.products, &other.products),
            ("order_history", &self.history, &other.history),
            ("event_feed", &self.event_feed, &other.event_feed),
            (
                "document_versions",
                &self.document_versions,
                &other.document_versions,
            ),
        ] {
            if ours.len() != theirs.len() {
                return Some(format!("{table}: {} rows vs {}", ours.len(), theirs.len()));
            }
            if let Some((a, b)) = ours.iter().zip(theirs).find(|(a, b)| a != b) {
                return Some(format!("{table}: {a} vs {b}"));
            }
        }
        None
    }
}
