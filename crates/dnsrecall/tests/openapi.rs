//! `/openapi.json` against the running server: schemathesis (pip, in the
//! venv named by DNSRECALL_TEST_PYTHON, installed by scripts/test.sh)
//! generates requests for every documented operation and checks that none
//! gets a 5xx and that every answer matches the document: status code,
//! content type, headers and body schema, the NDJSON lines of the D4 and
//! SAF streams included.

mod util;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::TestDir;

const KEY: &str = "openapi-test-key";

/// Schemathesis has no deserializer for NDJSON and would skip those
/// bodies; this one reads the lines as an array, as the document's schemas
/// for `application/x-ndjson` describe them. A line that is not JSON fails
/// the check.
const HOOKS: &str = r#"
import json
import schemathesis


@schemathesis.deserializer("application/x-ndjson")
def ndjson_lines(ctx, response):
    return [json.loads(line) for line in response.content.decode("utf-8").splitlines() if line]
"#;

/// The checks that apply to any API. Left out: the ones about the data a
/// request carries (`positive_data_acceptance`: a string path segment may
/// still be a malformed name, which is a 400; `negative_data_rejection`:
/// DNSDB ignores unknown parameters by contract), and stateful ones that
/// need resources created by the API.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance";

/// Operations whose every parameter the coverage phase also walks
/// (boundary values, wrong types, missing and unexpected values, other
/// methods): it generates every case the schema defines, about 150 per
/// DNSDB operation, too many to run on all 40 in time. These cover each
/// kind of parameter once: the D4 routes with their dribble headers,
/// annotate's body, and per DNSDB path parameter one lookup, spread over
/// v2 lookup, v2 summarize and v1.
const COVERAGE_PATHS: &str = "^(/query/\\{q\\}|/fquery/\\{q\\}|/pdns/query/\\{q\\}|/info|/annotate\
|/dnsdb/v2/ping|/dnsdb/v2/rate_limit|/lookup/rate_limit\
|/dnsdb/v2/lookup/rrset/name/\\{owner\\}/\\{rrtype\\}/\\{bailiwick\\}\
|/dnsdb/v2/summarize/rdata/ip/\\{ip\\}/\\{rrtype\\}\
|/lookup/rdata/raw/\\{hex\\}/\\{rrtype\\}\
|/dnsdb/v2/lookup/rrset/raw/\\{hex\\}/\\{rrtype\\}\
|/dnsdb/v2/summarize/rdata/name/\\{name\\}/\\{rrtype\\})$";

/// Generated cases per operation in the fuzzing phase.
const MAX_EXAMPLES: &str = "12";

/// Hard limit for the whole test.
const DEADLINE: Duration = Duration::from_secs(80);

/// The venv's `schemathesis` next to its python, else the one on PATH.
fn schemathesis() -> PathBuf {
    std::env::var_os("DNSRECALL_TEST_PYTHON")
        .map(PathBuf::from)
        .and_then(|python| python.parent().map(|bin| bin.join("schemathesis")))
        .filter(|cli| cli.exists())
        .unwrap_or_else(|| PathBuf::from("schemathesis"))
}

/// Runs `schemathesis run` against the server with `phases`, killing it at
/// `deadline`; panics with its output unless it passes.
fn run_schemathesis(dir: &TestDir, url: &str, phases: &[&str], deadline: Instant) {
    let mut child = Command::new(schemathesis())
        .arg("run")
        .arg(format!("{url}/openapi.json"))
        .args(["--header", &format!("X-API-Key: {KEY}")])
        .args(["--checks", CHECKS])
        .args(phases)
        .args(["--seed", "6"])
        // One worker: hypothesis' lambda source cache is not thread-safe
        // ("AST constructor recursion depth mismatch" with two).
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--max-failures", "20"])
        .args(["--no-shrink", "--output-truncate", "false"])
        .env("SCHEMATHESIS_HOOKS", "openapi_hooks")
        .env("PYTHONPATH", dir.dir.path())
        .env("NO_COLOR", "1")
        // Reports and hypothesis' database go to the test's directory.
        .current_dir(dir.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "run schemathesis (set DNSRECALL_TEST_PYTHON to a venv with schemathesis; \
             scripts/test.sh does)",
        );
    // Read the pipes on threads so a chatty run cannot block on them.
    let stdout = child.stdout.take().map(read_to_end);
    let stderr = child.stderr.take().map(read_to_end);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "{}\n{}",
        stdout
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default(),
        stderr
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    );
    let Some(status) = status else {
        panic!("schemathesis {phases:?} ran past the test's {DEADLINE:?}:\n{output}");
    };
    assert!(
        status.success(),
        "schemathesis {phases:?} failed ({status}):\n{output}"
    );
}

#[test]
fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let started = Instant::now();
    let dir = TestDir::new();
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = manifest.join("../../samples/sample.cof.ndjson");
    let draft = util::test_data().join("cof/cof-draft-08_examples.ndjson");
    // The documented example of the bailiwick paths, so they find data.
    let bailiwick = dir.path("bailiwick.ndjson");
    std::fs::write(
        &bailiwick,
        "{\"rrname\":\"www.example.com\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.10\",\
         \"bailiwick\":\"example.com\",\"time_first\":1700000000,\"time_last\":1700000500,\
         \"zone_time_first\":1690000000,\"zone_time_last\":1700000600,\"count\":3}\n",
    )
    .unwrap();
    dir.import(&[&sample, &draft, &bailiwick]);
    let config = dir.path("dnsrecall.toml");
    std::fs::write(&config, format!("[api]\napi_keys = [\"{KEY}\"]\n")).unwrap();
    let server = dir.serve(&["--config", config.to_str().unwrap()]);

    // The document needs no key and is OpenAPI 3.x.
    let document = server.get("/openapi.json", &[]);
    assert_eq!(document.status, 200, "{}", document.body);
    assert_eq!(document.header("content-type"), Some("application/json"));
    let document: serde_json::Value = serde_json::from_str(&document.body).expect("JSON");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{}",
        document["openapi"]
    );

    std::fs::write(dir.path("openapi_hooks.py"), HOOKS).unwrap();
    let deadline = started + DEADLINE;
    let url = server.url();
    run_schemathesis(
        &dir,
        &url,
        &[
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            MAX_EXAMPLES,
        ],
        deadline,
    );
    run_schemathesis(
        &dir,
        &url,
        &[
            "--phases",
            "coverage",
            "--include-path-regex",
            COVERAGE_PATHS,
        ],
        deadline,
    );
    assert!(server.stop(), "server did not stop cleanly");
    eprintln!("OpenAPI test done in {:?}", started.elapsed());
}

fn read_to_end(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}
