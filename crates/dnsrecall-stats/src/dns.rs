//! The little of a DNS message the statistics read: header id, rcode and
//! the first question, read the way dnstap-receiver reads them (the raw
//! labels joined with dots, no escaping; a question too short for its type
//! has type 0).

/// DNS header length.
pub const HEADER_LEN: usize = 12;

/// What the statistics read from one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peek {
    pub id: u16,
    /// Header rcode (4 bits).
    pub rcode: u8,
    /// First question name, dotted with a trailing dot (`"."` for the root),
    /// when the header announces a question; labels are read as bytes
    /// (invalid UTF-8 is dropped, like Python's `errors="ignore"`).
    pub qname: Option<String>,
    pub qtype: u16,
}

/// Reads the header and first question; `None` when shorter than a header.
pub fn peek(message: &[u8], lowercase: bool) -> Option<Peek> {
    let header = message.get(..HEADER_LEN)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let rcode = header[3] & 0x0f;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if qdcount == 0 {
        return Some(Peek {
            id,
            rcode,
            qname: None,
            qtype: 0,
        });
    }
    let mut rest = &message[HEADER_LEN..];
    let mut name: Vec<u8> = Vec::with_capacity(64);
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
        if name.len() > 1024 {
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
    let qname = match String::from_utf8(name) {
        Ok(text) => text,
        Err(error) => {
            let bytes = error.into_bytes();
            String::from_utf8_lossy(&bytes).replace('\u{fffd}', "")
        }
    };
    Some(Peek {
        id,
        rcode,
        qname: Some(qname),
        qtype,
    })
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
        let peek = peek(&message, true).unwrap();
        assert_eq!(peek.id, 0x1234);
        assert_eq!(peek.rcode, 3);
        assert_eq!(peek.qname.as_deref(), Some("www.example.com."));
        assert_eq!(peek.qtype, 28);
        assert_eq!(qtype_name(peek.qtype), "AAAA");
        // Too short for the type: type 0, like dnstap-receiver.
        let cut = &message[..message.len() - 1];
        assert_eq!(super::peek(cut, true).unwrap().qtype, 0);
        assert!(super::peek(&message[..11], true).is_none());
        assert_eq!(rcode_name(3), "NXDOMAIN");
    }
}
