//! A set of UDP/TCP ports with O(1) membership.

//------------ PortSet -------------------------------------------------------

/// A set of ports, stored as a 65536-bit bitmap so that the per-packet test
/// is one load and one mask.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl PortSet {
    /// The empty set.
    pub fn empty() -> Self {
        PortSet {
            bits: Box::new([0; 1024]),
        }
    }

    /// A set holding the given ports.
    pub fn from_ports(ports: impl IntoIterator<Item = u16>) -> Self {
        let mut set = Self::empty();
        for port in ports {
            set.insert(port);
        }
        set
    }

    pub fn insert(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    pub fn remove(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] &= !(1 << (port & 63));
    }

    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    /// The ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|port| self.contains(*port))
    }
}

impl Default for PortSet {
    /// Port 53 only.
    fn default() -> Self {
        Self::from_ports([crate::DEFAULT_DNS_PORT])
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<u16> for PortSet {
    fn from_iter<T: IntoIterator<Item = u16>>(iter: T) -> Self {
        Self::from_ports(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let set = PortSet::from_ports([0, 53, 5353, 65535]);
        assert!(set.contains(0) && set.contains(53) && set.contains(65535));
        assert!(!set.contains(54));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 53, 5353, 65535]);
    }
}
