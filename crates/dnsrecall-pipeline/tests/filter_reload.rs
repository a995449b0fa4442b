//! Filter lists are reloaded from disk without a restart; a broken list
//! keeps the previous set.

use std::path::Path;
use std::time::{Duration, Instant};

use dnsrecall_core::{Name, Rdata, Record, Rtype};
use dnsrecall_pipeline::{
    DropReason, Error, FilterConfig, FilterHandle, FilterReloader, ResponseMeta,
};

fn verdict(handle: &FilterHandle, name: &str) -> Option<DropReason> {
    let set = handle.load();
    let mut scratch = String::new();
    let response = set.check_response(&ResponseMeta::default(), &mut scratch);
    let record = Record {
        rrname: Name::from_presentation(name).unwrap(),
        rrtype: Rtype::A,
        bailiwick: None,
        rdata: Rdata::Wire(Box::new([192, 0, 2, 1])),
    };
    set.check_record(&record, response, &mut scratch)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn watcher_applies_edits_and_keeps_the_old_set_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.list");
    write(&deny, "# blocked\nexact:a.test\n");
    let config = FilterConfig {
        allow: vec![],
        deny: vec![deny.clone()],
        poll_interval_ms: 20,
    };
    let mut reloader = FilterReloader::new(config).unwrap();
    let handle = reloader.handle();
    let metrics = reloader.metrics();
    reloader.start_watching().unwrap();
    assert_eq!(verdict(&handle, "a.test"), Some(DropReason::DeniedName));
    assert_eq!(verdict(&handle, "b.test"), None);

    // Edit: a different size, so the change shows even with coarse mtimes.
    write(&deny, "# blocked\nsubdomain:b.test\n\n");
    wait_for("the edited list", || verdict(&handle, "x.b.test").is_some());
    assert_eq!(verdict(&handle, "a.test"), None);
    assert_eq!(metrics.reloads.get(), 1);

    // Broken: the old set stays, the failure is counted.
    write(&deny, "subdomain:c.test\ntype:NOT-A-TYPE\n");
    wait_for("the failed reload", || metrics.reload_failures.get() == 1);
    assert_eq!(verdict(&handle, "x.b.test"), Some(DropReason::DeniedName));
    assert_eq!(verdict(&handle, "c.test"), None);
    // The error names file and line (also what the watcher logged).
    let error = reloader.reload().unwrap_err();
    assert!(
        matches!(&error, Error::Parse { line: 2, path, .. } if *path == deny),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:2: ", deny.display())),
        "{error}"
    );

    // Fixed again.
    write(&deny, "subdomain:c.test\n");
    wait_for("the fixed list", || verdict(&handle, "c.test").is_some());
    reloader.stop_watching();

    // On demand (SIGHUP) without the watcher.
    write(&deny, "exact:d.test\n");
    assert_eq!(verdict(&handle, "d.test"), None);
    assert!(reloader.reload_if_changed().unwrap());
    assert_eq!(verdict(&handle, "d.test"), Some(DropReason::DeniedName));
    assert!(!reloader.reload_if_changed().unwrap());
}

#[test]
fn a_missing_file_fails_the_first_load() {
    let config = FilterConfig {
        deny: vec!["/nonexistent/deny.list".into()],
        ..FilterConfig::default()
    };
    let error = FilterReloader::new(config).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
}
