//! The only DNS knowledge in this crate: a peek at the 12-byte header.

/// Length of the fixed DNS header.
pub(crate) const HEADER_LEN: usize = 12;

/// The QR bit: `Some(true)` for a response, `Some(false)` for a query,
/// `None` if `message` is shorter than a DNS header.
#[inline]
pub fn is_response(message: &[u8]) -> Option<bool> {
    if message.len() < HEADER_LEN {
        return None;
    }
    Some(message[2] & 0x80 != 0)
}

/// The message ID, `None` if `message` is shorter than a DNS header.
#[inline]
pub fn dns_id(message: &[u8]) -> Option<u16> {
    if message.len() < HEADER_LEN {
        return None;
    }
    Some(u16::from_be_bytes([message[0], message[1]]))
}

/// Whether `message` (at least a header; possibly only a prefix of the
/// message) looks like the start of a real DNS message of `message_len`
/// bytes. Used to resynchronise on a TCP stream picked up mid-way, where a
/// wrong guess would turn the rest of the stream into garbage, so it is
/// strict: exactly one question (what queries and their responses carry),
/// a known opcode, the Z bit clear, counts that fit the length, and a
/// well-formed uncompressed question name as far as the bytes go.
pub(crate) fn plausible_header(message: &[u8], message_len: usize) -> bool {
    if message.len() < HEADER_LEN || message_len < HEADER_LEN + 5 {
        return false;
    }
    let opcode = (message[2] >> 3) & 0x0f;
    // QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO.
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6) || message[3] & 0x40 != 0 {
        return false;
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([message[i], message[i + 1]]));
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    // The question takes at least 5 bytes (root name, type, class) and
    // every record at least 11.
    if qd != 1 || 5 + (an + ns + ar) * 11 > message_len - HEADER_LEN {
        return false;
    }
    let end = message_len.min(message.len());
    let mut pos = HEADER_LEN;
    let mut name_len = 0;
    while pos < end {
        let label = usize::from(message[pos]);
        if label == 0 {
            return pos + 5 <= message_len;
        }
        name_len += label + 1;
        if label > 63 || name_len > 255 {
            return false;
        }
        pos += label + 1;
    }
    // Out of captured bytes mid-name: undecided, accept. Past the end of
    // a complete message: no terminator, reject.
    message.len() < message_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_bit() {
        assert_eq!(is_response(&[0; 11]), None);
        assert_eq!(is_response(&[0; 12]), Some(false));
        let mut h = [0u8; 12];
        h[2] = 0x81;
        assert_eq!(is_response(&h), Some(true));
        h[0] = 0x12;
        h[1] = 0x34;
        assert_eq!(dns_id(&h), Some(0x1234));
    }

    #[test]
    fn plausibility() {
        let mut h = vec![0u8; 12];
        h[5] = 1; // QD=1
        h.extend_from_slice(b"\x03www\x00\x00\x01\x00\x01");
        assert!(plausible_header(&h, h.len()));
        assert!(plausible_header(&h[..14], 400), "prefix only");
        assert!(!plausible_header(&h, 12));
        h[12] = 0xc0; // compression pointer as first label
        assert!(!plausible_header(&h, h.len()));
        h[12] = 3;
        h[2] = 0x78; // opcode 15
        assert!(!plausible_header(&h, h.len()));
        h[2] = 0;
        h[5] = 0; // QD=0
        assert!(!plausible_header(&h, h.len()));
    }
}
