//! [`RedisStore`]: the core `Store` trait over a Redis/kvrocks server or a
//! Redis Cluster in the D4 key schema.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dnsrecall_core::store::{
    NameMatch, RdataQuery, RrsetQuery, Store, StoreError, StoreInfo, TypeFilter, Visitor,
};
use dnsrecall_core::{Entry, Rtype, Seen};
use redis::cluster::{ClusterClient, ClusterConnection, ClusterPipeline};
use redis::cluster_routing::{
    AggregateOp, MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
use redis::{Cmd, FromRedisValue, RedisResult};

use crate::config::{MAX_RETRY_BACKOFF_MS, RedisConfig};
use crate::keys;

const BACKEND: &str = "redis";
const ALTERNATIVE: &str = "rocksdb";

/// Keeps the earlier (`min`) or later (`max`) epoch in a STRING key, and
/// re-applies the key's TTL when one is given. One key per call, so it is
/// valid on a cluster (every key of one script must share a slot). A value
/// that is not a number (a corrupt key) is replaced.
const MIN_MAX_SCRIPT: &str = "local n=tonumber(ARGV[1]) \
local c=tonumber(redis.call('GET',KEYS[1])) \
if c==nil or (ARGV[2]=='min' and n<c) or (ARGV[2]=='max' and n>c) then redis.call('SET',KEYS[1],ARGV[1]) end \
if ARGV[3]~='0' then redis.call('EXPIRE',KEYS[1],ARGV[3]) end \
return 0";

/// The whole write of many records in one call, for a single server (a
/// cluster cannot run it: the keys of one record live in different slots).
/// Per record 5 keys (`r:`, `v:`, `s:`, `l:`, `o:`) and 6 arguments
/// (member, name, first, last, count, ttl). One call instead of five
/// commands per record: measured 4x the records/s of the per-key pipeline
/// (BENCHMARKS.md, D4).
///
/// On Redis 7 (`redis.REDIS_VERSION_NUM` is set) the first/last seen keys
/// are written with `SET key value NX GET`: a new record's key is set by
/// that one call (instead of a `GET` then a `SET`), an existing one returns
/// its value for the comparison. Older servers and kvrocks take the
/// `GET`-then-`SET` path.
const BATCH_SCRIPT: &str = "local n=#KEYS/5 \
local v7=redis.REDIS_VERSION_NUM~=nil and redis.REDIS_VERSION_NUM>=458752 \
local function keep(key,value,earlier) \
local c \
if v7 then c=redis.call('SET',key,value,'NX','GET') if not c then return end \
else c=redis.call('GET',key) end \
local old=tonumber(c) local new=tonumber(value) \
if old==nil or (earlier and new<old) or ((not earlier) and new>old) then redis.call('SET',key,value) end \
end \
for i=0,n-1 do \
local k=i*5 local a=i*6 \
redis.call('SADD',KEYS[k+1],ARGV[a+1]) \
redis.call('SADD',KEYS[k+2],ARGV[a+2]) \
keep(KEYS[k+3],ARGV[a+3],true) \
keep(KEYS[k+4],ARGV[a+4],false) \
redis.call('INCRBY',KEYS[k+5],ARGV[a+5]) \
local t=tonumber(ARGV[a+6]) \
if t>0 then for j=1,5 do redis.call('EXPIRE',KEYS[k+j],t) end end \
end \
return n";

/// Records per call of [`BATCH_SCRIPT`] (a call blocks the server while it
/// runs: about a millisecond for this many).
const SCRIPT_RECORDS: usize = 200;

/// SCAN page size (a hint to the server).
const SCAN_COUNT: usize = 1000;
/// r: keys resolved per read pipeline in a full scan.
const SCAN_BATCH: usize = 500;

fn engine(error: redis::RedisError) -> StoreError {
    StoreError::Engine(format!("redis: {error}"))
}

fn unsupported(lookup: &'static str) -> StoreError {
    StoreError::Unsupported {
        backend: BACKEND,
        lookup,
        alternative: ALTERNATIVE,
    }
}

/// Counters of the backend, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    entries: AtomicU64,
    attempt_errors: AtomicU64,
    retries: AtomicU64,
    entries_failed: AtomicU64,
    replica_shortfalls: AtomicU64,
    incomplete_records: AtomicU64,
}

/// A snapshot of the backend's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisCounters {
    /// Pipelines written and acknowledged.
    pub batches: u64,
    /// Entries written and acknowledged.
    pub entries: u64,
    /// Attempts that failed (each is retried until `write_attempts`).
    pub attempt_errors: u64,
    /// Pipelines sent again after a failed attempt (their counters may be
    /// added twice: see docs/d4.md, at-least-once).
    pub retries: u64,
    /// Entries of batches that failed every attempt; `write` returned an
    /// error for them, so the caller still holds them.
    pub entries_failed: u64,
    /// Batches that fewer replicas than `wait_replicas` acknowledged in time.
    pub replica_shortfalls: u64,
    /// `r:` members read without either of their `s:`/`l:` keys (expired or
    /// never written), skipped.
    pub incomplete_records: u64,
}

impl RedisCounters {
    /// `(name, help, value)` of each counter, named for Prometheus.
    pub fn metrics(&self) -> [(&'static str, &'static str, u64); 7] {
        [
            (
                "dnsrecall_redis_batches_total",
                "Pipelines written to Redis and acknowledged.",
                self.batches,
            ),
            (
                "dnsrecall_redis_entries_total",
                "Entries written to Redis and acknowledged.",
                self.entries,
            ),
            (
                "dnsrecall_redis_attempt_errors_total",
                "Write attempts that failed (then retried).",
                self.attempt_errors,
            ),
            (
                "dnsrecall_redis_retries_total",
                "Pipelines sent again after a failed attempt.",
                self.retries,
            ),
            (
                "dnsrecall_redis_entries_failed_total",
                "Entries of batches that failed every attempt (returned as errors).",
                self.entries_failed,
            ),
            (
                "dnsrecall_redis_replica_shortfalls_total",
                "Batches acknowledged by fewer replicas than wait_replicas.",
                self.replica_shortfalls,
            ),
            (
                "dnsrecall_redis_incomplete_records_total",
                "Stored rdata members without first/last seen keys, skipped when read.",
                self.incomplete_records,
            ),
        ]
    }
}

enum Client {
    Single(redis::Client),
    Cluster(ClusterClient),
}

enum Conn {
    Single(redis::Connection),
    // Boxed: a cluster connection is four times the size of a plain one.
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn pipeline<T: FromRedisValue>(&mut self, commands: Vec<Cmd>) -> RedisResult<T> {
        match self {
            Conn::Single(connection) => {
                let mut pipe = redis::Pipeline::with_capacity(commands.len());
                for command in commands {
                    pipe.add_command(command);
                }
                pipe.query(connection)
            }
            Conn::Cluster(connection) => {
                let mut pipe = ClusterPipeline::with_capacity(commands.len());
                for command in commands {
                    pipe.add_command(command);
                }
                pipe.query(connection)
            }
        }
    }

    /// A command without a key, sent to every master (cluster) or the
    /// server; `policy` combines the answers of a cluster.
    fn all_masters(&mut self, command: &Cmd, policy: ResponsePolicy) -> RedisResult<redis::Value> {
        match self {
            Conn::Single(connection) => command.query(connection),
            Conn::Cluster(connection) => connection.route_command(
                command,
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(policy))),
            ),
        }
    }

    fn query<T: FromRedisValue>(&mut self, command: &Cmd) -> RedisResult<T> {
        match self {
            Conn::Single(connection) => command.query(connection),
            Conn::Cluster(connection) => command.query(connection),
        }
    }
}

/// The Redis store (see the crate documentation for the schema).
pub struct RedisStore {
    client: Client,
    config: RedisConfig,
    /// Idle connections; a connection that failed is dropped, not returned.
    pool: Mutex<Vec<Conn>>,
    counters: Counters,
}

/// Most idle connections kept.
const POOL_MAX: usize = 8;

impl RedisStore {
    /// Connects (checking the server answers) to a single server, or to a
    /// cluster when several URLs are given or the one server has cluster
    /// mode on.
    pub fn open(config: &RedisConfig) -> Result<RedisStore, StoreError> {
        let urls = config.url.as_slice();
        if urls.is_empty() || urls.iter().any(String::is_empty) {
            return Err(StoreError::Engine("redis: no server URL configured".into()));
        }
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let cluster_client = || {
            ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(3)
                .build()
                .map(Client::Cluster)
                .map_err(engine)
        };
        let client = if urls.len() > 1 {
            cluster_client()?
        } else {
            let single = redis::Client::open(urls[0].as_str()).map_err(engine)?;
            let mut connection = single
                .get_connection_with_timeout(timeout)
                .map_err(engine)?;
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query(&mut connection)
                .map_err(engine)?;
            if info.contains("cluster_enabled:1") {
                cluster_client()?
            } else {
                Client::Single(single)
            }
        };
        let store = RedisStore {
            client,
            config: config.clone(),
            pool: Mutex::new(Vec::new()),
            counters: Counters::default(),
        };
        // Fail at open, not at the first write, when nothing answers.
        let connection = store.connect()?;
        store.put_back(connection);
        Ok(store)
    }

    /// Whether the store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.client, Client::Cluster(_))
    }

    /// The counters so far.
    pub fn counters(&self) -> RedisCounters {
        let c = &self.counters;
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisCounters {
            batches: read(&c.batches),
            entries: read(&c.entries),
            attempt_errors: read(&c.attempt_errors),
            retries: read(&c.retries),
            entries_failed: read(&c.entries_failed),
            replica_shortfalls: read(&c.replica_shortfalls),
            incomplete_records: read(&c.incomplete_records),
        }
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let timeout = Duration::from_millis(self.config.timeout_ms.max(1));
        match &self.client {
            Client::Single(client) => {
                let connection = client
                    .get_connection_with_timeout(timeout)
                    .map_err(engine)?;
                connection.set_read_timeout(Some(timeout)).map_err(engine)?;
                connection
                    .set_write_timeout(Some(timeout))
                    .map_err(engine)?;
                let mut connection = Conn::Single(connection);
                // Loaded on every new connection: a restarted server has
                // an empty script cache, and reaching it means reconnecting.
                let _: String = connection
                    .query(redis::cmd("SCRIPT").arg("LOAD").arg(BATCH_SCRIPT))
                    .map_err(engine)?;
                Ok(connection)
            }
            Client::Cluster(client) => client
                .get_connection()
                .map(|connection| Conn::Cluster(Box::new(connection)))
                .map_err(engine),
        }
    }

    fn take(&self) -> Result<Conn, StoreError> {
        let idle = self.pool.lock().ok().and_then(|mut pool| pool.pop());
        match idle {
            Some(connection) => Ok(connection),
            None => self.connect(),
        }
    }

    fn put_back(&self, connection: Conn) {
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_MAX
        {
            pool.push(connection);
        }
    }

    /// Runs `work` on a pooled connection; the connection goes back to the
    /// pool only when `work` succeeded.
    fn with_conn<T>(
        &self,
        work: impl FnOnce(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self.take()?;
        let result = work(&mut connection).map_err(engine)?;
        self.put_back(connection);
        Ok(result)
    }

    fn ttl(&self, rtype: Rtype) -> u64 {
        self.config.expiration.get(&rtype.0).copied().unwrap_or(0)
    }

    /// The commands of one batch: per entry the five record keys (and
    /// their TTLs), then the batch's totals.
    fn write_commands(&self, entries: &[Entry]) -> Vec<Cmd> {
        let mut commands = Vec::with_capacity(entries.len() * 5 + 8);
        let single = matches!(self.client, Client::Single(_));
        let mut in_call = 0;
        let mut batch_keys: Vec<String> = Vec::new();
        let mut batch_args: Vec<String> = Vec::new();
        let mut observations = 0u64;
        let mut per_type: BTreeMap<u16, u64> = BTreeMap::new();
        let mut per_sensor: BTreeMap<&str, u64> = BTreeMap::new();
        for entry in entries {
            let record = &entry.record;
            let rtype = record.rrtype;
            let q = keys::rrname(&record.rrname);
            let member = keys::rdata_member(record);
            let value = keys::value_key_part(&member);
            let ttl = self.ttl(rtype);
            let r_key = keys::r_key(&q, rtype);
            let v_key = keys::v_key(&value, rtype);
            let o_key = keys::record_key('o', &q, &value, rtype);
            observations = observations.saturating_add(entry.seen.count);
            *per_type.entry(rtype.0).or_default() += entry.seen.count;
            if let Some(sensor) = &entry.seen.sensor_id {
                *per_sensor.entry(sensor).or_default() += entry.seen.count;
            }
            if single {
                // Keys first, then arguments: collected apart, joined
                // when the call is full.
                in_call += 1;
                batch_keys.extend([
                    r_key,
                    v_key,
                    keys::record_key('s', &q, &value, rtype),
                    keys::record_key('l', &q, &value, rtype),
                    o_key,
                ]);
                batch_args.extend([
                    member,
                    q,
                    entry.seen.time_first.to_string(),
                    entry.seen.time_last.to_string(),
                    entry.seen.count.to_string(),
                    ttl.to_string(),
                ]);
                if in_call == SCRIPT_RECORDS {
                    commands.push(script_command(&mut batch_keys, &mut batch_args));
                    in_call = 0;
                }
                continue;
            }
            commands.push(redis::cmd("SADD").arg(&r_key).arg(&member).to_owned());
            commands.push(redis::cmd("SADD").arg(&v_key).arg(&q).to_owned());
            for (prefix, time, mode) in [
                ('s', entry.seen.time_first, "min"),
                ('l', entry.seen.time_last, "max"),
            ] {
                commands.push(
                    redis::cmd("EVAL")
                        .arg(MIN_MAX_SCRIPT)
                        .arg(1)
                        .arg(keys::record_key(prefix, &q, &value, rtype))
                        .arg(time)
                        .arg(mode)
                        .arg(ttl)
                        .to_owned(),
                );
            }
            commands.push(
                redis::cmd("INCRBY")
                    .arg(&o_key)
                    .arg(entry.seen.count)
                    .to_owned(),
            );
            if ttl > 0 {
                for key in [&r_key, &v_key, &o_key] {
                    commands.push(redis::cmd("EXPIRE").arg(key).arg(ttl).to_owned());
                }
            }
        }
        if !batch_keys.is_empty() {
            commands.push(script_command(&mut batch_keys, &mut batch_args));
        }
        commands.push(
            redis::cmd("INCRBY")
                .arg(keys::STATS_PROCESSED)
                .arg(observations)
                .to_owned(),
        );
        commands.push(
            redis::cmd("HINCRBY")
                .arg(keys::DIST_CLASS)
                .arg("IN")
                .arg(observations)
                .to_owned(),
        );
        for (rtype, count) in per_type {
            commands.push(
                redis::cmd("HINCRBY")
                    .arg(keys::DIST_TYPE)
                    .arg(rtype)
                    .arg(count)
                    .to_owned(),
            );
        }
        for (sensor, count) in per_sensor {
            commands.push(
                redis::cmd("SADD")
                    .arg(keys::SENSORS_SEEN)
                    .arg(sensor)
                    .to_owned(),
            );
            commands.push(
                redis::cmd("ZINCRBY")
                    .arg(keys::STATS_SENSORS)
                    .arg(count)
                    .arg(sensor)
                    .to_owned(),
            );
        }
        commands
    }

    /// Writes one pipeline, retrying on a fresh connection with backoff.
    fn write_batch(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let attempts = self.config.write_attempts.max(1);
        let mut backoff = self.config.retry_backoff_ms;
        let mut last_error = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(backoff));
                backoff = (backoff * 2).min(MAX_RETRY_BACKOFF_MS);
            }
            match self.write_once(entries) {
                Ok(()) => {
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .entries
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => {
                    self.counters.attempt_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(attempt = attempt + 1, attempts, %error, "redis write attempt failed");
                    last_error = Some(error);
                }
            }
        }
        self.counters
            .entries_failed
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Err(StoreError::Engine(format!(
            "redis write of {} entries failed after {attempts} attempts: {}",
            entries.len(),
            last_error.map_or_else(String::new, |e| e.to_string())
        )))
    }

    fn write_once(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let commands = self.write_commands(entries);
        let wait = self.config.wait_replicas;
        let timeout = self.config.wait_timeout_ms;
        let acknowledged = self.with_conn(|connection| {
            connection.pipeline::<()>(commands)?;
            if wait == 0 {
                return Ok(None);
            }
            let value = connection.all_masters(
                redis::cmd("WAIT").arg(wait).arg(timeout),
                ResponsePolicy::Aggregate(AggregateOp::Min),
            )?;
            Ok(Some(i64::from_redis_value(value)?))
        })?;
        if let Some(replicas) = acknowledged
            && replicas < i64::from(wait)
        {
            self.counters
                .replica_shortfalls
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                replicas,
                wanted = wait,
                "redis batch acknowledged by fewer replicas than wanted"
            );
        }
        Ok(())
    }

    /// Reads first/last/count of `(q, rtype, member)` triples and visits
    /// the records, in the given order.
    fn visit_records(
        &self,
        triples: Vec<(String, Rtype, String)>,
        visit: &mut Visitor<'_>,
    ) -> Result<ControlFlow<()>, StoreError> {
        if triples.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        let mut commands = Vec::with_capacity(triples.len() * 3);
        for (q, rtype, member) in &triples {
            let value = keys::value_key_part(member);
            for prefix in ['s', 'l', 'o'] {
                commands.push(
                    redis::cmd("GET")
                        .arg(keys::record_key(prefix, q, &value, *rtype))
                        .to_owned(),
                );
            }
        }
        let values: Vec<Option<Vec<u8>>> =
            self.with_conn(|connection| connection.pipeline(commands))?;
        for ((q, rtype, member), chunk) in triples.iter().zip(values.chunks(3)) {
            let number = |value: &Option<Vec<u8>>| value.as_deref().and_then(parse_epoch);
            let (first, last, count) = (number(&chunk[0]), number(&chunk[1]), number(&chunk[2]));
            let (time_first, time_last) = match (first, last) {
                (Some(first), Some(last)) => (first.min(last), first.max(last)),
                (Some(one), None) | (None, Some(one)) => (one, one),
                (None, None) => {
                    self.counters
                        .incomplete_records
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let Some(record) = keys::record_from_member(q, *rtype, member) else {
                self.counters
                    .incomplete_records
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let seen = Seen {
                time_first,
                time_last,
                // A record is there because it was seen: a lost counter
                // reads as one sighting.
                count: count.unwrap_or(1).max(1),
                zone_times: None,
                sensor_id: None,
            };
            if visit(Entry { record, seen }).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Members of `r:{q}:{t}` for every type, as sorted triples.
    fn members_of(
        &self,
        q: &str,
        types: &[Rtype],
    ) -> Result<Vec<(String, Rtype, String)>, StoreError> {
        let commands = types
            .iter()
            .map(|rtype| {
                redis::cmd("SMEMBERS")
                    .arg(keys::r_key(q, *rtype))
                    .to_owned()
            })
            .collect();
        let sets: Vec<Vec<Vec<u8>>> = self.with_conn(|connection| connection.pipeline(commands))?;
        let mut triples = Vec::new();
        for (rtype, members) in types.iter().zip(sets) {
            let mut members: Vec<String> = members
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned())
                .collect();
            members.sort();
            triples.extend(members.into_iter().map(|m| (q.to_string(), *rtype, m)));
        }
        Ok(triples)
    }

    /// Records whose rdata (as a `v:` key part) is `value`, over `types`.
    fn reverse(
        &self,
        value: &str,
        member: &str,
        types: &[Rtype],
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        let commands = types
            .iter()
            .map(|rtype| {
                redis::cmd("SMEMBERS")
                    .arg(keys::v_key(value, *rtype))
                    .to_owned()
            })
            .collect();
        let sets: Vec<Vec<Vec<u8>>> = self.with_conn(|connection| connection.pipeline(commands))?;
        let mut triples = Vec::new();
        for (rtype, names) in types.iter().zip(sets) {
            let mut names: Vec<String> = names
                .into_iter()
                .map(|n| String::from_utf8_lossy(&n).into_owned())
                .collect();
            names.sort();
            triples.extend(names.into_iter().map(|q| (q, *rtype, member.to_string())));
        }
        let _ = self.visit_records(triples, visit)?;
        Ok(())
    }

    /// Addresses of the masters (one entry, the server, when not a cluster).
    fn scan_targets(&self) -> Result<Vec<Option<redis::Client>>, StoreError> {
        if let Client::Single(_) = self.client {
            return Ok(vec![None]);
        }
        let nodes: String = self.with_conn(|connection| match connection {
            Conn::Cluster(connection) => {
                let value = connection.route_command(
                    &redis::cmd("CLUSTER").arg("NODES").to_owned(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                )?;
                Ok(String::from_redis_value(value)?)
            }
            Conn::Single(connection) => redis::cmd("CLUSTER").arg("NODES").query(connection),
        })?;
        let mut targets = Vec::new();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
                continue;
            };
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                continue;
            }
            let address = address.split(['@', ',']).next().unwrap_or_default();
            let client = redis::Client::open(format!("redis://{address}")).map_err(engine)?;
            targets.push(Some(client));
        }
        Ok(targets)
    }
}

fn batch_script_sha() -> &'static str {
    static SHA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHA.get_or_init(|| redis::Script::new(BATCH_SCRIPT).get_hash().to_string())
}

/// `EVALSHA` of [`BATCH_SCRIPT`] over the collected keys and arguments
/// (both emptied).
fn script_command(batch_keys: &mut Vec<String>, batch_args: &mut Vec<String>) -> Cmd {
    let mut command = redis::cmd("EVALSHA");
    command.arg(batch_script_sha()).arg(batch_keys.len());
    for key in batch_keys.drain(..) {
        command.arg(key);
    }
    for arg in batch_args.drain(..) {
        command.arg(arg);
    }
    command
}

/// An epoch or counter as D4 stores it (decimal; the legacy COF importer
/// could store floats).
fn parse_epoch(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    text.parse::<u64>().ok().or_else(|| {
        let float = text.parse::<f64>().ok()?;
        (float.is_finite() && float >= 0.0).then_some(float as u64)
    })
}

fn types_for(filter: TypeFilter) -> Vec<Rtype> {
    match filter {
        TypeFilter::Only(rtype) => vec![rtype],
        other => keys::probe_types()
            .iter()
            .copied()
            .filter(|t| other.accepts(*t))
            .collect(),
    }
}

impl Store for RedisStore {
    fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        for chunk in entries.chunks(self.config.pipeline_entries.max(1)) {
            self.write_batch(chunk)?;
        }
        Ok(())
    }

    fn scan_rrset(&self, query: &RrsetQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        if query.bailiwick.is_some() {
            return Err(unsupported(
                "bailiwick filters (the D4 schema keeps no bailiwick)",
            ));
        }
        let NameMatch::Exact(name) = &query.name else {
            return Err(unsupported("wildcard name lookups"));
        };
        let triples = self.members_of(&keys::rrname(name), &types_for(query.types))?;
        let _ = self.visit_records(triples, visit)?;
        Ok(())
    }

    fn scan_rdata(&self, query: &RdataQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        match query {
            RdataQuery::Address { first, last } => {
                if first != last {
                    return Err(unsupported("address ranges (CIDR)"));
                }
                let rtype = match first {
                    IpAddr::V4(_) => Rtype::A,
                    IpAddr::V6(_) => Rtype::AAAA,
                };
                let text = first.to_string();
                self.reverse(&text, &text, &[rtype], visit)
            }
            RdataQuery::Name {
                name: NameMatch::Exact(name),
                types,
            } => {
                let value = keys::rrname(name);
                self.reverse(&value, &value, &types_for(*types), visit)
            }
            RdataQuery::Name { .. } => Err(unsupported("wildcard rdata name lookups")),
            RdataQuery::Text { text, types } => {
                let member = text.trim_end_matches('.');
                self.reverse(
                    &keys::value_key_part(member),
                    member,
                    &types_for(*types),
                    visit,
                )
            }
            RdataQuery::Raw { .. } => Err(unsupported("raw rdata lookups")),
        }
    }

    fn scan_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        for target in self.scan_targets()? {
            let mut node = match &target {
                Some(client) => Some(
                    client
                        .get_connection_with_timeout(Duration::from_millis(self.config.timeout_ms))
                        .map_err(engine)?,
                ),
                None => None,
            };
            let mut cursor: u64 = 0;
            loop {
                let scan = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("r:*")
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .to_owned();
                let (next, page): (u64, Vec<Vec<u8>>) = match &mut node {
                    Some(connection) => scan.query(connection).map_err(engine)?,
                    None => self.with_conn(|connection| connection.query(&scan))?,
                };
                let r_keys: Vec<(String, Rtype)> = page
                    .iter()
                    .filter_map(|key| {
                        let key = std::str::from_utf8(key).ok()?;
                        keys::split_r_key(key).map(|(q, t)| (q.to_string(), t))
                    })
                    .collect();
                for chunk in r_keys.chunks(SCAN_BATCH) {
                    let commands = chunk
                        .iter()
                        .map(|(q, t)| redis::cmd("SMEMBERS").arg(keys::r_key(q, *t)).to_owned())
                        .collect();
                    let sets: Vec<Vec<Vec<u8>>> =
                        self.with_conn(|connection| connection.pipeline(commands))?;
                    let mut triples = Vec::new();
                    for ((q, rtype), members) in chunk.iter().zip(sets) {
                        for member in members {
                            triples.push((
                                q.clone(),
                                *rtype,
                                String::from_utf8_lossy(&member).into_owned(),
                            ));
                        }
                    }
                    if self.visit_records(triples, visit)?.is_break() {
                        return Ok(());
                    }
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    fn info(&self) -> Result<StoreInfo, StoreError> {
        let (processed, sensors, keys): (Option<Vec<u8>>, Vec<(String, f64)>, i64) = self
            .with_conn(|connection| {
                let processed = connection.query(redis::cmd("GET").arg(keys::STATS_PROCESSED))?;
                let sensors = connection.query(
                    redis::cmd("ZREVRANGE")
                        .arg(keys::STATS_SENSORS)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES"),
                )?;
                let keys = connection.all_masters(
                    &redis::cmd("DBSIZE"),
                    ResponsePolicy::Aggregate(AggregateOp::Sum),
                )?;
                Ok((processed, sensors, i64::from_redis_value(keys)?))
            })?;
        let mut sensors: Vec<(String, u64)> = sensors
            .into_iter()
            .map(|(sensor, score)| (sensor, score.max(0.0) as u64))
            .collect();
        sensors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(StoreInfo {
            observations: processed.as_deref().and_then(parse_epoch).unwrap_or(0),
            sensors,
            // Each record owns three keys (s:, l:, o:) beside the shared
            // r:/v: sets: a third of the keys is an upper estimate.
            records_estimate: u64::try_from(keys).unwrap_or(0) / 3,
            disk_bytes: None,
            retention_secs: None,
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write is acknowledged by the server; persistence (RDB/AOF)
        // is the server's configuration.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_parse_as_d4_stores_them() {
        assert_eq!(parse_epoch(b"1548624738"), Some(1548624738));
        assert_eq!(parse_epoch(b"1548624738.28"), Some(1548624738));
        assert_eq!(parse_epoch(b"-5"), None);
        assert_eq!(parse_epoch(b"x"), None);
    }

    #[test]
    fn type_filters_choose_the_probed_keys() {
        assert_eq!(types_for(TypeFilter::Only(Rtype(65280))), [Rtype(65280)]);
        let any = types_for(TypeFilter::AnyNonDnssec);
        assert!(any.contains(&Rtype::A) && !any.contains(&Rtype::RRSIG));
    }
}
