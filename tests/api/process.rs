//! `casapay-recon serve` as a child process on a free port, for the tests
//! that kill it.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_casapay-recon");

pub struct Service {
    pub child: Child,
    pub port: u16,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Reads stderr to its end; joined after the child exits so no line is missed.
    drain: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Kills the process (SIGKILL), waits for it, and reads the rest of its stderr.
    pub async fn kill(mut self) -> Vec<String> {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.drain.await.unwrap();
        self.stderr.lock().unwrap().clone()
    }
}

/// Starts `casapay-recon serve` on a free port and waits until it listens.
pub async fn start_service(dir: &Path) -> Service {
    start_service_with(dir, &[]).await
}

pub async fn start_service_with(dir: &Path, env: &[(&str, &str)]) -> Service {
    casapay_recon::casapay::client::install_tls_provider();
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("CASAPAY_DATABASE", dir.join("casapay-recon.db"))
        .env("CASAPAY_BIND", "127.0.0.1:0")
        .env("CASAPAY_MAIL_DIR", dir.join("mail"))
        // The port is read from the INFO line `serve` logs when it listens.
        .env("RUST_LOG", "info")
        .env_remove("CASAPAY_LOG_FORMAT")
        .env_remove("CASAPAY_WEBHOOK_SECRETS")
        .env_remove("CASAPAY_ADMIN_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.lock().unwrap().push(line.clone());
            if let Some(rest) = line
                .split("port=")
                .nth(1)
                .or_else(|| line.split("\"port\":").nth(1))
            {
                return rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap();
            }
        }
        panic!(
            "the service exited before listening: {:?}",
            stderr.lock().unwrap()
        );
    })
    .await
    .expect("the service listens within 30 s");
    // Keep draining stderr so the child never blocks on a full pipe.
    let sink = Arc::clone(&stderr);
    let drain = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    Service {
        child,
        port,
        stderr,
        drain,
    }
}
