//! The live change feeds: server-sent events of every change after a position, resumable with
//! `Last-Event-ID`, with heartbeats and a bounded number of connections.

use std::time::Duration;

use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;

/// One server-sent message as a client sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub id: Option<i64>,
    pub event: Option<String>,
    pub data: Option<serde_json::Value>,
    pub comment: Option<String>,
}

/// Reads a feed's messages as they arrive.
pub struct FeedReader {
    response: reqwest::Response,
    buffer: String,
}

impl FeedReader {
    pub async fn open(system: &TestSystem, path: &str, last_event_id: Option<i64>) -> Self {
        let mut request = system.query(path);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("feed opened");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next message, or `None` if none came within 10 s.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message::default();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(": ") {
                        message.comment = Some(comment.to_owned());
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        message.id = Some(id.parse().expect("numeric id"));
                    } else if let Some(event) = line.strip_prefix("event: ") {
                        message.event = Some(event.to_owned());
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        message.data = Some(serde_json::from_str(data).expect("JSON data"));
                    }
                }
                return Some(message);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .ok()?
                .expect("feed readable")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next change (skipping comments), or `None` if none came within 10 s.
    pub async fn next_change(&mut self) -> Option<Message> {
        loop {
            let message = self.next().await?;
            if message.id.is_some() {
                return Some(message);
            }
        }
    }
}

#[sqlx::test(migrations = false)]
async fn the_feed_misses_and_repeats_nothing_across_a_reconnect_with_last_event_id(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::builder()
        .query_api_args(["--feed-heartbeat-ms", "200"])
        .start(connect)
        .await;
    drop(pool_options);
    let (customer, _) = system.register_customer(1_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000).await;

    let mut feed = FeedReader::open(&system, "/feed", None).await;
    // Orders are placed while the feed is read; it is dropped half-way and resumed.
    let placing = {
        let (client, command_base) = (system.client.clone(), system.command_base.clone());
        tokio::spawn(async move {
            for _ in 0..15 {
                let response = client
                    .post(format!("{command_base}/orders"))
                    .bearer_auth(testkit::TOKEN)
                    .json(&serde_json::json!({
                        "customer_id": customer,
                        "lines": [{"product_id": tea, "quantity": 1}]
                    }))
                    .send()
                    .await
                    .expect("order sent");
                assert_eq!(response.status(), StatusCode::ACCEPTED);
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 12 {
        let change = feed
            .next_change()
            .await
            .expect("a change before the reconnect");
        let data = change.data.expect("data");
        assert_eq!(change.id, data["position"].as_i64());
        assert_eq!(change.event.as_deref(), data["type"].as_str());
        seen.push(change.id.expect("id"));
    }
    drop(feed);
    placing.await.expect("orders placed");
    system.wait_until_caught_up().await;
    let all: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&system.pool)
        .await
        .expect("positions");

    let mut feed = FeedReader::open(&system, "/feed", seen.last().copied()).await;
    while seen.len() < all.len() {
        let change = feed
            .next_change()
            .await
            .expect("every change after the reconnect");
        seen.push(change.id.expect("id"));
    }
    assert_eq!(seen, all, "every event once, in log order");
    // Caught up and idle: heartbeats, and nothing else.
    let idle = feed.next().await.expect("a heartbeat");
    assert_eq!(idle.comment.as_deref(), Some("heartbeat"), "{idle:?}");
    drop(feed);
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_order_feed_carries_its_own_changes_live(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::builder()
        .query_api_args(["--feed-heartbeat-ms", "200"])
        .start(connect)
        .await;
    drop(pool_options);
    let (customer, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (order, placed) = system.place_order(customer, &[(tea, 1)]).await;
    let mut feed = FeedReader::open(
        &system,
        &format!("/orders/{order}/feed?min_position={placed}"),
        None,
    )
    .await;
    let mut types = Vec::new();
    while types.len() < 2 {
        let change = feed.next_change().await.expect("the order's changes");
        let data = change.data.expect("data");
        assert_eq!(data["stream_id"], order.to_string());
        types.push(change.event.expect("event"));
    }
    assert_eq!(types, ["OrderPlaced", "OrderApproved"]);
    let shipped = system.ship(order).await;
    assert_eq!(shipped.status(), StatusCode::OK);
    let change = feed.next_change().await.expect("shipped, live");
    assert_eq!(change.event.as_deref(), Some("OrderShipped"));
    drop(feed);

    let unknown = uuid::Uuid::new_v4();
    let (status, _) = system.read(&format!("/orders/{unknown}/feed")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in ["/feed?after=-1", "/feed?after=x", "/feed?since=1"] {
        let (status, _) = system.read(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    let garbled = system
        .query("/feed")
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("sent");
    assert_eq!(garbled.status(), StatusCode::BAD_REQUEST);
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn feeds_beyond_the_limit_are_503_with_retry_after(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::builder()
        .query_api_args(["--feed-max-connections", "2", "--feed-heartbeat-ms", "200"])
        .start(connect)
        .await;
    drop(pool_options);
    let first = FeedReader::open(&system, "/feed", None).await;
    let second = FeedReader::open(&system, "/feed", None).await;
    let refused = system.query("/feed").send().await.expect("sent");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    drop(first);
    // The closed feed's permit comes back once the server notices the client left (at its next
    // heartbeat at the latest).
    assert!(
        testkit::eventually(Duration::from_secs(10), || async {
            let response = system.query("/feed").send().await.expect("sent");
            response.status() == StatusCode::OK
        })
        .await,
        "a feed closed by its client frees its connection"
    );
    drop(second);
    system.stop().await;
}
