//! A view's rows, streamed: the lookup runs on the blocking pool and hands
//! its rows to the page as they come, already rendered.
//!
//! [`spawn`] starts [`dnsdb::lookup`] with a [`Rows`] sink that renders
//! each row as a table row (`templates/rows.html`), adds it to the
//! view's totals and label tree, and sends the rows in [`Batch`]es over
//! a bounded channel: a batch goes when it holds [`BATCH_ROWS`] rows or
//! [`FLUSH_EVERY`] has passed since the last one, so the first rows of a
//! long view reach the browser while the scan goes on. The channel's
//! bound is the back-pressure: a slow client slows the scan, and a client
//! that leaves stops it (the send fails, the sink breaks). The lookup's
//! end, with the totals, comes last ([`Message::End`]).
//!
//! The page (`view::page`) waits a little for the first batches: a view
//! whose lookup ends by then is rendered whole, otherwise the head goes
//! out with the rows so far and the rest follows (`view::stream`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use dnsrecall_core::store::{NameMatch, Store};
use dnsrecall_core::{Entry, Name};
use dnsrecall_query::QueryError;
use dnsrecall_query::dnsdb::{self, Lookup, Outcome, Params, Rows};
use tokio::sync::mpsc;

use crate::html;
use crate::view::{self, Branch, PageQuery, Row};

/// Rows in a batch, at most.
pub const BATCH_ROWS: usize = 250;
/// A batch holding rows goes out after this long at the latest.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Batches in flight between the scan and the response.
const BATCHES_IN_FLIGHT: usize = 8;
/// Rows whose entries travel with their batch: the timeline's.
pub const TIMELINE_ROWS: usize = 400;
/// Branches of the label tree shown (the busiest).
const TREE_BRANCHES: usize = 200;

//---- messages ----------------------------------------------------------------------

/// Rows rendered by the scan.
#[derive(Default)]
pub struct Batch {
    /// The rows as `<tr>` elements, escaped.
    pub html: String,
    /// Rows in `html`.
    pub rows: usize,
    /// The entries of those rows among the first [`TIMELINE_ROWS`].
    pub entries: Vec<Entry>,
}

/// How the lookup ended, with what the page says about all its rows.
pub struct Ending {
    pub outcome: Outcome,
    pub totals: Totals,
    pub tree: Tree,
}

/// What the scan sends.
pub enum Message {
    Batch(Batch),
    End(Result<Ending, QueryError>),
}

/// Starts the lookup of a view on the blocking pool; its rows come out of
/// the receiver (dropping it stops the scan).
pub fn spawn(
    store: Arc<dyn Store>,
    lookup: Lookup,
    params: Params,
    query: PageQuery,
) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            totals: Totals::default(),
            tree: Tree::new(&lookup),
            tx,
            query,
            pending: Vec::new(),
            batch: Batch::default(),
            sent: 0,
            last_flush: Instant::now(),
            gone: false,
        };
        let ran = dnsdb::lookup(store.as_ref(), &lookup, &params, &mut sink);
        if sink.gone || sink.flush().is_break() {
            return;
        }
        let end = ran.map(|outcome| Ending {
            outcome,
            totals: sink.totals,
            tree: sink.tree,
        });
        // The page may be gone already: nothing to tell.
        let _ = sink.tx.blocking_send(Message::End(end));
    });
    rx
}

//---- the sink ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "rows.html")]
struct RowsHtml<'a> {
    rows: &'a [Row],
    /// Index of the first row in the view (row ids `r0`, `r1`, …).
    start: usize,
}

struct Sink {
    tx: mpsc::Sender<Message>,
    query: PageQuery,
    totals: Totals,
    tree: Tree,
    /// Rows not rendered yet.
    pending: Vec<Row>,
    batch: Batch,
    /// Rows handed to the page so far (rendered or pending).
    sent: usize,
    last_flush: Instant,
    /// The page went away.
    gone: bool,
}

impl Sink {
    /// Renders the pending rows and sends the batch; `Break` when the page
    /// is gone.
    fn flush(&mut self) -> ControlFlow<()> {
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return ControlFlow::Continue(());
        }
        let start = self.sent - self.pending.len();
        let rendered = RowsHtml {
            rows: &self.pending,
            start,
        }
        .render_into(&mut self.batch.html);
        if let Err(error) = rendered {
            // Plain data into a fixed template: a failure is a bug.
            tracing::error!(%error, "rows template failed");
        }
        self.batch.rows = self.pending.len();
        self.pending.clear();
        let batch = std::mem::take(&mut self.batch);
        if self.tx.blocking_send(Message::Batch(batch)).is_err() {
            self.gone = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl Rows for Sink {
    fn row(&mut self, entry: Entry) -> ControlFlow<()> {
        self.totals.add(&entry);
        self.tree.add(&entry);
        self.pending.push(view::row(&entry, &self.query));
        if self.sent < TIMELINE_ROWS {
            self.batch.entries.push(entry);
        }
        self.sent += 1;
        if self.pending.len() >= BATCH_ROWS || self.last_flush.elapsed() >= FLUSH_EVERY {
            return self.flush();
        }
        ControlFlow::Continue(())
    }

    fn filtered(&mut self) -> ControlFlow<()> {
        if self.tx.is_closed() {
            self.gone = true;
            return ControlFlow::Break(());
        }
        if !self.pending.is_empty() && self.last_flush.elapsed() >= FLUSH_EVERY {
            return self.flush();
        }
        ControlFlow::Continue(())
    }
}

//---- totals ------------------------------------------------------------------------

/// The view's summary line, added up row by row.
#[derive(Default)]
pub struct Totals {
    rows: u64,
    first: Option<u64>,
    last: u64,
    count: u64,
    names: HashSet<Name>,
    sensors: BTreeSet<Arc<str>>,
}

impl Totals {
    pub fn add(&mut self, entry: &Entry) {
        let seen = &entry.seen;
        self.rows += 1;
        self.first = Some(
            self.first
                .map_or(seen.time_first, |t| t.min(seen.time_first)),
        );
        self.last = self.last.max(seen.time_last);
        self.count = self.count.saturating_add(seen.count.max(1));
        if !self.names.contains(&entry.record.rrname) {
            self.names.insert(entry.record.rrname.clone());
        }
        if let Some(sensor) = &seen.sensor_id
            && !self.sensors.contains(sensor)
        {
            self.sensors.insert(sensor.clone());
        }
    }

    /// Rows added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// "N records, N names, N sightings, N sensors, seen A → B" (at least,
    /// when the view was cut); none without rows.
    pub fn text(&self, cut: bool) -> Option<String> {
        let first = self.first?;
        let prefix = if cut { "at least " } else { "" };
        Some(format!(
            "{prefix}{} records, {} names, {} sightings, {} sensors, seen {} → {}",
            self.rows,
            self.names.len(),
            self.count,
            self.sensors.len(),
            html::datetime(first),
            html::datetime(self.last)
        ))
    }
}

//---- the label tree ----------------------------------------------------------------

/// What the rows under one branch hold.
struct Acc {
    rows: u64,
    names: BTreeSet<Name>,
    count: u64,
    first: u64,
    last: u64,
}

/// The label tree of a wildcard view, added up row by row: for
/// `*.example.com`, the names one label below `example.com`; for
/// `www.example.*`, the names one label after `www.example`.
pub struct Tree {
    /// Labels of a branch name, and whether they are the name's last
    /// (subtree) or first (prefix) labels; none: not a wildcard view.
    shape: Option<(usize, bool)>,
    branches: BTreeMap<String, (Name, Acc)>,
}

impl Tree {
    pub fn new(lookup: &Lookup) -> Tree {
        let shape = match lookup {
            Lookup::Rrset { query, .. } => match &query.name {
                NameMatch::Subtree(base) => Some((base.label_count() + 1, true)),
                NameMatch::Prefix(labels) => Some((labels.len() + 1, false)),
                NameMatch::Exact(_) => None,
            },
            _ => None,
        };
        Tree {
            shape,
            branches: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, entry: &Entry) {
        let Some((depth, subtree)) = self.shape else {
            return;
        };
        let name = &entry.record.rrname;
        let labels: Vec<&[u8]> = name.labels().collect();
        if labels.len() < depth {
            return;
        }
        let kept = if subtree {
            &labels[labels.len() - depth..]
        } else {
            &labels[..depth]
        };
        let Ok(branch) = Name::from_labels(kept.iter().copied()) else {
            return;
        };
        // Siblings share all labels but one: their text sorts them.
        let slot = self.branches.entry(branch.to_fqdn()).or_insert_with(|| {
            (
                branch,
                Acc {
                    rows: 0,
                    names: BTreeSet::new(),
                    count: 0,
                    first: u64::MAX,
                    last: 0,
                },
            )
        });
        let acc = &mut slot.1;
        acc.rows += 1;
        if !acc.names.contains(name) {
            acc.names.insert(name.clone());
        }
        acc.count = acc.count.saturating_add(entry.seen.count.max(1));
        acc.first = acc.first.min(entry.seen.time_first);
        acc.last = acc.last.max(entry.seen.time_last);
    }

    /// The busiest branches (at most [`TREE_BRANCHES`]) in name order, and
    /// how many more there are.
    pub fn branches(self, query: &PageQuery) -> (Vec<Branch>, usize) {
        let total = self.branches.len();
        let mut kept: Vec<(Name, Acc)> = self.branches.into_values().collect();
        if kept.len() > TREE_BRANCHES {
            kept.sort_by_key(|(_, acc)| std::cmp::Reverse(acc.rows));
            kept.truncate(TREE_BRANCHES);
            kept.sort_by_key(|(name, _)| name.to_fqdn());
        }
        let shown: Vec<Branch> = kept
            .into_iter()
            .map(|(name, acc)| {
                let q = view::name_q(&name);
                Branch {
                    href: query.pivot(&q),
                    subtree_href: query.pivot(&format!("*.{q}")),
                    name: name.to_fqdn(),
                    rows: acc.rows,
                    names: acc.names.len() as u64,
                    count: acc.count,
                    first: html::date(acc.first),
                    last: html::date(acc.last),
                }
            })
            .collect();
        let hidden = total - shown.len();
        (shown, hidden)
    }
}
