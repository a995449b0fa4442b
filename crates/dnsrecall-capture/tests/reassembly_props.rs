//! Property tests: whatever the segmentation, order, duplication and
//! overlap, TCP reassembly yields the original message sequence and IP
//! defragmentation the original datagram. Packets go through the whole
//! decoder as raw IP frames.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use dnsrecall_capture::{CaptureConfig, Decoder, DnsPayload, Metrics, Transport, linktype};
use proptest::prelude::*;

const CLIENT: [u8; 4] = [192, 0, 2, 1];
const SERVER: [u8; 4] = [192, 0, 2, 53];

/// A DNS-looking message: plausible header (response, QD=1), a question,
/// then random bytes.
fn message(id: u16, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 12];
    m[0..2].copy_from_slice(&id.to_be_bytes());
    m[2] = 0x81;
    m[5] = 1;
    m.extend_from_slice(b"\x07example\x04test\x00\x00\x01\x00\x01");
    m.extend_from_slice(body);
    m
}

fn tcp_packet(seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ipv4(SERVER, CLIENT, 64).tcp(53, 40_000, seq, 65_535);
    let builder = if syn {
        builder.syn().ack(1)
    } else {
        builder.ack(1)
    };
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).expect("build tcp packet");
    out
}

fn decode_all(frames: &[Vec<u8>]) -> (Vec<DnsPayload>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let mut decoder = Decoder::new(&CaptureConfig::default(), metrics.clone());
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        decoder.decode(1_700_000_000, i as u32, linktype::RAW, f, &mut |p| {
            out.push(p)
        });
    }
    decoder.finish(&mut |p| out.push(p));
    (out, metrics)
}

/// Messages, the cut points that segment their framed stream, extra
/// (duplicate/overlapping) ranges, a shuffle seed and the ISN.
/// Messages, cut points, extra ranges, shuffle seed, ISN.
type TcpCase = (Vec<Vec<u8>>, Vec<usize>, Vec<(usize, usize)>, u64, u32);
/// Message, cut points, extra ranges, shuffle seed.
type FragCase = (Vec<u8>, Vec<usize>, Vec<(usize, usize)>, u64);

fn tcp_case() -> impl Strategy<Value = TcpCase> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 1..6),
        prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            0..8,
        ),
        any::<u64>(),
        prop_oneof![any::<u32>(), Just(u32::MAX - 3), Just(u32::MAX)],
    )
        .prop_map(|(bodies, cuts, extras, seed, isn)| {
            let msgs: Vec<Vec<u8>> = bodies
                .iter()
                .enumerate()
                .map(|(i, b)| message(i as u16, b))
                .collect();
            let total: usize = msgs.iter().map(|m| m.len() + 2).sum();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(total)).collect();
            cuts.push(0);
            cuts.push(total);
            cuts.sort_unstable();
            cuts.dedup();
            let extras = extras
                .iter()
                .map(|(a, b)| {
                    let (a, b) = (a.index(total), b.index(total));
                    (a.min(b), a.max(b) + 1)
                })
                .collect();
            (msgs, cuts, extras, seed, isn)
        })
}

/// Deterministic Fisher-Yates from a seed (proptest shrinks the seed).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (seed >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}

fn tcp_segments(
    msgs: &[Vec<u8>],
    cuts: &[usize],
    extras: &[(usize, usize)],
    seed: u64,
) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut stream = Vec::new();
    for m in msgs {
        stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
        stream.extend_from_slice(m);
    }
    let mut ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    ranges.extend(extras.iter().map(|&(a, b)| (a, b.min(stream.len()))));
    shuffle(&mut ranges, seed);
    (stream, ranges)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tcp_any_segmentation_order_duplication(case in tcp_case()) {
        let (msgs, cuts, extras, seed, isn) = case;
        let (stream, ranges) = tcp_segments(&msgs, &cuts, &extras, seed);
        let mut frames = vec![tcp_packet(isn, true, &[])];
        for (a, b) in ranges {
            frames.push(tcp_packet(isn.wrapping_add(1).wrapping_add(a as u32), false, &stream[a..b]));
        }
        let (out, metrics) = decode_all(&frames);
        let got: Vec<Vec<u8>> = out.iter().map(|p| p.message.to_vec()).collect();
        prop_assert_eq!(got, msgs);
        prop_assert!(out.iter().all(|p| p.transport == Transport::Tcp && p.sport == 53));
        prop_assert_eq!(metrics.get("tcp_bytes_dropped_gap"), Some(0));
    }

    #[test]
    fn tcp_without_syn_resynchronises(case in tcp_case()) {
        let (msgs, cuts, extras, seed, isn) = case;
        let (stream, mut ranges) = tcp_segments(&msgs, &cuts, &extras, seed);
        // Picked up mid-connection: the first segment seen starts at a
        // message boundary, the others come in any order.
        let first = ranges.iter().position(|r| r.0 == 0).expect("a segment at 0");
        let head = ranges.remove(first);
        ranges.insert(0, head);
        let frames: Vec<Vec<u8>> = ranges
            .iter()
            .map(|&(a, b)| tcp_packet(isn.wrapping_add(a as u32), false, &stream[a..b]))
            .collect();
        let (out, metrics) = decode_all(&frames);
        let got: Vec<Vec<u8>> = out.iter().map(|p| p.message.to_vec()).collect();
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(metrics.get("tcp_resyncs"), Some(1));
    }
}

//------------ IP fragments --------------------------------------------------

fn udp_datagram(message: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + message.len());
    d.extend_from_slice(&53u16.to_be_bytes());
    d.extend_from_slice(&40_000u16.to_be_bytes());
    d.extend_from_slice(&((8 + message.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(message);
    d
}

fn ipv4_fragment(id: u16, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&SERVER);
    p[16..20].copy_from_slice(&CLIENT);
    p.extend_from_slice(data);
    p
}

fn ipv6_fragment(id: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    p[6] = 44; // fragment header follows
    p[7] = 64;
    p[8..24].copy_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 53).octets());
    p[24..40].copy_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    p[40] = 17;
    let field = offset as u16 | u16::from(more);
    p[42..44].copy_from_slice(&field.to_be_bytes());
    p[44..48].copy_from_slice(&id.to_be_bytes());
    p.extend_from_slice(data);
    p
}

/// A message, 8-byte-aligned cut points, extra aligned ranges, a seed.
fn frag_case() -> impl Strategy<Value = FragCase> {
    (
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(any::<prop::sample::Index>(), 1..12),
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            0..6,
        ),
        any::<u64>(),
    )
        .prop_map(|(body, cuts, extras, seed)| {
            let msg = message(0x4242, &body);
            let total = 8 + msg.len();
            let blocks = total.div_ceil(8);
            let mut cuts: Vec<usize> = cuts
                .iter()
                .map(|c| (c.index(blocks) * 8).min(total))
                .collect();
            cuts.push(0);
            cuts.push(total);
            cuts.sort_unstable();
            cuts.dedup();
            let extras = extras
                .iter()
                .map(|(a, b)| {
                    let (a, b) = (a.index(blocks) * 8, b.index(blocks) * 8);
                    (a.min(b), (a.max(b) + 8).min(total))
                })
                .collect();
            (msg, cuts, extras, seed)
        })
}

fn fragments(
    total: usize,
    cuts: &[usize],
    extras: &[(usize, usize)],
    seed: u64,
) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    // An extra range ending at the datagram's end carries MF=0 like the
    // real last fragment; any other is a middle piece.
    // A whole-datagram copy would be an unfragmented packet: left out.
    ranges.extend(
        extras
            .iter()
            .copied()
            .filter(|&(a, b)| a < b && b <= total && (a, b) != (0, total)),
    );
    shuffle(&mut ranges, seed);
    ranges
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ipv4_any_fragmentation(case in frag_case()) {
        let (msg, cuts, extras, seed) = case;
        let datagram = udp_datagram(&msg);
        let ranges = fragments(datagram.len(), &cuts, &extras, seed);
        let frames: Vec<Vec<u8>> = ranges
            .iter()
            .map(|&(a, b)| ipv4_fragment(7, a, b < datagram.len(), &datagram[a..b]))
            .collect();
        let (out, _) = decode_all(&frames);
        check_defragmented(&out, &msg, IpAddr::V4(Ipv4Addr::from(SERVER)), cuts.len() > 2, extras.is_empty())?;
    }

    #[test]
    fn ipv6_any_fragmentation(case in frag_case()) {
        let (msg, cuts, extras, seed) = case;
        let datagram = udp_datagram(&msg);
        let ranges = fragments(datagram.len(), &cuts, &extras, seed);
        let frames: Vec<Vec<u8>> = ranges
            .iter()
            .map(|&(a, b)| ipv6_fragment(0xdead_beef, a, b < datagram.len(), &datagram[a..b]))
            .collect();
        let (out, _) = decode_all(&frames);
        let src = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 53));
        check_defragmented(&out, &msg, src, cuts.len() > 2, extras.is_empty())?;
    }
}

fn check_defragmented(
    out: &[DnsPayload],
    msg: &[u8],
    src: IpAddr,
    fragmented: bool,
    exactly_once: bool,
) -> Result<(), TestCaseError> {
    // Duplicates arriving after completion may complete the datagram a
    // second time, as they would in a host's stack; every copy is intact.
    prop_assert!(!out.is_empty());
    if exactly_once {
        prop_assert_eq!(out.len(), 1);
    }
    for p in out {
        prop_assert_eq!(&p.message[..], msg);
        prop_assert_eq!(p.src, src);
        prop_assert_eq!((p.sport, p.dport), (53, 40_000));
        if fragmented {
            prop_assert!(p.ip_defragmented);
        }
    }
    if !fragmented {
        // The whole datagram was sent unfragmented once; extra ranges may
        // still complete a second, defragmented copy of it.
        prop_assert!(out.iter().any(|p| !p.ip_defragmented));
        if exactly_once {
            prop_assert!(!out[0].ip_defragmented);
        }
    }
    Ok(())
}
