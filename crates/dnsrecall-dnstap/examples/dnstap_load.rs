//! A paced dnstap load for soak tests and benchmarks: connects to a dnstap
//! TCP receiver on loopback (bidirectional Frame Streams), sends
//! CLIENT_RESPONSE messages whose names are all different (`<n>.soak.test.`,
//! one A record each) at a fixed rate for a fixed time, and prints what it
//! sent.
//!
//! usage: dnstap_load ADDRESS RATE_PER_SEC SECONDS [FIRST_NUMBER]
//!
//! Only loopback addresses are accepted: this is a load generator.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use dnsrecall_dnstap::DNSTAP_CONTENT_TYPE;
use dnsrecall_dnstap::framestream::{Mode, SenderSession};
use dnsrecall_dnstap::proto::{Dnstap, Message, SocketFamily, SocketProtocol, dnstap, message};
use prost::Message as _;

/// Messages sent per pacing step (10 ms at 100k/s).
const CHUNK: u64 = 1000;

fn dns_response(number: u64, id: u16) -> Bytes {
    let label = number.to_string();
    let mut out = BytesMut::with_capacity(64);
    out.put_u16(id);
    out.put_u16(0x8180); // response, RD, RA, NOERROR
    out.put_u16(1); // QDCOUNT
    out.put_u16(1); // ANCOUNT
    out.put_u32(0); // NSCOUNT, ARCOUNT
    out.put_u8(label.len() as u8);
    out.put_slice(label.as_bytes());
    for part in ["soak", "test"] {
        out.put_u8(part.len() as u8);
        out.put_slice(part.as_bytes());
    }
    out.put_u8(0);
    out.put_u16(1); // A
    out.put_u16(1); // IN
    out.put_u16(0xc00c); // the question's name
    out.put_u16(1);
    out.put_u16(1);
    out.put_u32(300);
    out.put_u16(4);
    out.put_u32(0x0a00_0000 | (number as u32 & 0x00ff_ffff));
    out.freeze()
}

fn frame(number: u64, now: u64) -> Bytes {
    let tap = Dnstap {
        identity: Some(Bytes::from_static(b"soak")),
        version: None,
        extra: None,
        r#type: dnstap::Type::Message as i32,
        message: Some(Message {
            r#type: message::Type::ClientResponse as i32,
            socket_family: Some(SocketFamily::Inet as i32),
            socket_protocol: Some(SocketProtocol::Udp as i32),
            query_address: Some(Bytes::copy_from_slice(&[
                127,
                0,
                (number >> 8) as u8,
                number as u8,
            ])),
            response_address: Some(Bytes::from_static(&[127, 0, 0, 53])),
            query_port: Some(40000 + (number % 20000) as u32),
            response_port: Some(53),
            query_time_sec: Some(now),
            response_time_sec: Some(now),
            response_message: Some(dns_response(number, number as u16)),
            ..Default::default()
        }),
    };
    Bytes::from(tap.encode_to_vec())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: dnstap_load ADDRESS RATE_PER_SEC SECONDS [FIRST_NUMBER]".into());
    }
    let address: SocketAddr = args[1].parse()?;
    if !address.ip().is_loopback() {
        return Err(format!("{address} is not a loopback address").into());
    }
    let rate: u64 = args[2].parse()?;
    let seconds: u64 = args[3].parse()?;
    let mut number: u64 = args.get(4).map(|n| n.parse()).transpose()?.unwrap_or(0);
    if rate == 0 {
        return Err("the rate must be at least 1 message a second".into());
    }
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let mut session =
        SenderSession::start(stream, DNSTAP_CONTENT_TYPE, Mode::Bidirectional).await?;
    let started = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    while sent < total {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        for _ in 0..CHUNK.min(total - sent) {
            session.send(frame(number, now)).await?;
            number += 1;
            sent += 1;
        }
        session.flush().await?;
        // Pace: where the schedule says we should be after `sent` messages.
        let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    session.finish().await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} messages in {elapsed:.1} s ({:.0}/s), next number {number}",
        sent as f64 / elapsed
    );
    Ok(())
}
