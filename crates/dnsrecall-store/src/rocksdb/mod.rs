//! The RocksDB backend: on-disk layout ([`keys`]: column families, key and
//! value encoding), the merge operators that make ingest write-only (min/max/sum
//! of sightings, union of rrtype sets, counter sums) and the scans that
//! answer forward, inverse, wildcard and address-range queries.
//!
//! One RocksDB database per data directory with four column families
//! (`rrset`, `rdata`, `names`, `meta`), LZ4 on upper levels and ZSTD on the
//! bottom level. `meta` holds the schema version, checked at open.
//!
//! A follower (RocksDB secondary instance) opens only the column families
//! that exist: a writer killed before it created them all leaves a directory
//! whose missing families read as empty.

pub mod keys;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ::rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, MergeOperands, Options, ReadOptions, WriteBatch, WriteOptions,
};
use dnsrecall_core::store::{
    NameMatch, RdataQuery, RrsetQuery, Store, StoreError, StoreInfo, TypeFilter, Visitor,
};
use dnsrecall_core::{Entry, Rtype, Seen};

/// The layout version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

const CF_RRSET: &str = "rrset";
const CF_RDATA: &str = "rdata";
const CF_NAMES: &str = "names";
const CF_META: &str = "meta";

const META_SCHEMA: &[u8] = b"schema_version";
const META_OBSERVATIONS: &[u8] = b"observations";
const META_SENSOR_PREFIX: &[u8] = b"sensor\0";

/// A key or value that does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

impl From<Corrupt> for StoreError {
    fn from(corrupt: Corrupt) -> Self {
        StoreError::Corrupt(corrupt.0)
    }
}

fn engine(error: ::rocksdb::Error) -> StoreError {
    StoreError::Engine(error.into_string())
}

/// How to open the store.
#[derive(Clone, Debug)]
pub struct RocksConfig {
    /// Block cache size in bytes.
    pub block_cache_bytes: usize,
    /// Memtable size per column family in bytes.
    pub write_buffer_bytes: usize,
    /// All memtables together, charged to the block cache so RocksDB's
    /// memory stays within `block_cache_bytes` (index and filter blocks are
    /// charged there too); `None`: memtables are limited per column family
    /// only.
    pub memtable_budget_bytes: Option<usize>,
    /// Background compaction/flush threads.
    pub background_jobs: i32,
    /// Retention: records whose `time_last` is older than this many seconds
    /// are removed by compaction (no full scans); `None` keeps everything.
    pub max_age_secs: Option<u64>,
    /// Most `names` index entries remembered as already written (see
    /// [`RecentNames`]); 0 remembers none.
    pub recent_names: usize,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            block_cache_bytes: 512 << 20,
            write_buffer_bytes: 64 << 20,
            memtable_budget_bytes: Some(256 << 20),
            background_jobs: 2,
            max_age_secs: None,
            recent_names: 1 << 20,
        }
    }
}

/// How the process uses the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write (one process at a time).
    ReadWrite,
    /// Follow a directory another process writes, keeping the follower's
    /// own state in `secondary_dir` (RocksDB secondary instance).
    Follower { secondary_dir: PathBuf },
}

/// Remembers `names` index entries (name key, rrtype) this process has
/// written, so a repeated one is not merged again: the `names` value is a
/// set union, so re-merging a known type changes nothing, yet it cost about
/// a fifth of an ingest's CPU (memtable inserts and flushes; measured on the
/// dnstap bench). Entries are 128-bit keyed hashes (two independently seeded
/// SipHashes: collisions, which would leave a name out of the right-hand
/// wildcard index, are not practically reachable even on purpose). Bounded:
/// 16 shards, each cleared when it reaches its share of the capacity.
pub struct RecentNames {
    shards: Vec<std::sync::Mutex<std::collections::HashSet<u128>>>,
    per_shard: usize,
    /// Merges skipped so far.
    skipped: AtomicU64,
    seeds: (std::hash::RandomState, std::hash::RandomState),
}

const RECENT_NAMES_SHARDS: usize = 16;

impl RecentNames {
    /// Remembers up to `capacity` entries; 0 remembers none.
    pub fn new(capacity: usize) -> RecentNames {
        let shards = if capacity == 0 {
            0
        } else {
            RECENT_NAMES_SHARDS
        };
        RecentNames {
            shards: (0..shards).map(|_| Default::default()).collect(),
            per_shard: capacity.div_ceil(RECENT_NAMES_SHARDS),
            skipped: AtomicU64::new(0),
            seeds: Default::default(),
        }
    }

    /// Whether `(key, rtype)` is new; it is remembered from now on.
    pub fn first_time(&self, key: &[u8], rtype: [u8; 2]) -> bool {
        use std::hash::BuildHasher;
        if self.shards.is_empty() {
            return true;
        }
        let high = self.seeds.0.hash_one((key, rtype));
        let low = self.seeds.1.hash_one((key, rtype));
        let hash = (u128::from(high) << 64) | u128::from(low);
        let shard = &self.shards[(low as usize) % self.shards.len()];
        let Ok(mut set) = shard.lock() else {
            // A panicked writer poisoned it: just write.
            return true;
        };
        if set.contains(&hash) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if set.len() >= self.per_shard {
            set.clear();
        }
        set.insert(hash);
        true
    }

    /// Index merges skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Forgets everything (after a failed write, whose entries may be
    /// remembered without having been written).
    pub fn clear(&self) {
        for shard in &self.shards {
            if let Ok(mut set) = shard.lock() {
                set.clear();
            }
        }
    }
}

/// The RocksDB store.
pub struct RocksStore {
    db: DB,
    mode: OpenMode,
    max_age_secs: Option<u64>,
    recent_names: RecentNames,
    /// Observations written by this process (the persistent total is in
    /// `meta`).
    written: AtomicU64,
    /// A follower's private directory, removed at close.
    remove_on_close: Option<PathBuf>,
}

fn sightings_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut total: Option<Seen> = existing.and_then(|bytes| keys::decode_value(bytes).ok());
    for operand in operands {
        // An undecodable operand cannot come from this code; skipping it
        // keeps the rest rather than failing the whole key.
        if let Ok(seen) = keys::decode_value(operand) {
            match &mut total {
                Some(total) => total.merge(&seen),
                None => total = Some(seen),
            }
        }
    }
    let total = total?;
    let mut out = Vec::with_capacity(24);
    keys::encode_value(&total, &mut out);
    Some(out)
}

fn types_merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut types: Vec<u16> = existing
        .into_iter()
        .flat_map(keys::decode_types)
        .map(|r| r.0)
        .collect();
    for operand in operands {
        types.extend(keys::decode_types(operand).map(|r| r.0));
    }
    types.sort_unstable();
    types.dedup();
    let mut out = Vec::with_capacity(types.len() * 2);
    keys::encode_types(&types, &mut out);
    Some(out)
}

fn counter_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let read = |bytes: &[u8]| bytes.try_into().map(u64::from_le_bytes).unwrap_or(0);
    let mut total = existing.map(read).unwrap_or(0);
    for operand in operands {
        total = total.saturating_add(read(operand));
    }
    Some(total.to_le_bytes().to_vec())
}

/// Compaction filter of the retention period: drops values whose
/// `time_last` is older than `max_age` seconds before the compaction runs.
fn retention_filter(
    max_age: u64,
) -> impl FnMut(u32, &[u8], &[u8]) -> ::rocksdb::compaction_filter::Decision + Send + 'static {
    move |_level, _key, value| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match keys::decode_value(value) {
            Ok(seen) if seen.time_last.saturating_add(max_age) < now => {
                ::rocksdb::compaction_filter::Decision::Remove
            }
            _ => ::rocksdb::compaction_filter::Decision::Keep,
        }
    }
}

fn column_families(config: &RocksConfig, cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
    let table = |prefix_bytes: usize| {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        // Index and filter blocks live in the block cache, not beside it:
        // held by each open table file, they grew with the store (about
        // 33 bytes a record with no plateau, issue 10) outside any bound.
        // High priority and L0 pinning keep the hot ones from thrashing.
        table.set_cache_index_and_filter_blocks(true);
        table.set_cache_index_and_filter_blocks_with_high_priority(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Larger blocks compress better (keys share long prefixes: reversed
        // names), and point reads are rare next to prefix scans.
        table.set_block_size(32 * 1024);
        // No bloom filter: the data families are read by prefix/range
        // iterators only, which a whole-key bloom filter cannot help
        // (measured: 3.4 bytes per record for nothing).
        table.set_format_version(6);
        let _ = prefix_bytes;
        table
    };
    let max_age = config.max_age_secs;
    let base = |merge: &str| {
        let mut options = Options::default();
        options.set_write_buffer_size(config.write_buffer_bytes);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_bottommost_compression_type(DBCompressionType::Zstd);
        // The bottom level holds most of the data: zstd level 6 with a 16 KiB
        // dictionary trained per compaction (measured on bench data: smaller
        // files for a little more compaction CPU).
        options.set_bottommost_compression_options(-14, 6, 0, 16 * 1024, true);
        options.set_bottommost_zstd_max_train_bytes(100 * 16 * 1024, true);
        options.set_block_based_table_factory(&table(0));
        options.set_level_compaction_dynamic_level_bytes(true);
        match merge {
            "sightings" => {
                options.set_merge_operator_associative("dnsrecall.sightings.v1", sightings_merge);
                if let Some(max_age) = max_age {
                    options
                        .set_compaction_filter("dnsrecall.retention.v1", retention_filter(max_age));
                }
            }
            "types" => options.set_merge_operator_associative("dnsrecall.types.v1", types_merge),
            _ => options.set_merge_operator_associative("dnsrecall.counter.v1", counter_merge),
        }
        options
    };
    vec![
        ColumnFamilyDescriptor::new(CF_RRSET, base("sightings")),
        ColumnFamilyDescriptor::new(CF_RDATA, base("sightings")),
        ColumnFamilyDescriptor::new(CF_NAMES, base("types")),
        ColumnFamilyDescriptor::new(CF_META, base("counter")),
    ]
}

impl RocksStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(
        dir: &Path,
        mode: OpenMode,
        config: &RocksConfig,
    ) -> Result<RocksStore, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.increase_parallelism(config.background_jobs.max(2));
        options.set_max_background_jobs(config.background_jobs.max(2));
        options.set_keep_log_file_num(5);
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        if let (OpenMode::ReadWrite, Some(budget)) = (&mode, config.memtable_budget_bytes) {
            // Memtables reserve their memory in the block cache: one bound
            // for blocks, indexes and memtables (no stall: flushes start
            // early instead).
            let manager = ::rocksdb::WriteBufferManager::new_write_buffer_manager_with_cache(
                budget,
                false,
                cache.clone(),
            );
            options.set_write_buffer_manager(&manager);
        }
        let db = match &mode {
            OpenMode::ReadWrite => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Engine(format!(
                        "cannot create data directory {}: {e}",
                        dir.display()
                    ))
                })?;
                DB::open_cf_descriptors(&options, dir, column_families(config, &cache))
                    .map_err(engine)?
            }
            OpenMode::Follower { secondary_dir } => {
                options.create_if_missing(false);
                options.set_max_open_files(-1);
                // Only the families that exist: a writer killed early may
                // not have created them all (the missing ones read as empty).
                let existing = DB::list_cf(&options, dir).map_err(engine)?;
                let families = column_families(config, &cache)
                    .into_iter()
                    .filter(|family| existing.iter().any(|name| name == family.name()));
                DB::open_cf_descriptors_as_secondary(&options, dir, secondary_dir, families)
                    .map_err(engine)?
            }
        };
        let store = RocksStore {
            db,
            mode,
            max_age_secs: config.max_age_secs,
            recent_names: RecentNames::new(config.recent_names),
            written: AtomicU64::new(0),
            remove_on_close: None,
        };
        store.check_schema()?;
        Ok(store)
    }

    fn cf(&self, name: &str) -> Result<&::rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Engine(format!("missing column family {name}")))
    }

    /// A family that may be missing in a follower (it then reads as empty).
    fn cf_if_exists(&self, name: &str) -> Result<Option<&::rocksdb::ColumnFamily>, StoreError> {
        match self.db.cf_handle(name) {
            Some(cf) => Ok(Some(cf)),
            None if self.mode != OpenMode::ReadWrite => Ok(None),
            None => Err(StoreError::Engine(format!("missing column family {name}"))),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let Some(meta) = self.cf_if_exists(CF_META)? else {
            return Ok(());
        };
        match self.db.get_cf(meta, META_SCHEMA).map_err(engine)? {
            Some(bytes) => {
                let found = bytes
                    .as_slice()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .unwrap_or(0);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
            None if self.mode == OpenMode::ReadWrite => {
                self.db
                    .put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_le_bytes())
                    .map_err(engine)?;
                Ok(())
            }
            // A follower of a directory that holds nothing yet.
            None => Ok(()),
        }
    }

    /// Compacts every column family to the bottom level (reclaims space
    /// and applies retention). Values that still were merge operands are
    /// merged by the first pass and filtered by the second.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.flush()?;
        let passes = if self.max_age_secs.is_some() { 2 } else { 1 };
        for _ in 0..passes {
            for name in [CF_RRSET, CF_RDATA, CF_NAMES, CF_META] {
                let mut options = ::rocksdb::CompactOptions::default();
                options
                    .set_bottommost_level_compaction(::rocksdb::BottommostLevelCompaction::Force);
                self.db.compact_range_cf_opt(
                    self.cf(name)?,
                    None::<&[u8]>,
                    None::<&[u8]>,
                    &options,
                );
            }
        }
        Ok(())
    }

    /// Bytes of live SST files plus memtables.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for name in [CF_RRSET, CF_RDATA, CF_NAMES, CF_META] {
            let Some(cf) = self.cf_if_exists(name)? else {
                continue;
            };
            total += self
                .db
                .property_int_value_cf(cf, "rocksdb.total-sst-files-size")
                .map_err(engine)?
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// Removes `dir` (a follower's secondary directory) when the store closes.
    pub fn remove_on_close(&mut self, dir: PathBuf) {
        self.remove_on_close = Some(dir);
    }

    /// Observations written by this process.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn scan_range(
        &self,
        cf_name: &str,
        lower: &[u8],
        upper: Option<Vec<u8>>,
        decode: fn(&[u8]) -> Result<dnsrecall_core::Record, Corrupt>,
        keep: &mut dyn FnMut(&dnsrecall_core::Record) -> bool,
        visit: &mut Visitor<'_>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let Some(cf) = self.cf_if_exists(cf_name)? else {
            return Ok(ControlFlow::Continue(()));
        };
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(lower.to_vec());
        if let Some(upper) = upper {
            read.set_iterate_upper_bound(upper);
        }
        read.fill_cache(true);
        let iterator =
            self.db
                .iterator_cf_opt(cf, read, IteratorMode::From(lower, Direction::Forward));
        for item in iterator {
            let (key, value) = item.map_err(engine)?;
            let record = decode(&key)?;
            if !keep(&record) {
                continue;
            }
            let entry = keys::entry(record, &value)?;
            if visit(entry).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    fn scan_prefix(
        &self,
        cf_name: &str,
        prefix: &[u8],
        decode: fn(&[u8]) -> Result<dnsrecall_core::Record, Corrupt>,
        keep: &mut dyn FnMut(&dnsrecall_core::Record) -> bool,
        visit: &mut Visitor<'_>,
    ) -> Result<ControlFlow<()>, StoreError> {
        self.scan_range(
            cf_name,
            prefix,
            keys::prefix_successor(prefix),
            decode,
            keep,
            visit,
        )
    }

    /// Names in the `names` family under `kind` whose wire form starts with
    /// `labels` (right-hand wildcard), with their rrtype sets.
    fn names_with_prefix(
        &self,
        kind: u8,
        labels: &[Vec<u8>],
        visit: &mut dyn FnMut(
            dnsrecall_core::Name,
            Vec<Rtype>,
        ) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let mut prefix = vec![kind];
        for label in labels {
            prefix.push(label.len() as u8);
            prefix.extend_from_slice(label);
        }
        let Some(cf) = self.cf_if_exists(CF_NAMES)? else {
            return Ok(ControlFlow::Continue(()));
        };
        let mut read = ReadOptions::default();
        if let Some(upper) = keys::prefix_successor(&prefix) {
            read.set_iterate_upper_bound(upper);
        }
        for item in
            self.db
                .iterator_cf_opt(cf, read, IteratorMode::From(&prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(engine)?;
            let name = dnsrecall_core::Name::from_wire(&key[1..])
                .map_err(|_| Corrupt("bad name in names key"))?;
            let types = keys::decode_types(&value).collect();
            if visit(name, types)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

fn type_prefix_ok(types: TypeFilter, available: &[Rtype]) -> bool {
    available.iter().any(|rtype| types.accepts(*rtype))
}

impl Store for RocksStore {
    fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        if self.mode != OpenMode::ReadWrite {
            return Err(StoreError::ReadOnly);
        }
        if entries.is_empty() {
            return Ok(());
        }
        let (rrset, rdata, names, meta) = (
            self.cf(CF_RRSET)?,
            self.cf(CF_RDATA)?,
            self.cf(CF_NAMES)?,
            self.cf(CF_META)?,
        );
        // Keys go into the batch sorted per column family: RocksDB's memtable
        // skiplist reuses its insertion point for ascending keys, which
        // measured about twice as fast as random order (the skiplist search
        // was the top profile entry). Identical `names` operands collapse,
        // since a union of a set with itself adds nothing.
        let mut rrset_ops: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
        let mut rdata_ops: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
        let mut names_ops: Vec<(Vec<u8>, [u8; 2])> = Vec::with_capacity(entries.len() * 2);
        let (mut owner, mut target) = (Vec::new(), Vec::new());
        let mut sensors: BTreeMap<&str, u64> = BTreeMap::new();
        let mut observations = 0u64;
        for entry in entries {
            let mut value = Vec::with_capacity(24);
            keys::encode_value(&entry.seen, &mut value);
            let mut key = Vec::with_capacity(64);
            keys::rrset_key(&entry.record, &mut key);
            rrset_ops.push((key, value.clone()));
            let mut key = Vec::with_capacity(64);
            keys::rdata_key(&entry.record, &mut key);
            rdata_ops.push((key, value));
            let has_target = keys::names_keys(&entry.record, &mut owner, &mut target);
            let rtype = entry.record.rrtype.0.to_be_bytes();
            names_ops.push((owner.clone(), rtype));
            if has_target {
                names_ops.push((target.clone(), rtype));
            }
            observations += entry.seen.count;
            if let Some(sensor) = &entry.seen.sensor_id {
                *sensors.entry(sensor).or_default() += entry.seen.count;
            }
        }
        rrset_ops.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rdata_ops.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        names_ops.sort_unstable();
        names_ops.dedup();
        names_ops.retain(|(key, types)| self.recent_names.first_time(key, *types));
        let mut batch = WriteBatch::default();
        for (key, value) in &rrset_ops {
            batch.merge_cf(rrset, key, value);
        }
        for (key, value) in &rdata_ops {
            batch.merge_cf(rdata, key, value);
        }
        for (key, types) in &names_ops {
            batch.merge_cf(names, key, types);
        }
        batch.merge_cf(meta, META_OBSERVATIONS, observations.to_le_bytes());
        for (sensor, count) in sensors {
            let mut sensor_key = META_SENSOR_PREFIX.to_vec();
            sensor_key.extend_from_slice(sensor.as_bytes());
            batch.merge_cf(meta, sensor_key, count.to_le_bytes());
        }
        let mut options = WriteOptions::default();
        options.set_sync(false);
        if let Err(error) = self.db.write_opt(batch, &options) {
            self.recent_names.clear();
            return Err(engine(error));
        }
        self.written.fetch_add(observations, Ordering::Relaxed);
        Ok(())
    }

    fn scan_rrset(&self, query: &RrsetQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let mut keep = |record: &dnsrecall_core::Record| {
            query.types.accepts(record.rrtype)
                && query
                    .bailiwick
                    .as_ref()
                    .is_none_or(|zone| record.bailiwick.as_ref() == Some(zone))
        };
        match &query.name {
            NameMatch::Exact(name) => {
                let mut prefix = name.reversed();
                if let TypeFilter::Only(rtype) = query.types {
                    prefix.extend_from_slice(&rtype.0.to_be_bytes());
                }
                let _ =
                    self.scan_prefix(CF_RRSET, &prefix, keys::decode_rrset_key, &mut keep, visit)?;
            }
            NameMatch::Subtree(name) => {
                let mut prefix = name.reversed();
                prefix.pop();
                let _ =
                    self.scan_prefix(CF_RRSET, &prefix, keys::decode_rrset_key, &mut keep, visit)?;
            }
            NameMatch::Prefix(labels) => {
                let _ = self.names_with_prefix(keys::NAMES_OWNER, labels, &mut |name, types| {
                    if !type_prefix_ok(query.types, &types) {
                        return Ok(ControlFlow::Continue(()));
                    }
                    self.scan_prefix(
                        CF_RRSET,
                        &name.reversed(),
                        keys::decode_rrset_key,
                        &mut keep,
                        visit,
                    )
                })?;
            }
        }
        Ok(())
    }

    fn scan_rdata(&self, query: &RdataQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        match query {
            RdataQuery::Name { name, types } => {
                let types = *types;
                let mut keep = |record: &dnsrecall_core::Record| types.accepts(record.rrtype);
                match name {
                    NameMatch::Exact(name) | NameMatch::Subtree(name) => {
                        // Without its final zero octet the reversed name
                        // also selects every name below it.
                        let mut prefix = vec![keys::INDEX_NAME];
                        name.push_reversed(&mut prefix);
                        if matches!(
                            query,
                            RdataQuery::Name {
                                name: NameMatch::Subtree(_),
                                ..
                            }
                        ) {
                            prefix.pop();
                        }
                        let _ = self.scan_prefix(
                            CF_RDATA,
                            &prefix,
                            keys::decode_rdata_key,
                            &mut keep,
                            visit,
                        )?;
                    }
                    NameMatch::Prefix(labels) => {
                        let _ = self.names_with_prefix(
                            keys::NAMES_TARGET,
                            labels,
                            &mut |name, available| {
                                if !type_prefix_ok(types, &available) {
                                    return Ok(ControlFlow::Continue(()));
                                }
                                let mut prefix = vec![keys::INDEX_NAME];
                                name.push_reversed(&mut prefix);
                                self.scan_prefix(
                                    CF_RDATA,
                                    &prefix,
                                    keys::decode_rdata_key,
                                    &mut keep,
                                    visit,
                                )
                            },
                        )?;
                    }
                }
            }
            RdataQuery::Address { first, last } => {
                let Some((lower, upper)) = keys::address_range(*first, *last) else {
                    return Ok(());
                };
                let mut keep = |record: &dnsrecall_core::Record| {
                    record.rrtype == Rtype::A || record.rrtype == Rtype::AAAA
                };
                let _ = self.scan_range(
                    CF_RDATA,
                    &lower,
                    upper,
                    keys::decode_rdata_key,
                    &mut keep,
                    visit,
                )?;
            }
            RdataQuery::Raw {
                prefix: bytes,
                types,
            } => {
                let types = *types;
                let mut keep = |record: &dnsrecall_core::Record| types.accepts(record.rrtype);
                let mut prefix = vec![keys::INDEX_RAW];
                prefix.extend_from_slice(bytes);
                let _ =
                    self.scan_prefix(CF_RDATA, &prefix, keys::decode_rdata_key, &mut keep, visit)?;
            }
            RdataQuery::Text { text, types } => {
                let types = *types;
                let mut keep = |record: &dnsrecall_core::Record| {
                    types.accepts(record.rrtype)
                        && matches!(&record.rdata, dnsrecall_core::Rdata::Text(t) if **t == **text)
                };
                let mut prefix = vec![keys::INDEX_TEXT];
                prefix.extend_from_slice(text.as_bytes());
                let _ =
                    self.scan_prefix(CF_RDATA, &prefix, keys::decode_rdata_key, &mut keep, visit)?;
            }
        }
        Ok(())
    }

    fn scan_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let mut keep = |_: &dnsrecall_core::Record| true;
        let _ = self.scan_range(
            CF_RRSET,
            &[],
            None,
            keys::decode_rrset_key,
            &mut keep,
            visit,
        )?;
        Ok(())
    }

    fn info(&self) -> Result<StoreInfo, StoreError> {
        let Some(meta) = self.cf_if_exists(CF_META)? else {
            return Ok(StoreInfo {
                disk_bytes: self.disk_bytes().ok(),
                retention_secs: self.max_age_secs,
                ..StoreInfo::default()
            });
        };
        let read_counter = |bytes: &[u8]| bytes.try_into().map(u64::from_le_bytes).unwrap_or(0);
        let observations = self
            .db
            .get_cf(meta, META_OBSERVATIONS)
            .map_err(engine)?
            .map(|b| read_counter(&b))
            .unwrap_or(0);
        let mut sensors = Vec::new();
        let mut read = ReadOptions::default();
        if let Some(upper) = keys::prefix_successor(META_SENSOR_PREFIX) {
            read.set_iterate_upper_bound(upper);
        }
        for item in self.db.iterator_cf_opt(
            meta,
            read,
            IteratorMode::From(META_SENSOR_PREFIX, Direction::Forward),
        ) {
            let (key, value) = item.map_err(engine)?;
            let name = String::from_utf8_lossy(&key[META_SENSOR_PREFIX.len()..]).into_owned();
            sensors.push((name, read_counter(&value)));
        }
        sensors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let records_estimate = match self.cf_if_exists(CF_RRSET)? {
            Some(rrset) => self
                .db
                .property_int_value_cf(rrset, "rocksdb.estimate-num-keys")
                .map_err(engine)?
                .unwrap_or(0),
            None => 0,
        };
        Ok(StoreInfo {
            observations,
            sensors,
            records_estimate,
            disk_bytes: self.disk_bytes().ok(),
            retention_secs: self.max_age_secs,
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        if self.mode != OpenMode::ReadWrite {
            return Ok(());
        }
        for name in [CF_RRSET, CF_RDATA, CF_NAMES, CF_META] {
            self.db.flush_cf(self.cf(name)?).map_err(engine)?;
        }
        tracing::debug!(
            names_index_merges_skipped = self.recent_names.skipped(),
            "store flushed"
        );
        self.db.flush_wal(true).map_err(engine)
    }

    fn refresh(&self) -> Result<(), StoreError> {
        match self.mode {
            OpenMode::Follower { .. } => self.db.try_catch_up_with_primary().map_err(engine),
            OpenMode::ReadWrite => Ok(()),
        }
    }
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        if self.mode == OpenMode::ReadWrite
            && let Err(error) = self.flush()
        {
            tracing::error!(%error, "flushing the store at close failed");
        }
        if let Some(dir) = &self.remove_on_close {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
