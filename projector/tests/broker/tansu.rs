//! A Kafka-protocol broker as its own process for these tests: `tansu`, with SQLite
//! storage in a temporary directory, on a free port. Each test has its own broker, so
//! topics and consumer groups never mix between tests, and a test can stop the broker
//! and start it again on the same port and storage.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ticketing_bus::KafkaConfig;

/// Partitions per topic.
pub const PARTITIONS: i32 = 3;

pub struct Tansu {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

/// The broker program: `TANSU_BIN` or `tansu` on the `PATH`.
fn program() -> String {
    std::env::var("TANSU_BIN").unwrap_or_else(|_| "tansu".to_owned())
}

/// Whether the broker program answers `--version` (probed once per process): its
/// tests' trials are skipped when it does not and `CI` is not set.
pub fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        Command::new(program())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

impl Tansu {
    /// Starts a broker with every topic created.
    ///
    /// # Panics
    /// When tansu is not [`installed`] ([`ticketing_store::testing::service_missing`]):
    /// with `CI` set, where the broker tests must run; elsewhere their trials are
    /// skipped without it, so a test that gets here was run anyway (`--ignored`).
    /// Also when the broker does not start or its topics cannot be created.
    pub async fn start() -> Self {
        if !installed() {
            ticketing_store::testing::service_missing(
                &format!("the Kafka-protocol broker `{}` is not installed", program()),
                "CI must run the broker tests (cargo install tansu --locked --features libsql)",
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Self {
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory"),
            port,
        };
        broker.resume();
        let created = ticketing_bus::kafka::ensure_topics(
            &KafkaConfig::new(broker.brokers()),
            PARTITIONS,
            1,
            None,
            Duration::from_secs(20),
        )
        .await
        .expect("the topics are created");
        assert_eq!(created.len(), 5, "four event topics and the dead letters");
        broker
    }

    /// `host:port` for `KAFKA_BROKERS`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker, as a crash or a network partition would look to clients.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker (again) on the same port and storage, and waits until it
    /// accepts connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("the broker's log file");
        let child = Command::new(program())
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .current_dir(self.dir.path())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("the broker starts");
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the broker did not listen on {address} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}
