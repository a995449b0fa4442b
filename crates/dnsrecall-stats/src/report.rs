//! Our own answers (`/stats/*`): every counter, the windows, latency
//! percentiles, memory use, and every approximate value labelled with its
//! error.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::scope::{DIRECTIONS, FAMILIES, RCODE_TABLES, Scope, TRANSPORTS};
use crate::window::{Top, Window, Windowed};
use crate::{Stats, compat::qtype_label, dns, latency};

/// Why a report cannot be given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    #[error("unknown stream {0:?}")]
    UnknownStream(String),
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    #[error(
        "window {0} is not kept for this table (windows are kept for the global tables, except those by bytes)"
    )]
    NoWindow(&'static str),
}

/// Every table name `/stats/tables` knows, in answer order.
pub fn table_names() -> Vec<String> {
    let mut names = Vec::new();
    for d in DIRECTIONS {
        names.push(format!("tlds/{d}"));
    }
    names.push("registered_domains/query".to_string());
    for d in DIRECTIONS {
        names.push(format!("qnames/{d}"));
        names.push(format!("qname_bytes/{d}"));
        for (_, rcode) in RCODE_TABLES {
            names.push(format!("qnames_{rcode}/{d}"));
        }
    }
    names.push("clients".to_string());
    names.push("client_bytes".to_string());
    for d in DIRECTIONS {
        names.push(format!("qtypes/{d}"));
        names.push(format!("rcodes/{d}"));
    }
    names
}

impl Stats {
    /// Every counter of a stream (or global), approximate values labelled.
    pub fn report_counters(&self, stream: Option<&str>) -> Result<Value, ReportError> {
        let inner = self.read();
        let scope = inner
            .scope(stream)
            .ok_or_else(|| ReportError::UnknownStream(stream.unwrap_or_default().to_string()))?;
        let now = self.now_secs();
        let (qps, rps) = scope.rates.last_second(now);
        let (qps_moving, rps_moving) = scope.rates.moving(now);
        let per_direction = |f: &dyn Fn(usize) -> Value| -> Value {
            let mut map = Map::new();
            for (d, name) in DIRECTIONS.iter().enumerate() {
                map.insert(name.to_string(), f(d));
            }
            Value::Object(map)
        };
        let named = |names: &[&str], counts: &[u64]| -> Value {
            let mut map = Map::new();
            for (name, &count) in names.iter().zip(counts) {
                if count > 0 {
                    map.insert(name.to_string(), json!(count));
                }
            }
            Value::Object(map)
        };
        let rcodes = |d: usize| {
            let mut map = Map::new();
            for (rcode, &count) in scope.directions[d].rcode.iter().enumerate() {
                if count > 0 {
                    let name = match dns::rcode_name(rcode as u8) {
                        "-" => format!("rcode{rcode}"),
                        name => name.to_string(),
                    };
                    map.insert(name, json!(count));
                }
            }
            Value::Object(map)
        };
        let estimate = |sketch: &crate::hll::HyperLogLog| {
            json!({
                "value": sketch.estimate(),
                "approximate": true,
                "relative_standard_error": sketch.relative_error(),
                "method": "hyperloglog",
            })
        };
        let mut answer = json!({
            "stream": stream,
            "uptime_secs": now,
            "queries": scope.directions[0].messages,
            "responses": scope.directions[1].messages,
            "malformed": scope.malformed,
            "bytes": per_direction(&|d| json!(scope.directions[d].bytes)),
            "rates": {
                "qps": qps, "rps": rps,
                "qps_moving_60s": qps_moving, "rps_moving_60s": rps_moving,
            },
            "transports": per_direction(&|d| named(&TRANSPORTS, &scope.directions[d].transport)),
            "families": per_direction(&|d| named(&FAMILIES, &scope.directions[d].family)),
            "rcodes": per_direction(&rcodes),
            "unique_clients": estimate(&scope.clients),
            "unique_domains": estimate(&scope.domains),
            "latency": {
                "buckets": named(&latency::BUCKET_NAMES, &scope.directions[1].latency),
                "histogram": scope.latency.percentiles(),
                "paired": scope.paired,
            },
        });
        if stream.is_none()
            && let Some(object) = answer.as_object_mut()
        {
            object.insert(
                "pairing".to_string(),
                json!({
                    "capacity": inner.pairing.capacity(),
                    "pending": inner.pairing.len(),
                    "matched": inner.pairing.matched,
                    "unmatched_responses": inner.pairing.unmatched,
                    "unanswered_queries": inner.pairing.unanswered,
                }),
            );
            object.insert(
                "streams_folded_into_other".to_string(),
                json!(inner.streams_folded),
            );
            drop(inner);
            object.insert(
                "memory".to_string(),
                json!({
                    "bound_bytes": self.plan().memory_bound,
                    "planned_bytes": self.plan().planned_bytes,
                    "used_bytes": self.used_bytes(),
                    "plan": self.plan(),
                }),
            );
        }
        Ok(answer)
    }

    /// Top-`n` tables of a stream (or global) over a window; every table,
    /// or only `only`.
    pub fn report_tables(
        &self,
        stream: Option<&str>,
        window: Window,
        n: usize,
        only: Option<&str>,
    ) -> Result<Value, ReportError> {
        let names = table_names();
        if let Some(name) = only
            && !names.iter().any(|n| n == name)
        {
            return Err(ReportError::UnknownTable(name.to_string()));
        }
        let inner = self.read();
        let scope = inner
            .scope(stream)
            .ok_or_else(|| ReportError::UnknownStream(stream.unwrap_or_default().to_string()))?;
        let now = self.now_secs();
        let mut tables = Map::new();
        for name in names.iter().filter(|n| only.is_none_or(|o| o == *n)) {
            match table_answer(scope, name, window, now, n) {
                Some(table) => {
                    tables.insert(name.clone(), table);
                }
                // Asked for by name: say why; among all: leave it out.
                None if only.is_some() => return Err(ReportError::NoWindow(window.name())),
                None => {}
            }
        }
        if tables.is_empty() {
            return Err(ReportError::NoWindow(window.name()));
        }
        Ok(json!({
            "stream": stream,
            "window": window.name(),
            "n": n,
            "tables": tables,
        }))
    }
}

fn table_answer(scope: &Scope, name: &str, window: Window, now: u64, n: usize) -> Option<Value> {
    let (kind, direction) = name.split_once('/').unwrap_or((name, ""));
    let d = DIRECTIONS.iter().position(|x| *x == direction).unwrap_or(0);
    let names = |table: &Windowed<Arc<str>>| render(table.top(window, now, n)?, |k| k.to_string());
    let address =
        |ip: &Option<std::net::IpAddr>| ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    match kind {
        "tlds" => names(&scope.tlds[d]),
        "registered_domains" => names(&scope.registered),
        "qnames" => names(&scope.qname_hits[d]),
        "qname_bytes" => render(scope.qname_bytes[d].top(window, now, n)?, |k| k.to_string()),
        "clients" => render(scope.client_hits.top(window, now, n)?, address),
        "client_bytes" => render(scope.client_bytes.top(window, now, n)?, address),
        "qtypes" => render(scope.qtypes[d].top(window, now, n)?, |k| {
            qtype_label(*k).to_ascii_uppercase()
        }),
        "rcodes" => render(scope.rcodes[d].top(window, now, n)?, |k| {
            dns::rcode_name(*k).to_string()
        }),
        other => {
            let rcode = other.strip_prefix("qnames_")?;
            let i = RCODE_TABLES.iter().position(|(_, r)| *r == rcode)?;
            names(&scope.qname_rcodes[d][i])
        }
    }
}

fn render<K>(top: Top<K>, label: impl Fn(&K) -> String) -> Option<Value> {
    let rows: Vec<Value> = top
        .rows
        .iter()
        .map(|row| json!({"key": label(&row.key), "count": row.count, "error": row.error}))
        .collect();
    Some(json!({
        "exact": top.exact,
        "approximate": !top.exact,
        "method": "space-saving",
        "total": top.total,
        "unlisted_max": top.unlisted_max,
        "rows": rows,
    }))
}
