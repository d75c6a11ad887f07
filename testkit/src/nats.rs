//! NATS for tests, always the real server: the shared one (`NATS_URL`, else 127.0.0.1:4222)
//! with a stream and subject prefix of the test's own (`TestStream`, deleted at the end), or a
//! private `nats-server` with JetStream on a free port (`NatsServer`), which a test may stop and
//! start again without disturbing anyone else.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use async_nats::jetstream::{self, message::StreamMessage};
use integration_events::Envelope;
use uuid::Uuid;

use crate::eventually;

/// The shared NATS server's URL.
pub fn shared_url() -> String {
    std::env::var("NATS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())
}

/// A stream name and subject prefix no other test uses, on the server at `url`. The stream is
/// deleted when the value is dropped (also when the test fails half-way).
#[derive(Debug)]
pub struct TestStream {
    pub url: String,
    pub name: String,
    pub prefix: String,
}

impl TestStream {
    pub fn new(url: &str) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            url: url.to_owned(),
            name: format!("TEST_{}", id.to_uppercase()),
            prefix: format!("test_{id}"),
        }
    }

    /// The projector settings that make its relay publish here.
    pub fn projector_args(&self) -> Vec<String> {
        [
            "--nats-url",
            &self.url,
            "--nats-stream",
            &self.name,
            "--nats-subject-prefix",
            &self.prefix,
        ]
        .map(String::from)
        .into()
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        let client = async_nats::connect(&self.url)
            .await
            .expect("the test connects to NATS");
        jetstream::new(client)
    }

    /// Every message of the stream, in stream order (none when it does not exist).
    pub async fn messages(&self) -> Vec<StreamMessage> {
        let jetstream = self.jetstream().await;
        let Ok(mut stream) = jetstream.get_stream(&self.name).await else {
            return Vec::new();
        };
        let state = stream.info().await.expect("stream info").state.clone();
        let mut messages = Vec::new();
        if state.messages == 0 {
            return messages;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                messages.push(message);
            }
        }
        messages
    }

    /// The envelopes of every message, in stream order.
    pub async fn envelopes(&self) -> Vec<Envelope> {
        self.messages()
            .await
            .iter()
            .map(|message| serde_json::from_slice(&message.payload).expect("an envelope"))
            .collect()
    }

    /// Deletes the stream (and its consumers); nothing when it is not there.
    pub async fn delete(&self) {
        if let Ok(client) = async_nats::connect(&self.url).await {
            let _ = jetstream::new(client).delete_stream(&self.name).await;
        }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be the current thread: delete from a
        // thread and runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let connected =
                    tokio::time::timeout(Duration::from_secs(2), async_nats::connect(url.as_str()))
                        .await;
                if let Ok(Ok(client)) = connected {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
            Ok::<_, std::io::Error>(())
        });
        let _ = deleted.join();
    }
}

/// A `nats-server -js` of the test's own, on a free port, its store in a temporary folder.
/// Dropping it kills the server and deletes the folder.
pub struct NatsServer {
    pub url: String,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let store =
            std::env::temp_dir().join(format!("cqrs-test-nats-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&store).expect("a store folder");
        let mut server = Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
            child: None,
        };
        server.run().await;
        server
    }

    fn binary() -> String {
        if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
            return bin;
        }
        let on_path = std::env::var("PATH").unwrap_or_default();
        for dir in on_path.split(':').chain(["/usr/sbin", "/usr/local/sbin"]) {
            let candidate = PathBuf::from(dir).join("nats-server");
            if candidate.is_file() {
                return candidate.to_string_lossy().into_owned();
            }
        }
        panic!("nats-server is not installed (apt-get install nats-server, or set NATS_SERVER_BIN)")
    }

    async fn run(&mut self) {
        let child = Command::new(Self::binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        // nats-server starts JetStream before it listens for clients.
        let url = self.url.clone();
        let ready = eventually(Duration::from_secs(20), || {
            let url = url.clone();
            async move { async_nats::connect(&url).await.is_ok() }
        })
        .await;
        assert!(
            ready,
            "the test's nats-server did not answer on {}",
            self.url
        );
    }

    /// Kills the server at once (as a crash would); its store stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
