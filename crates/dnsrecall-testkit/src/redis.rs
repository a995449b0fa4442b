//! Private Redis servers for tests: [`RedisServer`] (one `redis-server` on
//! a free loopback port) and [`RedisCluster`] (masters with replicas, made
//! a cluster by `redis-cli --cluster create`). Debian's `redis-server` and
//! `redis-cli` must be installed (scripts/test.sh installs them); a missing
//! binary fails the test loudly. Everything is killed and its directory
//! removed on drop.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> ScratchDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "dnsrecall-{tag}-{}-{unique}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        ScratchDir(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free on 127.0.0.1 whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    for _ in 0..200 {
        let port = free_port();
        if port < 55_000 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair for a cluster node");
}

/// Waits until the server answers `PING` with `PONG`: listening is not
/// enough, since a server reloading its append-only file answers every
/// command with `-LOADING` until it is done.
fn wait_listening(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut reply = [0u8; 5];
            if stream.write_all(b"PING\r\n").is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG"
            {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("redis-server on port {port} exited at start: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server on port {port} did not answer PING within 30 s");
}

fn spawn_server(port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
    let mut command = Command::new("redis-server");
    command
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot start redis-server (install Debian's redis-server): {e}")
    });
    wait_listening(port, &mut child);
    child
}

/// Runs `redis-cli` with `args` and returns its standard output; panics
/// when it cannot run or fails.
pub fn redis_cli(args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli (install Debian's redis-tools): {e}"));
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One `redis-server` on a free loopback port, no persistence.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: ScratchDir,
    /// Extra `redis-server` arguments, given again on restart.
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server that writes every command to its append-only file
    /// before answering (`appendfsync always`), so a [`kill`](Self::kill)
    /// and [`restart`](Self::restart) keep everything acknowledged, as a
    /// production D4 server's Redis would.
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    fn start_with(extra: &[&str]) -> RedisServer {
        let dir = ScratchDir::new("redis");
        let port = free_port();
        let child = spawn_server(port, &dir.0, extra);
        RedisServer {
            child,
            port,
            _dir: dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/db`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill));
    /// it starts empty, unless started by
    /// [`start_persistent`](Self::start_persistent).
    pub fn restart(&mut self) {
        self.kill();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        self.child = spawn_server(self.port, &self._dir.0, &extra);
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One node of a [`RedisCluster`].
pub struct ClusterNode {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// A Redis Cluster on loopback: `masters` masters with `replicas_per_master`
/// replicas each, a node timeout of 1 s (failover in a few seconds).
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    _dir: ScratchDir,
}

impl RedisCluster {
    /// Starts the nodes, creates the cluster and waits until every node
    /// reports `cluster_state:ok`.
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        let dir = ScratchDir::new("redis-cluster");
        let total = masters * (1 + replicas_per_master);
        let mut nodes = Vec::with_capacity(total);
        for _ in 0..total {
            let port = free_cluster_port();
            let node_dir = dir.0.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap_or_else(|e| panic!("{e}"));
            let child = spawn_server(
                port,
                &node_dir,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-config-file",
                    "nodes.conf",
                ],
            );
            nodes.push(ClusterNode {
                child: Some(child),
                port,
            });
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        let replicas = replicas_per_master.to_string();
        args.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
        redis_cli(&args);
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Waits until every live node reports `cluster_state:ok` and knows
    /// every slot; panics after `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let healthy = self.live_ports().iter().all(|port| {
                let info = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis cluster not healthy within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The nodes.
    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// `redis://127.0.0.1:PORT` of every node (seed nodes).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }

    /// Ports of the nodes that are masters now (as a live node sees it).
    pub fn master_ports(&self) -> Vec<u16> {
        let port = self.live_ports()[0].to_string();
        let nodes = redis_cli(&["-p", &port, "cluster", "nodes"]);
        let mut ports: Vec<u16> = nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let flags = fields.get(2)?;
                if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                    return None;
                }
                let address = fields.get(1)?.split('@').next()?;
                address.rsplit_once(':')?.1.parse().ok()
            })
            .collect();
        ports.sort_unstable();
        ports
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"));
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
