//! A Redis server of the test's own, without persistence, so that the test may kill it and start
//! it again empty, as a Redis restarted without persistence comes back; the shared Redis is never
//! touched. Dropping it kills the server.

use std::{
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use crate::free_port;

pub struct PrivateRedis {
    port: u16,
    child: Mutex<Option<Child>>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let redis = Self {
            port: free_port(),
            child: Mutex::new(None),
        };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL); returns once it is gone. Its data is gone with it.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again, empty) on the same port; returns once it answers PING.
    pub async fn start_again(&self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        *self.child.lock().expect("lock") = Some(child);
        let url = self.url();
        let answers = testkit::eventually(Duration::from_secs(20), || async {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return false;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        })
        .await;
        assert!(
            answers,
            "the test's Redis on port {} never answered",
            self.port
        );
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
