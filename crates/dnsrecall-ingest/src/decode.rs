//! The one step "DNS message → entries batch", shared by every message
//! input (dnstap, capture): which messages store, the sensor (identity),
//! the bailiwick (`query_zone`), the time, and the [`ResponseMeta`] the
//! pipeline's filters and bailiwick verification read.

use std::sync::Arc;

use bytes::Bytes;
use dnsrecall_core::Name;
use dnsrecall_core::decode::{
    AdditionalPolicy, DecodeError, DecodeSummary, ResponseContext, decode_response,
};
use dnsrecall_core::message::{DnsMessage, MessageType};
use dnsrecall_pipeline::{Batch, ResponseMeta};

/// What became of one message.
#[derive(Debug)]
pub enum Outcome {
    /// A response of a storing type, decoded into entries.
    Stored(DecodeSummary),
    /// A message of a type that does not store (queries, ...), or storing
    /// is off.
    NotStored,
    /// A storing type without a response message.
    NoResponse,
    /// The DNS response did not decode.
    Dns(DecodeError),
}

/// Message → entries, reusing the sensor and bailiwick of the previous
/// message when they repeat (they nearly always do).
pub struct MessageDecoder {
    /// Bit `t` set: messages of dnstap type `t` store.
    store_mask: u32,
    default_sensor: Option<Arc<str>>,
    context: ResponseContext,
    identity: Option<Bytes>,
    zone: Option<Bytes>,
    /// The last message's `query_zone` was not a wire name.
    pub bad_zone: bool,
}

/// Every response type.
pub const RESPONSE_TYPES_MASK: u32 = {
    let mut mask = 0;
    let mut index = 0;
    while index < MessageType::ALL.len() {
        let value = MessageType::ALL[index] as u32;
        if value.is_multiple_of(2) {
            mask |= 1 << value;
        }
        index += 1;
    }
    mask
};

impl MessageDecoder {
    /// A decoder storing the types of `store_mask` (0: nothing).
    pub fn new(
        store_mask: u32,
        additional: AdditionalPolicy,
        default_sensor: Option<Arc<str>>,
    ) -> Self {
        MessageDecoder {
            store_mask,
            context: ResponseContext {
                time: 0,
                sensor_id: default_sensor.clone(),
                bailiwick: None,
                additional,
            },
            default_sensor,
            identity: None,
            zone: None,
            bad_zone: false,
        }
    }

    /// Decodes one message; a stored response appends its entries to `out`
    /// and closes them with its [`ResponseMeta`] (addresses, query name,
    /// `query_zone`, and whether the server is an upstream authority whose
    /// address can vouch for a bailiwick: only for `RESOLVER_RESPONSE`).
    pub fn decode(&mut self, message: &DnsMessage, out: &mut Batch) -> Outcome {
        let value = message.kind.value();
        let stores = (0..32).contains(&value) && self.store_mask & (1 << value) != 0;
        if !stores {
            return Outcome::NotStored;
        }
        let Some(response) = &message.response_message else {
            return Outcome::NoResponse;
        };
        if message.identity != self.identity {
            self.identity = message.identity.clone();
            self.context.sensor_id = match &message.identity {
                Some(identity) if !identity.is_empty() => {
                    Some(Arc::from(String::from_utf8_lossy(identity).as_ref()))
                }
                _ => self.default_sensor.clone(),
            };
        }
        if message.query_zone != self.zone {
            self.zone = message.query_zone.clone();
            let parsed = message.query_zone.as_deref().map(Name::from_wire);
            self.bad_zone = matches!(parsed, Some(Err(_)));
            self.context.bailiwick = parsed.and_then(Result::ok);
        }
        self.context.time = message
            .response_time
            .or(message.query_time)
            .map_or_else(now, |t| t.secs);
        match decode_response(response, &self.context, &mut out.entries) {
            Ok(mut summary) => {
                out.close_response(ResponseMeta {
                    server: message.response_address,
                    query_zone: self.context.bailiwick.clone(),
                    qname: summary.qname.take(),
                    client: message.query_address,
                    sensor_id: self.context.sensor_id.clone(),
                    time: self.context.time,
                    // Only a resolver's upstream answers come from servers
                    // whose delegations say what they may vouch for; a
                    // resolver answering clients, a forwarder or the
                    // authority logging itself vouch for nothing.
                    recursive: message.kind.known() != Some(MessageType::ResolverResponse),
                });
                Outcome::Stored(summary)
            }
            Err(error) => Outcome::Dns(error),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_core::message::{MessageKind, Origin, Timestamp};

    fn message(kind: MessageType, zone: Option<&'static [u8]>) -> DnsMessage {
        // id 1, QR AA, one question a.test A, one answer a.test A 192.0.2.1.
        let mut wire = vec![0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        wire.extend_from_slice(b"\x01a\x04test\x00\x00\x01\x00\x01");
        wire.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        DnsMessage {
            kind: MessageKind::Known(kind),
            identity: Some(Bytes::from_static(b"ns1")),
            version: None,
            family: None,
            transport: None,
            query_address: Some("192.0.2.9".parse().unwrap()),
            query_port: None,
            response_address: Some("192.0.2.53".parse().unwrap()),
            response_port: None,
            query_time: None,
            response_time: Some(Timestamp::new(1_700_000_000, 0)),
            query_zone: zone.map(Bytes::from_static),
            query_message: None,
            response_message: Some(Bytes::from(wire)),
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        }
    }

    #[test]
    fn stores_responses_of_the_mask_with_their_metadata() {
        let mut decoder = MessageDecoder::new(RESPONSE_TYPES_MASK, AdditionalPolicy::Always, None);
        let mut out = Batch::default();
        let outcome = decoder.decode(
            &message(MessageType::ResolverResponse, Some(b"\x04test\x00")),
            &mut out,
        );
        assert!(
            matches!(outcome, Outcome::Stored(ref s) if s.records == 1),
            "{outcome:?}"
        );
        let (meta, count) = &out.responses[0];
        assert_eq!(*count, 1);
        assert!(!meta.recursive, "a resolver's upstream answer is verified");
        assert_eq!(meta.sensor_id.as_deref(), Some("ns1"));
        assert_eq!(meta.server, Some("192.0.2.53".parse().unwrap()));
        assert_eq!(out.entries[0].seen.time_first, 1_700_000_000);
        assert!(!decoder.bad_zone);
        let outcome = decoder.decode(
            &message(MessageType::ClientResponse, Some(b"\xff")),
            &mut out,
        );
        assert!(matches!(outcome, Outcome::Stored(_)));
        assert!(decoder.bad_zone);
        assert!(out.responses[1].0.recursive);
        assert!(matches!(
            decoder.decode(&message(MessageType::ClientQuery, None), &mut out),
            Outcome::NotStored
        ));
        let mut none = MessageDecoder::new(0, AdditionalPolicy::Always, None);
        assert!(matches!(
            none.decode(&message(MessageType::ClientResponse, None), &mut out),
            Outcome::NotStored
        ));
        assert_eq!(out.len(), 2);
    }
}
