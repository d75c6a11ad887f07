//! A PostgreSQL cluster of the test's own, made and started by scripts/lib/services.sh
//! (`pg_cluster_start`: initdb, start, wait), so that the test may crash and restart it; the
//! server the project shares is never stopped. Dropping it stops the cluster and deletes it.

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Stdio};

use crate::{free_port, random_id, repo_root};

pub struct PrivatePostgres {
    /// Holds the data folder; searchable by others, so that the `postgres` user, which runs the
    /// server when we are root, can reach the data folder inside it.
    folder: PathBuf,
    data: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Creates a cluster and starts it on a free port.
    pub async fn start() -> Self {
        let folder = std::env::temp_dir().join(format!("cqrs-faults-pg-{}", random_id()));
        std::fs::create_dir_all(&folder).expect("create the cluster's folder");
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755))
            .expect("make the cluster's folder searchable");
        let cluster = Self {
            data: folder.join("data"),
            folder,
            port: free_port(),
        };
        cluster.start_again().await;
        cluster
    }

    /// The server's URL (without a database).
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: no shutdown checkpoint,
    /// the next start recovers from the WAL); returns once it is down.
    pub async fn crash(&self) {
        self.services(&["pg_cluster_stop", self.data(), "immediate"])
            .await;
    }

    /// Starts the (stopped) server again on the same port; returns once it accepts connections.
    pub async fn start_again(&self) {
        self.services(&["pg_cluster_start", self.data(), &self.port.to_string()])
            .await;
    }

    fn data(&self) -> &str {
        self.data.to_str().expect("a UTF-8 temporary folder")
    }

    async fn services(&self, call: &[&str]) {
        let output = tokio::process::Command::new("bash")
            .args(services_call(call))
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run bash");
        assert!(
            output.status.success(),
            "{} failed: {}",
            call.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `bash` arguments that source services.sh and call one of its functions.
fn services_call(call: &[&str]) -> Vec<String> {
    let script = repo_root().join("scripts/lib/services.sh");
    let mut args = vec![
        "-c".to_owned(),
        r#"set -euo pipefail; source "$0"; "$@""#.to_owned(),
        script.to_string_lossy().into_owned(),
    ];
    args.extend(call.iter().map(|arg| (*arg).to_owned()));
    args
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let stopped = std::process::Command::new("bash")
            .args(services_call(&[
                "pg_cluster_stop",
                self.data(),
                "immediate",
            ]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|status| status.success()) {
            eprintln!(
                "could not stop the test's PostgreSQL in {}",
                self.data.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
