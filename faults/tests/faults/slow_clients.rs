//! Slow and abusive clients, all at once: slowloris connections sending their headers a byte at
//! a time, bodies that trickle in, many idle connections, and a flood of `min_position` waits
//! while the projector stands still. Each is cut off on time (408 or a closed connection, as
//! http_kit::deadlines says; waits beyond MAX_CONSISTENCY_WAITS get 503 at once), and meanwhile a
//! well-behaved client keeps sending commands and reads and gets every answer promptly.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use faults::{
    RealSystem, Service, bounded,
    load::{Shop, Tally, id_of, send},
};
use http_kit::deadlines::{REQUEST_BODY_TIMEOUT, REQUEST_HEAD_TIMEOUT};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::watch,
};

use crate::CASE_LIMIT;

/// How much later than its deadline the server may cut a slow client off (a loaded machine).
const GRACE: Duration = Duration::from_secs(4);
const MAX_WAITS: usize = 32;
const WAITS_FLOOD: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_and_abusive_clients_do_not_keep_others_from_being_answered() {
    bounded(CASE_LIMIT, "slow and abusive clients", async {
        // The idle connections below need descriptors: as many as the hard limit allows.
        let open_files = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-files limit");
        let system = RealSystem::builder()
            .setting("MAX_CONSISTENCY_WAITS", &MAX_WAITS.to_string())
            .setting("CONSISTENCY_TIMEOUT_MS", "3000")
            .start()
            .await;
        let shop = Shop::open(&system, &[1_000_000], &[(100, 100_000)]).await;
        system
            .under_test()
            .wait_until_caught_up(Duration::from_secs(60))
            .await;
        let query = address(&system, Service::QueryApi);
        let command = address(&system, Service::CommandApi);
        // Both services hold as many connections as the limit leaves them (the server reserves
        // some for its own connections); stay well within that.
        let idle = usize::try_from(open_files.saturating_sub(600) / 2).unwrap_or(0).min(1_500);
        assert!(idle >= 200, "the open-files limit ({open_files}) is too low for this test");

        let (stop, stopped) = watch::channel(false);
        let good = well_behaved_client(&system, &shop, stopped);
        let abuse = async {
            let request_line = format!(
                "POST /customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n",
                system.token
            );
            let (slowloris, trickling, idle_query, idle_command, waits) = tokio::join!(
                noted("slowloris", many(150, || slowloris(&query))),
                noted("trickling bodies", many(20, || trickling_body(&command, &request_line))),
                noted("idle (query-api)", many(idle, || idle_connection(&query))),
                noted("idle (command-api)", many(idle / 4, || idle_connection(&command))),
                noted("min_position flood", min_position_flood(&system, &shop)),
            );
            stop.send_replace(true);
            (slowloris, trickling, idle_query, idle_command, waits)
        };
        let ((answered, slowest), (slowloris, trickling, idle_query, idle_command, waits)) =
            tokio::join!(good, abuse);

        for (what, cut_off, deadline) in [
            ("a slowloris connection", &slowloris, REQUEST_HEAD_TIMEOUT),
            ("an idle query-api connection", &idle_query, REQUEST_HEAD_TIMEOUT),
            ("an idle command-api connection", &idle_command, REQUEST_HEAD_TIMEOUT),
        ] {
            let latest = cut_off.iter().max().expect("some");
            assert!(
                *latest <= deadline + GRACE,
                "{what} was kept {latest:?} (the limit is {deadline:?})"
            );
        }
        let latest_body = trickling.iter().max().expect("some");
        assert!(
            *latest_body <= REQUEST_BODY_TIMEOUT + GRACE,
            "a trickling body was read for {latest_body:?} (the limit is {REQUEST_BODY_TIMEOUT:?})"
        );
        system.assert_token_never_logged();
        assert!(
            answered >= 20,
            "the well-behaved client got only {answered} answers"
        );
        assert!(
            slowest < Duration::from_secs(2),
            "the well-behaved client waited {slowest:?} for an answer"
        );
        eprintln!(
            "FIGURES slow and abusive clients: slowloris {}, trickling bodies {}, idle connections {}, \
             min_position flood {WAITS_FLOOD} ({} refused at once, {} waited), well-behaved answers {answered} (slowest {slowest:?})",
            slowloris.len(),
            trickling.len(),
            idle_query.len() + idle_command.len(),
            waits.0,
            waits.1
        );
    })
    .await;
}

fn address(system: &RealSystem, service: Service) -> String {
    system
        .base_url(service)
        .trim_start_matches("http://")
        .to_owned()
}

/// Says when a group of clients is done (a case that hangs then shows which one).
async fn noted<T>(what: &str, clients: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let output = clients.await;
    eprintln!("{what}: done after {:?}", started.elapsed());
    output
}

/// Runs `count` of `client` at once; returns how long each took until the server cut it off
/// (`Duration::MAX` for one still going after a minute).
async fn many<F, Fut>(count: usize, client: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    futures_util::future::join_all((0..count).map(|_| async {
        tokio::time::timeout(Duration::from_secs(60), client())
            .await
            .unwrap_or(Duration::MAX)
    }))
    .await
}

/// Reads until the server closes the connection (EOF or reset); returns when it did.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Sends a request line and then one header byte every 200 ms, never finishing the head.
async fn slowloris(address: &str) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let (mut reader, mut writer) = stream.split();
    let drip = async {
        for byte in b"X-Slow: ".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut buffer = [0u8; 1024];
    let closed = async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = closed => {}
        _ = drip => {}
    }
    started.elapsed()
}

/// Sends a command's head at once and its body a byte every 300 ms; the server must answer 408
/// (and close) once the body deadline has passed.
async fn trickling_body(address: &str, head: &str) -> Duration {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    let drip = async {
        for _ in 0..300 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        std::future::pending::<()>().await;
    };
    let mut answer = Vec::new();
    let read = async {
        let mut buffer = [0u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::select! {
        _ = read => {}
        _ = drip => {}
    }
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickling body was answered: {answer:?}"
    );
    assert!(answer.contains("application/problem+json"), "{answer}");
    elapsed
}

/// Connects and sends nothing; returns when the server closed the connection.
async fn idle_connection(address: &str) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.expect("connect");
    until_closed(&mut stream).await;
    started.elapsed()
}

/// With the projector paused, fires `WAITS_FLOOD` reads that must wait for a position it has not
/// reached: at most `MAX_WAITS` wait (then 503 not-yet-consistent), the rest get 503
/// too-many-waits at once. Returns (refused at once, waited).
async fn min_position_flood(system: &RealSystem, shop: &Shop) -> (usize, usize) {
    system.pause(Service::Projector);
    let tally = Tally::default();
    let body =
        json!({ "name": "Written while the projector stands still", "credit_limit_cents": 1 });
    let (_, answer) = send(system, &tally, "/customers", "flood", &body, &[201])
        .await
        .expect("registered");
    let position = answer["position"].as_i64().expect("position");
    let customer = shop.customers[0];
    let refused = AtomicU64::new(0);
    let waited = AtomicU64::new(0);

    futures_util::future::join_all((0..WAITS_FLOOD).map(|_| async {
        let started = Instant::now();
        let response = system
            .query(&format!("/customers/{customer}?min_position={position}"))
            .send()
            .await
            .expect("answered");
        let status = response.status();
        assert!(response.headers().contains_key("retry-after"));
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        match problem["type"].as_str() {
            Some("/problems/too-many-waits") => {
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "refused late: {problem}"
                );
                refused.fetch_add(1, Ordering::Relaxed);
            }
            Some("/problems/not-yet-consistent") => {
                waited.fetch_add(1, Ordering::Relaxed);
            }
            _ => panic!("an unexpected answer: {problem}"),
        }
    }))
    .await;
    system.resume(Service::Projector);

    let (refused, waited) = (refused.into_inner() as usize, waited.into_inner() as usize);
    assert!(waited <= MAX_WAITS, "{waited} requests waited at once");
    assert_eq!(refused + waited, WAITS_FLOOD);
    // Once it runs again the write is readable at its position.
    let response = system
        .query(&format!(
            "/customers/{}?min_position={position}",
            id_of(&answer)
        ))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    (refused, waited)
}

/// A command and a read, over and over, until `stop`: every answer must be a success. Returns
/// how many it got and the slowest.
async fn well_behaved_client(
    system: &RealSystem,
    shop: &Shop,
    mut stop: watch::Receiver<bool>,
) -> (usize, Duration) {
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    let product = shop.products[0];
    while !*stop.borrow_and_update() {
        let started = Instant::now();
        let restock = system
            .command(&format!("/products/{product}/restock"))
            .json(&json!({ "quantity": 1 }))
            .send()
            .await
            .expect("the command was answered");
        assert_eq!(restock.status(), StatusCode::OK);
        let read = system
            .query(&format!("/products/{product}"))
            .send()
            .await
            .expect("the read was answered");
        assert_eq!(read.status(), StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        answered += 2;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => {}
        }
    }
    (answered, slowest)
}
