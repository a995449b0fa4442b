//! The little DNS this crate needs for message logs: the header, the first
//! question, and names in presentation format. Every read is bounds-checked;
//! anything malformed gives `None`.

use std::fmt::Write as _;

/// Header fields and first question of a DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Message ID.
    pub id: u16,
    /// RCODE (header, low 4 bits).
    pub rcode: u8,
    /// First question's name, presentation format with trailing dot.
    pub qname: Option<String>,
    /// First question's type.
    pub qtype: Option<u16>,
}

/// Reads the header and, if present and well formed, the first question.
pub fn summarize(message: &[u8]) -> Option<Summary> {
    let header = message.get(..12)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let rcode = header[3] & 0x0f;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let mut summary = Summary {
        id,
        rcode,
        qname: None,
        qtype: None,
    };
    if qdcount > 0
        && let Some((name, end)) = read_name(message, 12)
        && let Some(qtype) = message.get(end..end + 2)
    {
        summary.qtype = Some(u16::from_be_bytes([qtype[0], qtype[1]]));
        summary.qname = Some(name);
    }
    Some(summary)
}

/// Reads a possibly compressed name at `start`; returns it in presentation
/// format and the offset just after it in the message.
pub fn read_name(message: &[u8], start: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut at = start;
    let mut end = None;
    let mut wire_length = 0usize;
    // Each pointer must go backwards, so a loop is impossible; the hop cap is
    // belt and braces.
    let mut hops = 0;
    loop {
        let length = *message.get(at)? as usize;
        match length & 0xc0 {
            0x00 => {
                if length == 0 {
                    if text.is_empty() {
                        text.push('.');
                    }
                    return Some((text, end.unwrap_or(at + 1)));
                }
                wire_length += length + 1;
                if wire_length > 255 {
                    return None;
                }
                let label = message.get(at + 1..at + 1 + length)?;
                push_label(&mut text, label);
                text.push('.');
                at += 1 + length;
            }
            0xc0 => {
                let low = *message.get(at + 1)? as usize;
                let target = ((length & 0x3f) << 8) | low;
                if target >= at || hops > 127 {
                    return None;
                }
                hops += 1;
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return None,
        }
    }
}

/// A standalone wire-format name (e.g. dnstap `query_zone`) in presentation
/// format, `None` if malformed or followed by junk.
pub fn name_to_text(wire: &[u8]) -> Option<String> {
    let mut text = String::new();
    let mut at = 0;
    loop {
        let length = *wire.get(at)? as usize;
        if length == 0 {
            if at + 1 != wire.len() || wire.len() > 255 {
                return None;
            }
            if text.is_empty() {
                text.push('.');
            }
            return Some(text);
        }
        if length > 63 {
            return None;
        }
        push_label(&mut text, wire.get(at + 1..at + 1 + length)?);
        text.push('.');
        at += 1 + length;
    }
}

/// Appends a label with the escapes of the master file format (as
/// dnspython prints them).
fn push_label(text: &mut String, label: &[u8]) {
    for &byte in label {
        match byte {
            b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => {
                text.push('\\');
                text.push(byte as char);
            }
            0x21..=0x7e => text.push(byte as char),
            _ => {
                let _ = write!(text, "\\{byte:03}");
            }
        }
    }
}

/// RCODE mnemonic.
pub fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        other => other.to_string(),
    }
}

/// RR type mnemonic, `TYPEnnn` for others.
pub fn rrtype_name(rrtype: u16) -> String {
    let name = match rrtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        44 => "SSHFP",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        other => return format!("TYPE{other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert_eq!(name_to_text(b"\x00").as_deref(), Some("."));
        assert_eq!(
            name_to_text(b"\x07example\x04test\x00").as_deref(),
            Some("example.test.")
        );
        assert_eq!(name_to_text(b"\x03a.b\x00").as_deref(), Some("a\\.b."));
        assert_eq!(name_to_text(b"\x01\x07\x00").as_deref(), Some("\\007."));
        assert_eq!(name_to_text(b"\x05ab"), None);
    }

    #[test]
    fn question_with_pointer() {
        // header, qname "a.", then a second name pointing back.
        let mut msg = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        let summary = summarize(&msg).unwrap();
        assert_eq!(summary.id, 0x1234);
        assert_eq!(summary.rcode, 3);
        assert_eq!(summary.qname.as_deref(), Some("a."));
        assert_eq!(summary.qtype, Some(1));
        msg.extend_from_slice(&[0xc0, 12]);
        assert_eq!(
            read_name(&msg, msg.len() - 2),
            Some(("a.".to_string(), msg.len()))
        );
        // A pointer to itself is refused.
        let at = msg.len();
        msg.extend_from_slice(&[0xc0, at as u8]);
        assert_eq!(read_name(&msg, at), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = summarize(&bytes);
            let _ = name_to_text(&bytes);
        }
    }
}
