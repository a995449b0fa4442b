//! Between sources and the store: batches of entries travel over a bounded
//! channel to one writer thread, which merges them into the store.

pub mod writer;
