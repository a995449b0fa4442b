//! Arbitrary bytes through the Frame Streams decoder and file reader: no
//! panic, and nothing reserved beyond the frame cap.
#![no_main]

use bytes::BytesMut;
use dnsrecall_dnstap::{FileReader, FrameCodec};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = FrameCodec::new(64 * 1024);
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(_)) = codec.decode(&mut buffer) {}
    assert!(buffer.capacity() <= data.len() + 64 * 1024 + 8);
    let mut buffer = BytesMut::from(data);
    let _ = codec.decode_eof(&mut buffer);
    for frame in FileReader::new(data) {
        if frame.is_err() {
            break;
        }
    }
});
