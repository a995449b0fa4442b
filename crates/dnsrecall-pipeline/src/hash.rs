//! Hash maps keyed by attacker-controlled data (names, rdata) use a
//! randomly seeded hasher, so nobody can precompute colliding keys.

pub(crate) type RandomState = foldhash::fast::RandomState;
pub(crate) type FastMap<K, V> = hashbrown::HashMap<K, V, RandomState>;
pub(crate) type FastSet<K> = hashbrown::HashSet<K, RandomState>;
