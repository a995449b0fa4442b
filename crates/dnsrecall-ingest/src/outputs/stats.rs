//! Traffic statistics as a message output: every message any input decoded
//! is observed by [`dnsrecall_stats::Stats`] (configured as `[stats]`; its
//! routes read the same `Arc` through the HTTP crate).

use std::sync::Arc;

use dnsrecall_core::message::DnsMessage;
use dnsrecall_stats::Stats;

use super::MessageOutput;

/// Feeds [`Stats`]. Observing is a few microseconds under the statistics'
/// own lock and its memory is bounded by `[stats] memory_bound`, so it runs
/// inline instead of behind a queue.
pub struct StatsOutput {
    stats: Arc<Stats>,
}

impl StatsOutput {
    pub fn new(stats: Arc<Stats>) -> StatsOutput {
        StatsOutput { stats }
    }
}

impl MessageOutput for StatsOutput {
    fn offer(&self, message: &DnsMessage) {
        self.stats.observe(message);
    }

    fn finish(&self) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}
