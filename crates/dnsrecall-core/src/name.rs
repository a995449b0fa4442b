//! Domain names in canonical form: lower-cased, absolute, uncompressed wire
//! format.
//!
//! Names are the hot path of ingest and of every key, so this module parses
//! and renders them by hand instead of going through a DNS library's generic
//! text machinery: it is a handful of loops over labels, measured to matter
//! (see `reference/crates.md` §2.1: text rendering costs ~5× the parse).

use std::fmt;

/// Longest wire name allowed by RFC 1035 §2.3.4.
pub const MAX_NAME_LEN: usize = 255;
/// Longest label allowed by RFC 1035 §2.3.4.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (not even the root).
    #[error("empty name")]
    Empty,
    /// A label between two dots is empty, e.g. `a..b`.
    #[error("empty label")]
    EmptyLabel,
    /// A label is longer than 63 octets.
    #[error("label longer than 63 octets")]
    LongLabel,
    /// The whole name is longer than 255 octets.
    #[error("name longer than 255 octets")]
    LongName,
    /// A backslash escape is malformed (`\` at the end, or `\DDD` > 255).
    #[error("bad escape sequence")]
    BadEscape,
    /// Wire bytes do not form a name (bad length octet, missing root label,
    /// compression pointer).
    #[error("malformed wire name")]
    BadWire,
}

/// A domain name in canonical wire form: absolute, lower-cased ASCII letters,
/// no compression. Ordering is the byte order of the wire form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<[u8]>);

impl Name {
    /// The root name `.`.
    pub fn root() -> Self {
        Name(Box::new([0u8]))
    }

    /// Parses presentation format (`www.Example.com`, with or without the
    /// trailing dot, `\.` and `\DDD` escapes), lower-casing it.
    pub fn from_presentation(text: &str) -> Result<Self, NameError> {
        let mut wire = Vec::with_capacity(text.len() + 2);
        parse_presentation_into(text, &mut wire)?;
        Ok(Name(wire.into_boxed_slice()))
    }

    /// Checks and lower-cases an uncompressed wire name.
    pub fn from_wire(wire: &[u8]) -> Result<Self, NameError> {
        let len = wire_name_len(wire)?;
        if len != wire.len() {
            return Err(NameError::BadWire);
        }
        let mut owned = wire.to_vec();
        owned.make_ascii_lowercase();
        Ok(Name(owned.into_boxed_slice()))
    }

    /// Builds a name from labels (each without its length octet), lower-cased.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, NameError> {
        let mut wire = Vec::with_capacity(32);
        for label in labels {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LongLabel);
            }
            wire.push(label.len() as u8);
            wire.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::LongName);
        }
        Ok(Name(wire.into_boxed_slice()))
    }

    /// The uncompressed wire form, ending in the root label.
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// Labels from the leftmost to the one before the root.
    pub fn labels(&self) -> Labels<'_> {
        Labels { wire: &self.0 }
    }

    /// Number of labels, root not counted.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Whether `self` equals `ancestor` or lies below it.
    pub fn is_subdomain_of(&self, ancestor: &Name) -> bool {
        let own = self.as_wire();
        let other = ancestor.as_wire();
        if other.len() > own.len() {
            return false;
        }
        // The ancestor must match a suffix that starts on a label boundary.
        let offset = own.len() - other.len();
        if own[offset..] != *other {
            return false;
        }
        let mut pos = 0;
        while pos < offset {
            pos += own[pos] as usize + 1;
        }
        pos == offset
    }

    /// The name one label up (`www.example.com` → `example.com`); `None` for
    /// the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = self.0[0] as usize + 1;
        Some(Name(self.0[skip..].to_vec().into_boxed_slice()))
    }

    /// Presentation format without the trailing dot (COF/D4 style); the root
    /// is `.`.
    pub fn to_dotless(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        write_presentation(&self.0, &mut out, false);
        out
    }

    /// Presentation format with the trailing dot (DNSDB/dig style).
    pub fn to_fqdn(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 1);
        write_presentation(&self.0, &mut out, true);
        out
    }

    /// Appends the label-reversed key form: labels from the root down, each
    /// with its length octet, terminated by a zero octet. The prefix of a
    /// name's reversed key without the terminator selects exactly that name
    /// and its subdomains.
    pub fn push_reversed(&self, out: &mut Vec<u8>) {
        push_reversed_wire(&self.0, out);
    }

    /// The label-reversed key form (see [`Name::push_reversed`]).
    pub fn reversed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len());
        self.push_reversed(&mut out);
        out
    }

    /// Parses a label-reversed key at the start of `key`, returning the name
    /// and the number of bytes consumed.
    pub fn from_reversed_prefix(key: &[u8]) -> Result<(Name, usize), NameError> {
        let used = wire_name_len(key)?;
        let mut starts = Vec::with_capacity(8);
        let mut pos = 0;
        while key[pos] != 0 {
            starts.push(pos);
            pos += key[pos] as usize + 1;
        }
        let mut wire = Vec::with_capacity(used);
        for &start in starts.iter().rev() {
            let len = key[start] as usize;
            wire.extend_from_slice(&key[start..start + 1 + len]);
        }
        wire.push(0);
        Ok((Name(wire.into_boxed_slice()), used))
    }
}

/// Writes the label-reversed form of an uncompressed wire name.
pub fn push_reversed_wire(wire: &[u8], out: &mut Vec<u8>) {
    let mut starts = [0u8; 128];
    let mut count = 0;
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        starts[count] = pos as u8;
        count += 1;
        pos += wire[pos] as usize + 1;
    }
    for &start in starts[..count].iter().rev() {
        let start = start as usize;
        let len = wire[start] as usize;
        out.extend_from_slice(&wire[start..start + 1 + len]);
    }
    out.push(0);
}

/// Length of the wire name at the start of `wire` (through its root label).
pub fn wire_name_len(wire: &[u8]) -> Result<usize, NameError> {
    let mut pos = 0;
    loop {
        let len = *wire.get(pos).ok_or(NameError::BadWire)? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        if len > MAX_LABEL_LEN {
            return Err(NameError::BadWire);
        }
        pos += len + 1;
        if pos > MAX_NAME_LEN {
            return Err(NameError::LongName);
        }
    }
    if pos > MAX_NAME_LEN {
        return Err(NameError::LongName);
    }
    Ok(pos)
}

/// Parses presentation text into lower-cased wire form appended to `out`.
pub fn parse_presentation_into(text: &str, out: &mut Vec<u8>) -> Result<(), NameError> {
    let start = out.len();
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes == b"." {
        out.push(0);
        return Ok(());
    }
    let mut label_start = out.len();
    out.push(0);
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'.' => {
                let len = out.len() - label_start - 1;
                if len == 0 {
                    return Err(NameError::EmptyLabel);
                }
                out[label_start] = len as u8;
                i += 1;
                if i == bytes.len() {
                    // Trailing dot: the root label follows.
                    out.push(0);
                    return finish(out, start);
                }
                label_start = out.len();
                out.push(0);
                continue;
            }
            b'\\' => {
                let next = *bytes.get(i + 1).ok_or(NameError::BadEscape)?;
                if next.is_ascii_digit() {
                    let digits = bytes.get(i + 1..i + 4).ok_or(NameError::BadEscape)?;
                    if !digits.iter().all(u8::is_ascii_digit) {
                        return Err(NameError::BadEscape);
                    }
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
                    if value > 255 {
                        return Err(NameError::BadEscape);
                    }
                    out.push((value as u8).to_ascii_lowercase());
                    i += 4;
                } else {
                    out.push(next.to_ascii_lowercase());
                    i += 2;
                }
            }
            _ => {
                out.push(byte.to_ascii_lowercase());
                i += 1;
            }
        }
        if out.len() - label_start - 1 > MAX_LABEL_LEN {
            return Err(NameError::LongLabel);
        }
    }
    let len = out.len() - label_start - 1;
    if len == 0 {
        return Err(NameError::EmptyLabel);
    }
    out[label_start] = len as u8;
    out.push(0);
    finish(out, start)
}

fn finish(out: &[u8], start: usize) -> Result<(), NameError> {
    if out.len() - start > MAX_NAME_LEN {
        return Err(NameError::LongName);
    }
    Ok(())
}

/// Renders an uncompressed wire name in presentation format with RFC 1035
/// escapes. Invalid wire stops rendering where it breaks.
pub fn write_presentation(wire: &[u8], out: &mut String, trailing_dot: bool) {
    let mut pos = 0;
    let mut first = true;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let Some(label) = wire.get(pos + 1..pos + 1 + len as usize) else {
            break;
        };
        if !first {
            out.push('.');
        }
        first = false;
        write_label(label, out);
        pos += len as usize + 1;
    }
    // The root is `.` in both styles.
    if first || trailing_dot {
        out.push('.');
    }
}

/// Writes one label, escaping dots, backslashes, quotes and non-printables.
pub fn write_label(label: &[u8], out: &mut String) {
    for &byte in label {
        match byte {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x21..=0x7e => out.push(byte as char),
            _ => {
                out.push('\\');
                out.push(char::from(b'0' + byte / 100));
                out.push(char::from(b'0' + (byte / 10) % 10));
                out.push(char::from(b'0' + byte % 10));
            }
        }
    }
}

/// Iterator over the labels of a [`Name`], leftmost first.
pub struct Labels<'a> {
    wire: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = self.wire.get(1..1 + len)?;
        self.wire = &self.wire[1 + len..];
        Some(label)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fqdn())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({})", self.to_fqdn())
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(text: &str) -> Result<Self, NameError> {
        Name::from_presentation(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_lowercases() {
        let name = Name::from_presentation("WWW.Example.COM.").unwrap();
        assert_eq!(name.as_wire(), b"\x03www\x07example\x03com\x00");
        assert_eq!(name.to_dotless(), "www.example.com");
        assert_eq!(name.to_fqdn(), "www.example.com.");
        assert_eq!(Name::from_presentation("www.example.com").unwrap(), name);
    }

    #[test]
    fn root_and_errors() {
        assert!(Name::from_presentation(".").unwrap().is_root());
        assert_eq!(Name::root().to_dotless(), ".");
        assert_eq!(Name::from_presentation(""), Err(NameError::Empty));
        assert_eq!(Name::from_presentation("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(
            Name::from_presentation(&"a".repeat(64)),
            Err(NameError::LongLabel)
        );
        let long = vec!["abcdefghi"; 30].join(".");
        assert_eq!(Name::from_presentation(&long), Err(NameError::LongName));
        assert_eq!(Name::from_presentation("a\\"), Err(NameError::BadEscape));
        assert_eq!(Name::from_presentation("a\\999"), Err(NameError::BadEscape));
    }

    #[test]
    fn escapes_round_trip() {
        let name = Name::from_presentation("a\\.b.c\\032d.example").unwrap();
        assert_eq!(name.label_count(), 3);
        assert_eq!(name.to_dotless(), "a\\.b.c\\032d.example");
    }

    #[test]
    fn subdomain_checks_label_boundaries() {
        let zone = Name::from_presentation("example.com").unwrap();
        assert!(
            Name::from_presentation("www.example.com")
                .unwrap()
                .is_subdomain_of(&zone)
        );
        assert!(zone.is_subdomain_of(&zone));
        assert!(
            !Name::from_presentation("badexample.com")
                .unwrap()
                .is_subdomain_of(&zone)
        );
        assert!(zone.is_subdomain_of(&Name::root()));
    }

    #[test]
    fn reversed_round_trip() {
        let name = Name::from_presentation("www.example.com").unwrap();
        let rev = name.reversed();
        assert_eq!(rev, b"\x03com\x07example\x03www\x00");
        let (back, used) = Name::from_reversed_prefix(&rev).unwrap();
        assert_eq!(back, name);
        assert_eq!(used, rev.len());
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9-]{1,12}"
    }

    fn name_strategy() -> impl Strategy<Value = Name> {
        proptest::collection::vec(label(), 0..6).prop_map(|labels| {
            if labels.is_empty() {
                Name::root()
            } else {
                Name::from_presentation(&labels.join(".")).unwrap()
            }
        })
    }

    proptest! {
        /// The reversed-label prefix of a name selects exactly its subdomains.
        #[test]
        fn reversed_prefix_selects_subtree(a in name_strategy(), b in name_strategy()) {
            let prefix = {
                let mut key = a.reversed();
                key.pop();
                key
            };
            let key_b = b.reversed();
            prop_assert_eq!(key_b.starts_with(&prefix), b.is_subdomain_of(&a));
        }

        #[test]
        fn presentation_round_trip(name in name_strategy()) {
            prop_assert_eq!(Name::from_presentation(&name.to_fqdn()).unwrap(), name.clone());
            let (back, _) = Name::from_reversed_prefix(&name.reversed()).unwrap();
            prop_assert_eq!(back, name);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = Name::from_presentation(&text);
        }
    }
}
