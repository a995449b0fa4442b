//! dnstap for dnsrecall: receive, decode, log and write dnstap.
//!
//! This crate owns everything between a DNS server's dnstap stream and a
//! decoded dnstap message:
//! - [`framestream`]: the Frame Streams protocol (codec, receiving and sending
//!   sessions with the READY/ACCEPT/START/STOP/FINISH handshake, files);
//! - [`proto`]: the dnstap protobuf schema, decoded zero-copy with prost;
//! - [`server`]: dnstap sockets (TCP, unix, TLS servers, and a client mode
//!   that connects out to a listening sender), delivering [`server::DataFrame`]s
//!   to a bounded channel;
//! - [`output`]: message logs compatible with python dnstap-receiver (text,
//!   JSON, YAML lines; stdout or size-rotated files) and dnstap file output;
//! - [`metrics`]: the counters of all of the above;
//! - [`dns`]: the bounds-checked DNS header/question reader the logs need.
//!
//! The flow is: listener → connection task ([`framestream::ReceiverSession`])
//! → [`server::FrameSink`] → consumer ([`proto::decode_dnstap`], or an
//! [`output::Dispatcher`] feeding bounded output queues).
//!
//! It must not know about storage, HTTP, or passive-DNS records: it hands
//! frames and decoded messages to its caller and stops there. It depends on
//! no other dnsrecall crate.

pub mod dns;
pub mod framestream;
pub mod metrics;
pub mod output;
pub mod proto;
pub mod server;

pub use framestream::{
    DNSTAP_CONTENT_TYPE, FileReader, FileWriter, FrameCodec, FrameConfig, FrameError,
};
pub use metrics::Metrics;
pub use proto::{Dnstap, decode_dnstap};
pub use server::{DataFrame, FrameSink, ServerConfig};
