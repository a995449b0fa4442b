//! dnstap-receiver's API answers (`/counters`, `/tables`, `/streams`), from
//! the same state, so its dashboard and scripts work unchanged.
//!
//! Intended differences (also in docs/stats.md):
//!
//! * `clients` and `domains` are HyperLogLog estimates (exact for small
//!   counts, 0.81 % standard error beyond); a stream's `domains` counts the
//!   names of queries and responses together (dnstap-receiver gives the
//!   count of whichever direction the stream's last message had).
//! * Domain tables exist for `hit`, `length`, `noerror`, `nxdomain`,
//!   `servfail` and `refused` (per `query`/`response`); another `<by>` (a
//!   qtype, a rarer rcode) answers an empty list.
//! * Query type names are the IANA mnemonics (`tlsa`, not dnstap-receiver's
//!   `tsla`; `type65280`, not `-`).
//! * Tables are Space-Saving sketches: exact until a table fills, then the
//!   heavy hitters with bounded counts (see [`crate::report`] for the
//!   errors).

use serde_json::{Map, Value, json};

use crate::scope::{DIRECTIONS, FAMILIES, RCODE_TABLES, RESPONSE, Scope, TRANSPORTS};
use crate::spacesaving::Tally;
use crate::{Stats, Window, dns, latency};

impl Stats {
    /// `GET /counters`: `{"stream": …, "counters": {name: value}}` for the
    /// names asked (unknown names are 0). An unknown stream answers the
    /// global counters, as dnstap-receiver does.
    pub fn compat_counters(&self, stream: Option<&str>, names: &[String]) -> Value {
        let inner = self.read();
        let scope = inner.scope(stream).unwrap_or(&inner.global);
        let now = self.now_secs();
        let mut counters = Map::new();
        for name in names {
            counters.insert(name.clone(), json!(self.counter(scope, name, now)));
        }
        json!({"stream": stream, "counters": counters})
    }

    /// One dnstap-receiver counter by name (namespaces that share a name
    /// are summed, as its `Counter.update` does).
    fn counter(&self, scope: &Scope, name: &str, now: u64) -> u64 {
        let (queries, responses) = scope.rates.last_second(now);
        match name {
            "query" => return scope.directions[0].messages,
            "response" => return scope.directions[1].messages,
            "clients" => return scope.clients.estimate(),
            "domains" => return scope.domains.estimate(),
            "qps" => return queries,
            "rps" => return responses,
            "pps" => return queries + responses,
            _ => {}
        }
        let Some((direction, rest)) = name.split_once('/') else {
            return 0;
        };
        let Some(d) = DIRECTIONS.iter().position(|n| *n == direction) else {
            return 0;
        };
        let counts = &scope.directions[d];
        let mut total = 0u64;
        if rest == "bytes" {
            total += counts.bytes;
        }
        if let Some(i) = TRANSPORTS.iter().position(|t| *t == rest) {
            total += counts.transport[i];
        }
        if let Some(i) = FAMILIES.iter().position(|f| *f == rest) {
            total += counts.family[i];
        }
        for (rcode, n) in counts.rcode.iter().enumerate() {
            if dns::rcode_name(rcode as u8).eq_ignore_ascii_case(rest) {
                total += n;
            }
        }
        for entry in scope.qtypes[d].since_start().entries() {
            if qtype_label(entry.key) == rest {
                total += entry.count;
            }
        }
        if let Some(entry) = scope.tlds[d].since_start().get(self.hash_str(rest)) {
            total += entry.count;
        }
        if d == RESPONSE
            && let Some(i) = latency::BUCKET_NAMES.iter().position(|b| *b == rest)
        {
            total += counts.latency[i];
        }
        total
    }

    /// `GET /tables`: top `n` TLDs, domains (per `filters`, `<by>/<query|
    /// response>`), clients, rcodes and rrtypes.
    pub fn compat_tables(&self, stream: Option<&str>, n: usize, filters: &[String]) -> Value {
        let inner = self.read();
        let known = inner.scope(stream);
        // dnstap-receiver: counters tables fall back to the global ones for
        // an unknown stream, client and domain tables come out empty.
        let scope = known.unwrap_or(&inner.global);
        let now = self.now_secs();
        let prefixed = |d: usize, rows: Vec<(String, u64)>| -> Value {
            Value::Array(
                rows.into_iter()
                    .map(|(k, c)| json!([format!("{}/{k}", DIRECTIONS[d]), c]))
                    .collect(),
            )
        };
        let mut tlds = Map::new();
        let mut rcodes = Map::new();
        let mut rrtypes = Map::new();
        for (d, direction) in DIRECTIONS.iter().enumerate() {
            let key = format!("hit/{direction}");
            let rows = top_rows(&scope.tlds[d], now, n, |k| k.to_string());
            tlds.insert(key.clone(), prefixed(d, rows));
            let rows = top_rows(&scope.rcodes[d], now, n, |k| {
                dns::rcode_name(*k).to_ascii_lowercase()
            });
            rcodes.insert(key.clone(), prefixed(d, rows));
            let rows = top_rows(&scope.qtypes[d], now, n, |k| qtype_label(*k));
            rrtypes.insert(key, prefixed(d, rows));
        }
        let mut clients = Map::new();
        let address =
            |ip: &Option<std::net::IpAddr>| ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        for (key, rows) in [
            ("hit/ip", top_rows(&scope.client_hits, now, n, address)),
            ("length/ip", top_rows(&scope.client_bytes, now, n, address)),
        ] {
            let rows = match known {
                Some(_) => rows,
                None => Vec::new(),
            };
            clients.insert(
                key.to_string(),
                Value::Array(rows.into_iter().map(|(k, c)| json!([k, c])).collect()),
            );
        }
        let mut domains = Map::new();
        for filter in filters {
            let Some((by, direction)) = filter.split_once('/') else {
                break;
            };
            let Some(d) = DIRECTIONS.iter().position(|n| *n == direction) else {
                break;
            };
            let name = |k: &std::sync::Arc<str>| k.to_string();
            let rows = match by {
                "hit" => Some(top_rows(&scope.qname_hits[d], now, n, name)),
                "length" => Some(top_rows(&scope.qname_bytes[d], now, n, name)),
                _ => RCODE_TABLES
                    .iter()
                    .position(|(_, rcode)| *rcode == by)
                    .map(|i| top_rows(&scope.qname_rcodes[d][i], now, n, name)),
            };
            let rows = match (rows, known) {
                (Some(rows), Some(_)) => rows,
                _ => Vec::new(),
            };
            domains.insert(
                filter.clone(),
                Value::Array(rows.into_iter().map(|(k, c)| json!([k, c])).collect()),
            );
        }
        json!({
            "stream": stream,
            "tables": {
                "tlds": tlds,
                "domains": domains,
                "clients": clients,
                "rcodes": rcodes,
                "rrtypes": rrtypes,
            }
        })
    }

    /// `GET /streams`.
    pub fn compat_streams(&self) -> Value {
        json!({ "streams": self.streams() })
    }
}

fn top_rows<K: Clone, T: Tally<K>>(
    table: &crate::window::Windowed<K, T>,
    now: u64,
    n: usize,
    label: impl Fn(&K) -> String,
) -> Vec<(String, u64)> {
    table
        .top(Window::SinceStart, now, n)
        .map(|top| {
            top.rows
                .iter()
                .map(|row| (label(&row.key), row.count))
                .collect()
        })
        .unwrap_or_default()
}

/// dnstap-receiver's lower-case qtype label (`-` without a question).
pub fn qtype_label(key: u32) -> String {
    match u16::try_from(key) {
        Ok(qtype) => dns::qtype_name(qtype).to_ascii_lowercase(),
        Err(_) => "-".to_string(),
    }
}
