//! Link layers: from a captured frame to the IP packet inside.

/// Link-layer header types (`LINKTYPE_*` from tcpdump.org/linktypes.html)
/// the decoder understands.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's order.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// PPP with a 2-byte protocol (optionally after `ff 03`).
    pub const PPP: u32 = 9;
    /// `DLT_RAW` as defined on most BSDs.
    pub const DLT_RAW_12: u32 = 12;
    /// `DLT_RAW` as defined on OpenBSD.
    pub const DLT_RAW_14: u32 = 14;
    /// PPP in HDLC-like framing.
    pub const PPP_HDLC: u32 = 50;
    /// PPP with the direction byte of some BSDs... as PPP_HDLC.
    pub const PPP_ETHER: u32 = 51;
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network order.
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;

/// At most this many VLAN tags or MPLS labels are peeled off, so a frame of
/// nothing but tags cannot make us loop long.
const MAX_TAGS: usize = 8;

/// Why a frame did not yield an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkDrop {
    Unsupported,
    Malformed,
    NotIp,
}

/// The IP packet inside a frame. Its version is taken from the packet's
/// first nibble by the IP layer.
pub(crate) fn ip_payload(linktype: u32, frame: &[u8]) -> Result<&[u8], LinkDrop> {
    match linktype {
        linktype::ETHERNET => ethernet(frame),
        linktype::RAW
        | linktype::DLT_RAW_12
        | linktype::DLT_RAW_14
        | linktype::IPV4
        | linktype::IPV6 => Ok(frame),
        linktype::LINUX_SLL => {
            // packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
            let proto = be16(frame, 14).ok_or(LinkDrop::Malformed)?;
            let arphrd = be16(frame, 2).ok_or(LinkDrop::Malformed)?;
            // ARPHRD_NETLINK frames carry netlink messages, not ethertypes.
            if arphrd == 824 {
                return Err(LinkDrop::NotIp);
            }
            ethertype(proto, &frame[16..])
        }
        linktype::LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) ARPHRD(2) pkttype(1) addrlen(1) addr(8)
            let proto = be16(frame, 0).ok_or(LinkDrop::Malformed)?;
            if frame.len() < 20 {
                return Err(LinkDrop::Malformed);
            }
            if be16(frame, 8) == Some(824) {
                return Err(LinkDrop::NotIp);
            }
            ethertype(proto, &frame[20..])
        }
        linktype::NULL => {
            let family = frame.get(..4).ok_or(LinkDrop::Malformed)?;
            // Host byte order of the machine that captured: a small value
            // has its non-zero byte first when little-endian.
            let family = if family[0] != 0 {
                u32::from_le_bytes([family[0], family[1], family[2], family[3]])
            } else {
                u32::from_be_bytes([family[0], family[1], family[2], family[3]])
            };
            bsd_family(family, &frame[4..])
        }
        linktype::LOOP => {
            let family = frame.get(..4).ok_or(LinkDrop::Malformed)?;
            let family = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
            bsd_family(family, &frame[4..])
        }
        linktype::PPP | linktype::PPP_HDLC | linktype::PPP_ETHER => {
            let frame = match frame {
                [0xff, 0x03, rest @ ..] => rest,
                _ => frame,
            };
            ppp(frame)
        }
        _ => Err(LinkDrop::Unsupported),
    }
}

fn bsd_family(family: u32, payload: &[u8]) -> Result<&[u8], LinkDrop> {
    match family {
        // AF_INET everywhere; AF_INET6 on Linux (10), NetBSD/OpenBSD (24),
        // FreeBSD (28), Darwin (30).
        2 | 10 | 24 | 28 | 30 => Ok(payload),
        _ => Err(LinkDrop::NotIp),
    }
}

fn ppp(frame: &[u8]) -> Result<&[u8], LinkDrop> {
    // The protocol field may be compressed to one byte (odd first byte).
    let (proto, rest) = match frame {
        [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return Err(LinkDrop::Malformed),
    };
    match proto {
        0x0021 | 0x0057 => Ok(rest),
        _ => Err(LinkDrop::NotIp),
    }
}

fn ethernet(frame: &[u8]) -> Result<&[u8], LinkDrop> {
    let proto = be16(frame, 12).ok_or(LinkDrop::Malformed)?;
    ethertype(proto, &frame[14..])
}

/// Follow an ethertype through VLAN tags, MPLS labels and PPPoE.
fn ethertype(mut proto: u16, mut data: &[u8]) -> Result<&[u8], LinkDrop> {
    for _ in 0..MAX_TAGS {
        match proto {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(data),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                proto = be16(data, 2).ok_or(LinkDrop::Malformed)?;
                data = &data[4..];
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                let mut rest = data;
                for _ in 0..MAX_TAGS {
                    let label = rest.get(..4).ok_or(LinkDrop::Malformed)?;
                    rest = &rest[4..];
                    if label[2] & 1 == 1 {
                        // Bottom of stack: guess the payload by its version.
                        return match rest.first().map(|b| b >> 4) {
                            Some(4) | Some(6) => Ok(rest),
                            _ => Err(LinkDrop::NotIp),
                        };
                    }
                }
                return Err(LinkDrop::Malformed);
            }
            ETHERTYPE_PPPOE_SESSION => {
                // ver/type(1) code(1) session(2) length(2), then PPP.
                let rest = data.get(6..).ok_or(LinkDrop::Malformed)?;
                return ppp(rest);
            }
            _ => return Err(LinkDrop::NotIp),
        }
    }
    Err(LinkDrop::Malformed)
}

#[inline]
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_with_qinq() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00, 0x45]);
        assert_eq!(ip_payload(linktype::ETHERNET, &f), Ok(&[0x45u8][..]));
        f.truncate(15);
        assert_eq!(ip_payload(linktype::ETHERNET, &f), Err(LinkDrop::Malformed));
    }

    #[test]
    fn loopback_families() {
        assert_eq!(
            ip_payload(linktype::NULL, &[2, 0, 0, 0, 0x45]),
            Ok(&[0x45u8][..])
        );
        assert_eq!(
            ip_payload(linktype::NULL, &[0, 0, 0, 30, 0x60]),
            Ok(&[0x60u8][..])
        );
        assert_eq!(
            ip_payload(linktype::LOOP, &[0, 0, 0, 24, 0x60]),
            Ok(&[0x60u8][..])
        );
        assert_eq!(
            ip_payload(linktype::NULL, &[7, 0, 0, 0, 0x60]),
            Err(LinkDrop::NotIp)
        );
        assert_eq!(ip_payload(linktype::NULL, &[2]), Err(LinkDrop::Malformed));
    }

    #[test]
    fn sll_and_ppp() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x86, 0xdd, 0x60]);
        assert_eq!(ip_payload(linktype::LINUX_SLL, &sll), Ok(&[0x60u8][..]));
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.push(0x45);
        assert_eq!(ip_payload(linktype::LINUX_SLL2, &sll2), Ok(&[0x45u8][..]));
        assert_eq!(
            ip_payload(linktype::PPP, &[0xff, 0x03, 0x00, 0x21, 0x45]),
            Ok(&[0x45u8][..])
        );
        assert_eq!(ip_payload(linktype::PPP, &[0x21, 0x45]), Ok(&[0x45u8][..]));
        assert_eq!(ip_payload(999, &[0x45]), Err(LinkDrop::Unsupported));
    }
}
