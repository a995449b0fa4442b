//! Crash safety: `kill -9` of `serve` while dnstap streams in, and of
//! `import` in the middle of a file.
//!
//! **serve.** A sender streams dnstap `CLIENT_RESPONSE` frames (one A record
//! each, over a set of names that repeat, so records accumulate counts) to
//! `serve --dnstap-tcp` in rounds. A round counts as *acknowledged* when
//! the pipeline has taken all its entries into the de-duplication cache
//! (`dnsrecall_pipeline_dedup_in_total` on /metrics). At random moments the
//! server is killed with SIGKILL and restarted on the same data directory.
//! After every restart the store must open and every stored record must
//! decode (`export` of everything), and at the end, for every record:
//! * the stored count never exceeds what was sent (nothing written twice);
//! * it is at least the number of sightings acknowledged more than one
//!   flush window before the kill that followed them (what a kill loses is
//!   at most the last window). The window is the configured
//!   `flush_interval_secs` plus the writer's 1 s ticker plus a margin for
//!   the write itself.
//!
//! **import.** A passivedns file is imported and the import killed at a
//! random moment; the store must open and decode, and re-running the import
//! (the documented recovery: imports are at-least-once) leaves every record
//! with at least its count in the file and at most twice it.
//!
//! The seed of the random kill times is printed; `CRASH_SEED=N` replays it.

mod util;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use util::{Server, TestDir};

/// Kills of `serve` (the issue asks for at least 20).
const KILLS: usize = 20;
/// `pipeline.dedup.flush_interval_secs` of the server under test.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// What a kill may lose: sightings acknowledged this long before it. The
/// flush interval, the 1 s ticker that triggers interval flushes, and 2 s
/// for the write to reach RocksDB's WAL on a loaded 2-core machine.
const LOSS_WINDOW: Duration = Duration::from_secs(4);
/// Frames per round (one acknowledgement wait per round).
const ROUND_FRAMES: usize = 250;
/// Distinct names; frames cycle over them, so most records are seen
/// many times and survive several kills.
const NAMES: usize = 3000;

//---- a tiny deterministic random source (no dependency needed) ----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `low..high` milliseconds.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low))
    }
}

fn seed() -> u64 {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("crash test seed: CRASH_SEED={seed}");
    seed
}

//---- dnstap encoding (protobuf and Frame Streams written out by hand, so
//---- the test depends on the wire formats only) ----

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn field_varint(tag: u32, value: u64, out: &mut Vec<u8>) {
    varint(u64::from(tag) << 3, out);
    varint(value, out);
}

fn field_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint((u64::from(tag) << 3) | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn name_wire(name: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    for label in name.split('.') {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire
}

/// The owner name of record `index`.
fn record_name(index: usize) -> String {
    format!("n{index}.crash.example")
}

/// The address every record of name `index` points to.
fn record_address(index: usize) -> [u8; 4] {
    [198, 51, (index / 250) as u8, (index % 250) as u8 + 1]
}

/// A DNS response (QR, RD, RA) with one A record for `index`.
fn response(index: usize, id: u16) -> Vec<u8> {
    let name = name_wire(&record_name(index));
    let mut wire = Vec::new();
    wire.extend_from_slice(&id.to_be_bytes());
    wire.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    wire.extend_from_slice(&name);
    wire.extend_from_slice(&[0, 1, 0, 1]);
    wire.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    wire.extend_from_slice(&record_address(index));
    wire
}

/// A dnstap `CLIENT_RESPONSE` frame carrying `response(index)`.
fn dnstap_frame(index: usize, id: u16, time: u64) -> Vec<u8> {
    let mut message = Vec::new();
    field_varint(1, 6, &mut message); // type CLIENT_RESPONSE
    field_varint(2, 1, &mut message); // socket_family INET
    field_varint(3, 1, &mut message); // socket_protocol UDP
    field_bytes(4, &[127, 0, 0, 1], &mut message); // query_address
    field_bytes(5, &[127, 0, 0, 53], &mut message); // response_address
    field_varint(6, 40000, &mut message); // query_port
    field_varint(7, 53, &mut message); // response_port
    field_varint(12, time, &mut message); // response_time_sec
    field_bytes(14, &response(index, id), &mut message); // response_message
    let mut dnstap = Vec::new();
    field_bytes(1, b"crash-test", &mut dnstap); // identity
    field_bytes(14, &message, &mut dnstap); // message
    field_varint(15, 1, &mut dnstap); // type MESSAGE
    let mut frame = (dnstap.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&dnstap);
    frame
}

/// A unidirectional Frame Streams START control frame for dnstap.
fn start_frame() -> Vec<u8> {
    let content_type = b"protobuf:dnstap.Dnstap";
    let mut control = Vec::new();
    control.extend_from_slice(&2u32.to_be_bytes()); // START
    control.extend_from_slice(&1u32.to_be_bytes()); // CONTENT_TYPE field
    control.extend_from_slice(&(content_type.len() as u32).to_be_bytes());
    control.extend_from_slice(content_type);
    let mut frame = 0u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&(control.len() as u32).to_be_bytes());
    frame.extend_from_slice(&control);
    frame
}

//---- the server under test ----

fn metric(server: &Server, name: &str) -> Option<u64> {
    let response = server.get("/metrics", &[]);
    response.body.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.trim().parse::<f64>().ok().map(|v| v as u64))?
    })
}

/// Every stored record as (name, count), through `export` (a separate
/// process reading the data directory as a follower): it fails on a record
/// that does not decode.
fn stored_counts(dir: &TestDir) -> HashMap<String, u64> {
    let output = dir.run(&["export"]);
    // Killed before it created the store: nothing stored yet.
    if !output.status.success()
        && String::from_utf8_lossy(&output.stderr).contains("store not yet created")
    {
        return HashMap::new();
    }
    assert!(
        output.status.success(),
        "export failed after a kill: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut counts = HashMap::new();
    for line in String::from_utf8(output.stdout)
        .expect("UTF-8 export")
        .lines()
    {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad export line {line}: {e}"));
        let name = record["rrname"].as_str().expect("rrname").to_string();
        let count = record["count"].as_u64().expect("count");
        assert!(count > 0, "record with count 0: {line}");
        *counts.entry(name).or_default() += count;
    }
    counts
}

/// A round of frames sent to the server, and when the pipeline had them.
struct Round {
    /// Frames per name index.
    sent: HashMap<usize, u64>,
    acknowledged_at: Option<Instant>,
}

#[test]
fn serve_survives_kill_9_losing_at_most_one_flush_window() {
    let dir = TestDir::new();
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!(
            "[pipeline.dedup]\nflush_interval_secs = {}\n",
            FLUSH_INTERVAL.as_secs()
        ),
    )
    .expect("write config");
    let mut random = XorShift(seed());
    let mut next_index = 0usize;
    // Every round ever sent, and the kill times (a round is lost-able when
    // it was acknowledged within LOSS_WINDOW before the next kill).
    let mut rounds: Vec<Round> = Vec::new();
    let mut kills: Vec<Instant> = Vec::new();
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    for life in 0..=KILLS {
        let dnstap_port = util::free_port();
        let dnstap = format!("127.0.0.1:{dnstap_port}");
        let server = dir.serve(&[
            "--config",
            config.to_str().expect("path"),
            "--dnstap-tcp",
            &dnstap,
        ]);
        // The store opened; everything stored so far decodes.
        let counts = stored_counts(&dir);
        check_bounds(&counts, &rounds, &kills, false);

        let mut stream = connect(&dnstap);
        stream.write_all(&start_frame()).expect("send START");
        let lifetime = random.millis(1000, 4500);
        let born = Instant::now();
        let mut taken_base = metric(&server, "dnsrecall_pipeline_dedup_in_total").unwrap_or(0);
        while born.elapsed() < lifetime {
            let mut round = Round {
                sent: HashMap::new(),
                acknowledged_at: None,
            };
            let mut bytes = Vec::new();
            for _ in 0..ROUND_FRAMES {
                let index = (next_index * 7919) % NAMES;
                bytes.extend(dnstap_frame(index, next_index as u16, now_secs));
                *round.sent.entry(index).or_default() += 1;
                next_index += 1;
            }
            stream.write_all(&bytes).expect("send frames");
            rounds.push(round);
            // Wait (bounded) for the pipeline to take the round.
            let wanted = taken_base + ROUND_FRAMES as u64;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if metric(&server, "dnsrecall_pipeline_dedup_in_total").unwrap_or(0) >= wanted {
                    if let Some(last) = rounds.last_mut() {
                        last.acknowledged_at = Some(Instant::now());
                    }
                    taken_base = wanted;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                rounds.last().and_then(|r| r.acknowledged_at).is_some(),
                "the server did not take a round of {ROUND_FRAMES} frames within 10 s"
            );
        }
        drop(stream);
        if life < KILLS {
            let mut server = server;
            server.child.kill().expect("kill -9 serve");
            kills.push(Instant::now());
            let _ = server.child.wait();
        } else {
            assert!(server.stop(), "serve did not stop cleanly on SIGTERM");
        }
    }
    let counts = stored_counts(&dir);
    check_bounds(&counts, &rounds, &kills, true);
}

/// Checks the stored counts against what was sent: never more than sent;
/// at least what was acknowledged outside every loss window. With `all`,
/// the rounds after the last kill count too (they ended with a SIGTERM,
/// which flushes everything).
fn check_bounds(counts: &HashMap<String, u64>, rounds: &[Round], kills: &[Instant], all: bool) {
    let mut sent: HashMap<usize, u64> = HashMap::new();
    let mut safe: HashMap<usize, u64> = HashMap::new();
    let mut lost_able = 0usize;
    for round in rounds {
        let acknowledged = round.acknowledged_at.expect("every round was acknowledged");
        let next_kill = kills.iter().find(|kill| **kill >= acknowledged);
        let is_safe = match next_kill {
            Some(kill) => acknowledged + LOSS_WINDOW <= *kill,
            None => all,
        };
        if !is_safe && next_kill.is_some() {
            lost_able += 1;
        }
        for (index, n) in &round.sent {
            *sent.entry(*index).or_default() += n;
            if is_safe {
                *safe.entry(*index).or_default() += n;
            }
        }
    }
    for (index, sent) in &sent {
        let name = record_name(*index);
        let stored = counts.get(&name).copied().unwrap_or(0);
        assert!(
            stored <= *sent,
            "{name}: stored count {stored} exceeds the {sent} sightings sent (written twice)"
        );
        let floor = safe.get(index).copied().unwrap_or(0);
        assert!(
            stored >= floor,
            "{name}: stored count {stored} below the {floor} sightings acknowledged more than \
             {LOSS_WINDOW:?} before a kill ({} kills, {lost_able} rounds inside a loss window)",
            kills.len()
        );
    }
    for name in counts.keys() {
        assert!(name.ends_with(".crash.example"), "unexpected record {name}");
    }
}

fn connect(address: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => return stream,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "cannot connect to dnstap {address}: {error}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn import_killed_mid_file_leaves_a_usable_store_and_rerunning_it_is_at_least_once() {
    let dir = TestDir::new();
    let file = dir.path("big.passivedns");
    let lines = 400_000usize;
    let names = 50_000usize;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("create"));
        for line in 0..lines {
            let index = (line * 7919) % names;
            let [a, b, c, d] = record_address(index % 60_000);
            writeln!(
                out,
                "1700000000.{line:06}||10.0.0.1||10.0.0.53||IN||{name}.||A||{a}.{b}.{c}.{d}||3600||1",
                name = record_name(index)
            )
            .expect("write line");
        }
    }
    let mut expected: HashMap<String, u64> = HashMap::new();
    for line in 0..lines {
        *expected
            .entry(record_name((line * 7919) % names))
            .or_default() += 1;
    }
    let mut random = XorShift(seed());
    let mut child = dir
        .command(&[
            "import",
            "--format",
            "passivedns",
            file.to_str().expect("path"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start import");
    std::thread::sleep(random.millis(200, 1200));
    let finished_early = child.try_wait().expect("wait").is_some();
    child.kill().ok();
    let _ = child.wait();
    // The store opens and decodes, whatever the kill interrupted.
    let partial = stored_counts(&dir);
    for (name, count) in &partial {
        let in_file = expected.get(name).copied().unwrap_or(0);
        assert!(
            *count <= in_file,
            "{name}: {count} after a killed import, the file has {in_file}"
        );
    }
    // Recovery: import the whole file again.
    let summary = dir.import(&[&file]);
    assert_eq!(summary["lines"].as_u64(), Some(lines as u64), "{summary}");
    let counts = stored_counts(&dir);
    for (name, in_file) in &expected {
        let stored = counts.get(name).copied().unwrap_or(0);
        assert!(
            stored >= *in_file && stored <= 2 * in_file,
            "{name}: {stored} after re-import, the file has {in_file} (at-least-once: \
             between {in_file} and {})",
            2 * in_file
        );
    }
    eprintln!(
        "import killed {}; {} records stored before the re-import",
        if finished_early {
            "after it had finished"
        } else {
            "mid-file"
        },
        partial.len()
    );
}
