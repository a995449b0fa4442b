//! The little of a DNS message the statistics read: header id, rcode and
//! the first question, read the way dnstap-receiver reads them (the raw
//! labels joined with dots, no escaping; a question too short for its type
//! has type 0).
//!
//! Why not `dnsrecall_core::decode::peek_question`: it parses with
//! `domain` (following compression pointers, rejecting a question that is
//! cut short) and allocates a `Name` per message, where dnstap-receiver,
//! whose answers `/counters` and `/tables` reproduce, joins whatever labels
//! are there and still counts a cut question; it also does not give the
//! DNS id the latency pairing needs. This reader writes the name into a
//! buffer the caller reuses, so a message costs no allocation. Type names
//! are core's ([`dnsrecall_core::Rtype`]).

/// DNS header length.
pub const HEADER_LEN: usize = 12;

/// Longest name read (longer ones are cut; a DNS name has at most 255
/// octets on the wire).
const MAX_NAME_BYTES: usize = 1024;

/// The header fields the statistics read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// Header rcode (4 bits).
    pub rcode: u8,
    /// Whether the header announces a question (then the name buffer
    /// holds its name).
    pub has_question: bool,
    pub qtype: u16,
}

/// Reads the header and first question; `None` when shorter than a header.
///
/// The question name goes into `name`, dotted with a trailing dot (`"."`
/// for the root), lower-cased if asked; labels are read as bytes (see
/// [`name_text`] for text).
pub fn peek(message: &[u8], lowercase: bool, name: &mut Vec<u8>) -> Option<Header> {
    let header = message.get(..HEADER_LEN)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let rcode = header[3] & 0x0f;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    name.clear();
    if qdcount == 0 {
        return Some(Header {
            id,
            rcode,
            has_question: false,
            qtype: 0,
        });
    }
    let mut rest = &message[HEADER_LEN..];
    while let Some(&length) = rest.first() {
        if length == 0 {
            break;
        }
        let length = usize::from(length);
        let label = rest.get(1..1 + length).unwrap_or(&rest[1..]);
        if !name.is_empty() {
            name.push(b'.');
        }
        name.extend_from_slice(label);
        rest = rest.get(1 + length..).unwrap_or_default();
        if name.len() > MAX_NAME_BYTES {
            break;
        }
    }
    name.push(b'.');
    let qtype = match rest.get(1..5) {
        Some(bytes) if rest.len() > 4 => u16::from_be_bytes([bytes[0], bytes[1]]),
        _ => 0,
    };
    if lowercase {
        name.make_ascii_lowercase();
    }
    Some(Header {
        id,
        rcode,
        has_question: true,
        qtype,
    })
}

/// The name as text: invalid UTF-8 is dropped, like Python's
/// `errors="ignore"` (borrowed when valid, the usual case).
pub fn name_text(name: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(name) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => std::borrow::Cow::Owned(String::from_utf8_lossy(name).replace('\u{fffd}', "")),
    }
}

/// dnstap-receiver's rcode names (lower-cased for counter names).
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        _ => "-",
    }
}

/// A query type's mnemonic (`A`, `HTTPS`, `TYPE65280`).
pub fn qtype_name(qtype: u16) -> String {
    if qtype == 0 {
        return "NONE".to_string();
    }
    dnsrecall_core::Rtype(qtype).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_and_question() {
        // id 0x1234, QR, rcode 3, one question www.Example.com AAAA.
        let mut message = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["www", "Example", "com"] {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.extend_from_slice(&[0, 0, 28, 0, 1]);
        let mut name = Vec::new();
        let header = peek(&message, true, &mut name).unwrap();
        assert_eq!(header.id, 0x1234);
        assert_eq!(header.rcode, 3);
        assert!(header.has_question);
        assert_eq!(name_text(&name), "www.example.com.");
        assert_eq!(header.qtype, 28);
        assert_eq!(qtype_name(header.qtype), "AAAA");
        // Too short for the type: type 0, like dnstap-receiver.
        let cut = &message[..message.len() - 1];
        assert_eq!(peek(cut, true, &mut name).unwrap().qtype, 0);
        assert!(peek(&message[..11], true, &mut name).is_none());
        // Invalid UTF-8 is dropped, the rest kept.
        assert_eq!(name_text(b"a\xffb."), "ab.");
        assert_eq!(rcode_name(3), "NXDOMAIN");
    }
}
