//! `dnsrecall query`: look a name or an address up in the local data
//! directory (readable while a server writes to it) or on a server.
//!
//! A plain NAME|IP uses the D4 lookup (`/query` on a server). Searches
//! (wildcards, `--rdata`, `--ip`, `--bailiwick`, time fences) are DNSDB
//! lookups: the local store is read by the query engine the server runs
//! (`dnsrecall_query::dnsdb`: the same grammar, [`dnsdb::lookup`] through
//! the same fences and limit) and a server is asked on `/dnsdb/v2` (SAF),
//! so both give the same rows in the same (store) order.

use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::{Context, bail};
use dnsrecall_core::Entry;
use dnsrecall_core::Rtype;
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_core::store::TypeFilter;
use dnsrecall_query::d4::{self, Subject};
use dnsrecall_query::dnsdb::{self, End, Lookup};

use crate::cli::{OutputFormat, QueryArgs};
use crate::config::Config;

/// One printable row, whichever side produced it.
struct Row {
    rrname: String,
    rrtype: String,
    rdata: String,
    count: u64,
    time_first: i64,
    time_last: i64,
    /// Without the trailing dot; rrset searches only.
    bailiwick: Option<String>,
}

pub fn run(args: &QueryArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if is_search(args) {
        return search(args, config);
    }
    let subject = args.subject.as_deref().unwrap_or_default();
    let rtype = match &args.r#type {
        Some(text) => Some(
            text.parse::<Rtype>()
                .map_err(|_| anyhow::anyhow!("unknown record type {text:?}"))?,
        ),
        None => None,
    };
    let mut body = match &args.server {
        Some(server) => remote(server, args, subject, rtype)?,
        None => local(subject, config, rtype)?,
    };
    if args.limit > 0
        && let Some(cut) = body
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(limit_index(args.limit))
            .map(|(i, _)| i)
        && cut + 1 < body.len()
    {
        body.truncate(cut + 1);
        eprintln!(
            "dnsrecall: showing the first {} records (--limit)",
            args.limit
        );
    }
    let output = match args.format {
        OutputFormat::Json => body,
        OutputFormat::Text => render_table(&parse_rows(&body)?).into_bytes(),
        OutputFormat::Dnsdbq => render_dnsdbq(&parse_rows(&body)?).into_bytes(),
    };
    write_out(&output)
}

fn limit_index(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(1)).unwrap_or(usize::MAX)
}

fn write_out(output: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(output).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing the answer")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Whether the arguments need a DNSDB search rather than the plain lookup.
fn is_search(args: &QueryArgs) -> bool {
    args.rdata.is_some()
        || args.ip.is_some()
        || args.bailiwick.is_some()
        || args.first_after.is_some()
        || args.first_before.is_some()
        || args.last_after.is_some()
        || args.last_before.is_some()
        || args
            .subject
            .as_deref()
            .is_some_and(|s| s.contains('*') || s.starts_with("+."))
}

/// A search: what to look up and the DNSDB path that asks a server for it.
struct Search {
    lookup: Lookup,
    path: String,
}

fn build_search(args: &QueryArgs) -> anyhow::Result<Search> {
    let bad = |error: dnsrecall_query::QueryError| anyhow::anyhow!("{error}");
    let types = dnsdb::parse_types(args.r#type.as_deref()).map_err(bad)?;
    let type_segment = |default: Option<&str>| match (args.r#type.as_deref(), default) {
        (Some(t), _) | (None, Some(t)) => format!("/{}", encode(t)),
        (None, None) => String::new(),
    };
    let address_search = |text: &str| -> anyhow::Result<Search> {
        if let Some(t) = args.r#type.as_deref()
            && dnsdb::check_address_type(t).is_err()
        {
            bail!("--type {t} does not go with an address search (A, AAAA or ANY)");
        }
        let (first, last) = dnsdb::parse_address_range(text.trim()).map_err(bad)?;
        Ok(Search {
            lookup: Lookup::RdataIp { first, last },
            path: format!(
                "rdata/ip/{}{}",
                encode(&text.trim().replace('/', ",")),
                type_segment(None)
            ),
        })
    };
    if let Some(text) = &args.rdata {
        let (name, single_label) = dnsdb::parse_pattern(text.trim()).map_err(bad)?;
        if single_label.is_some() {
            bail!("the + wildcard is supported on owner names only");
        }
        return Ok(Search {
            lookup: Lookup::RdataName { name, types },
            path: format!("rdata/name/{}{}", encode(text.trim()), type_segment(None)),
        });
    }
    if let Some(text) = &args.ip {
        return address_search(text);
    }
    let subject = args.subject.as_deref().unwrap_or_default().trim();
    if subject.parse::<std::net::IpAddr>().is_ok() {
        if args.bailiwick.is_some() {
            bail!("--bailiwick goes with name searches only");
        }
        return address_search(subject);
    }
    let (name, single_label) = dnsdb::parse_pattern(subject).map_err(bad)?;
    let bailiwick = match &args.bailiwick {
        Some(text) => Some(
            dnsrecall_core::Name::from_presentation(text.trim())
                .map_err(|e| anyhow::anyhow!("bad bailiwick {text:?}: {e}"))?,
        ),
        None => None,
    };
    let path = match &args.bailiwick {
        Some(zone) => format!(
            "rrset/name/{}{}/{}",
            encode(subject),
            type_segment(Some("ANY")),
            encode(zone.trim())
        ),
        None => format!("rrset/name/{}{}", encode(subject), type_segment(None)),
    };
    Ok(Search {
        lookup: Lookup::Rrset {
            query: dnsrecall_core::store::RrsetQuery {
                name,
                types,
                bailiwick,
            },
            single_label,
        },
        path,
    })
}

/// The DNSDB query parameters of the limit and the fences.
fn search_params(args: &QueryArgs) -> HashMap<String, String> {
    let mut raw = HashMap::new();
    raw.insert("limit".to_string(), args.limit.to_string());
    for (key, value) in [
        ("time_first_after", args.first_after),
        ("time_first_before", args.first_before),
        ("time_last_after", args.last_after),
        ("time_last_before", args.last_before),
    ] {
        if let Some(value) = value {
            raw.insert(key.to_string(), value.to_string());
        }
    }
    raw
}

fn search(args: &QueryArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let search = build_search(args)?;
    let raw = search_params(args);
    let (rows, limited) = match &args.server {
        Some(server) => search_remote(server, args, &search, &raw)?,
        None => search_local(config, &search, &raw)?,
    };
    if limited {
        eprintln!(
            "dnsrecall: result limit reached, showing the first {} records (--limit)",
            rows.len()
        );
    }
    let output = match args.format {
        OutputFormat::Json => render_json(&rows),
        OutputFormat::Text => render_table(&rows),
        OutputFormat::Dnsdbq => render_dnsdbq(&rows),
    };
    write_out(output.as_bytes())
}

fn search_local(
    config: &Config,
    search: &Search,
    raw: &HashMap<String, String>,
) -> anyhow::Result<(Vec<Row>, bool)> {
    let now = jiff::Timestamp::now().as_second().max(0).unsigned_abs();
    let params = dnsdb::parse_params(raw, u64::MAX, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let follower = super::open_follower(config)?;
    let rrset = search.lookup.is_rrset();
    let mut rows = Vec::new();
    let outcome = dnsdb::lookup(
        follower.as_ref(),
        &search.lookup,
        &params,
        &mut |entry: Entry| {
            rows.push(Row {
                rrname: entry.record.rrname.to_dotless(),
                rrtype: entry.record.rrtype.to_string(),
                rdata: entry.record.rdata_text(),
                count: entry.seen.count.max(1),
                time_first: i64::try_from(entry.seen.time_first).unwrap_or(i64::MAX),
                time_last: i64::try_from(entry.seen.time_last).unwrap_or(i64::MAX),
                bailiwick: if rrset {
                    entry.record.bailiwick.as_ref().map(|b| b.to_dotless())
                } else {
                    None
                },
            });
            ControlFlow::Continue(())
        },
    )
    .map_err(store_failure)
    .context("scanning the store")?;
    let limited = matches!(outcome.end, End::Limited(_));
    Ok((rows, limited))
}

fn search_remote(
    server: &str,
    args: &QueryArgs,
    search: &Search,
    raw: &HashMap<String, String>,
) -> anyhow::Result<(Vec<Row>, bool)> {
    let mut url = format!(
        "{}/dnsdb/v2/lookup/{}?swclient=dnsrecall",
        server.trim_end_matches('/'),
        search.path
    );
    let mut keys: Vec<_> = raw.iter().collect();
    keys.sort();
    for (key, value) in keys {
        url.push_str(&format!("&{key}={}", encode(value)));
    }
    let body = http_get(
        &url,
        args.api_key.as_deref(),
        &[("Accept", "application/x-ndjson")],
    )?;
    parse_saf(&body).with_context(|| format!("{url}: bad answer"))
}

/// Reads a SAF stream (`reference/dnsdb.md` §1.5); true when it ended
/// `limited`.
fn parse_saf(body: &[u8]) -> anyhow::Result<(Vec<Row>, bool)> {
    let mut rows = Vec::new();
    for line in body
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
    {
        let value: serde_json::Value =
            serde_json::from_slice(line).context("a line is not JSON")?;
        if let Some(obj) = value.get("obj") {
            let text = |key: &str| obj[key].as_str().unwrap_or_default().to_string();
            let dotless = |name: String| match name.strip_suffix('.') {
                Some(stripped) => stripped.to_string(),
                None => name,
            };
            let rdata = match &obj["rdata"] {
                serde_json::Value::Array(items) => items
                    .first()
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                other => other.as_str().unwrap_or_default().to_string(),
            };
            rows.push(Row {
                rrname: dotless(text("rrname")),
                rrtype: text("rrtype"),
                rdata,
                count: obj["count"].as_u64().unwrap_or(0),
                time_first: obj["time_first"].as_i64().unwrap_or(0),
                time_last: obj["time_last"].as_i64().unwrap_or(0),
                bailiwick: obj["bailiwick"].as_str().map(|b| dotless(b.to_string())),
            });
        }
        match value.get("cond").and_then(|c| c.as_str()) {
            Some("succeeded") => return Ok((rows, false)),
            Some("limited") => return Ok((rows, true)),
            Some("failed") => bail!(
                "the server failed: {}",
                value["msg"].as_str().unwrap_or("no message")
            ),
            _ => {}
        }
    }
    bail!("the answer has no SAF terminator (truncated)")
}

/// Percent-encodes a path segment or parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn local(subject: &str, config: &Config, rtype: Option<Rtype>) -> anyhow::Result<Vec<u8>> {
    let subject = Subject::parse(subject).map_err(|e| anyhow::anyhow!("{e}"))?;
    let follower = super::open_follower(config)?;
    let types = rtype.map_or(TypeFilter::All, TypeFilter::Only);
    let collected = d4::lookup(follower.as_ref(), &subject, types, config.api.max_results)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if collected.total > collected.entries.len() {
        eprintln!(
            "dnsrecall: showing {} of {} records (api.max_results)",
            collected.entries.len(),
            collected.total
        );
    }
    let style = CofStyle {
        origin: config.api.origin.as_deref(),
        ..CofStyle::default()
    };
    let mut body = Vec::new();
    for entry in &collected.entries {
        cof::write_line(entry, &style, &mut body);
    }
    Ok(body)
}

/// The store's own error, without the engine's wrapping (the message the
/// command printed before the engine had its own error type).
fn store_failure(error: dnsrecall_query::QueryError) -> anyhow::Error {
    match error {
        dnsrecall_query::QueryError::Store(error) => error.into(),
        other => other.into(),
    }
}

fn remote(
    server: &str,
    args: &QueryArgs,
    subject: &str,
    rtype: Option<Rtype>,
) -> anyhow::Result<Vec<u8>> {
    let url = format!("{}/query/{}", server.trim_end_matches('/'), subject.trim());
    let filter = rtype.map(|t| t.to_string());
    let headers: Vec<(&str, &str)> = filter
        .iter()
        .map(|t| ("dribble-filter-rrtype", t.as_str()))
        .collect();
    http_get(&url, args.api_key.as_deref(), &headers)
}

/// One GET; a non-2xx status is an error carrying the body's first line.
fn http_get(url: &str, api_key: Option<&str>, headers: &[(&str, &str)]) -> anyhow::Result<Vec<u8>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(key) = api_key {
            request = request.header("X-API-Key", key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let body = response.bytes().await.context("reading the answer")?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            bail!(
                "{url}: HTTP {status}: {}",
                text.lines().next().unwrap_or_default().trim()
            );
        }
        Ok(body.to_vec())
    })
}

fn parse_rows(body: &[u8]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let value: serde_json::Value =
            serde_json::from_slice(line).context("the answer is not NDJSON")?;
        let text = |key: &str| match &value[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let number = |key: &str| value[key].as_i64().unwrap_or(0);
        rows.push(Row {
            rrname: text("rrname"),
            rrtype: text("rrtype"),
            rdata: text("rdata"),
            count: value["count"].as_u64().unwrap_or(0),
            time_first: number("time_first"),
            time_last: number("time_last"),
            bailiwick: value["bailiwick"]
                .as_str()
                .map(|b| b.trim_end_matches('.').to_string()),
        });
    }
    Ok(rows)
}

fn human_time(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| epoch.to_string())
}

fn render_table(rows: &[Row]) -> String {
    let header = [
        "rrname",
        "rrtype",
        "rdata",
        "count",
        "first seen (UTC)",
        "last seen (UTC)",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.rrname.clone(),
                r.rrtype.clone(),
                r.rdata.clone(),
                r.count.to_string(),
                human_time(r.time_first),
                human_time(r.time_last),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |row: &[&str]| {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 3 {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&header);
    for row in &cells {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        push_row(&refs);
    }
    out
}

/// dnsdbq's text presentation (`present_text_lookup`): one block per
/// record, a blank line between blocks.
fn render_dnsdbq(rows: &[Row]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            ";; record times: {} .. {}\n",
            human_time(row.time_first),
            human_time(row.time_last)
        ));
        match &row.bailiwick {
            Some(zone) => out.push_str(&format!(";;  count: {}; bailiwick: {zone}.\n", row.count)),
            None => out.push_str(&format!(";;  count: {}\n", row.count)),
        }
        out.push_str(&format!("{}. {} {}\n", row.rrname, row.rrtype, row.rdata));
    }
    out
}

/// Search results as COF NDJSON (names without the trailing dot, like the
/// plain lookup's JSON).
fn render_json(rows: &[Row]) -> String {
    #[derive(serde::Serialize)]
    struct Cof<'a> {
        time_first: i64,
        time_last: i64,
        count: u64,
        rrtype: &'a str,
        rrname: &'a str,
        rdata: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        bailiwick: Option<&'a str>,
    }
    let mut out = String::new();
    for row in rows {
        let cof = Cof {
            time_first: row.time_first,
            time_last: row.time_last,
            count: row.count,
            rrtype: &row.rrtype,
            rrname: &row.rrname,
            rdata: &row.rdata,
            bailiwick: row.bailiwick.as_deref(),
        };
        if let Ok(line) = serde_json::to_string(&cof) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}
