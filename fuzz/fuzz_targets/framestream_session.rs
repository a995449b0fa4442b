//! A Frame Streams receiver session (bidirectional READY/ACCEPT/START/STOP/
//! FINISH or unidirectional, auto-detected) fed by a peer whose bytes are the
//! input, delivered in chunks the input also chooses; plus the bare codec.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use dnsrecall_dnstap::framestream::{FrameCodec, FrameConfig, ReceiverSession};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The peer: reads come from the input in chunks, writes are kept.
struct Peer<'a> {
    input: &'a [u8],
    chunk: usize,
    written: Vec<u8>,
}

impl AsyncRead for Peer<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.input.len().min(self.chunk).min(buf.remaining());
        let (head, tail) = self.input.split_at(n);
        buf.put_slice(head);
        self.input = tail;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Peer<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.written.len() > 1 << 16 {
            return Poll::Ready(Err(io::Error::other("peer stopped reading")));
        }
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let config = FrameConfig {
        max_data_frame_length: 4096,
        ..FrameConfig::default()
    };

    // The codec alone, over the whole input.
    let mut codec = FrameCodec::new(config.max_data_frame_length);
    let mut buffer = BytesMut::from(input);
    while let Ok(Some(_)) = tokio_util_decode(&mut codec, &mut buffer) {}

    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(_) => return,
    };
    runtime.block_on(async {
        let peer = Peer {
            input,
            chunk: usize::from(chunk.max(1)),
            written: Vec::new(),
        };
        let mut session = ReceiverSession::new(peer, &config);
        let mut frames = 0usize;
        while let Ok(Some(frame)) = session.next_data().await {
            assert!(frame.len() <= config.max_data_frame_length);
            frames += 1;
            assert!(frames <= input.len());
        }
        let _ = session.next_buffered();
    });
});

fn tokio_util_decode(
    codec: &mut FrameCodec,
    buffer: &mut BytesMut,
) -> Result<Option<dnsrecall_dnstap::framestream::Frame>, dnsrecall_dnstap::framestream::FrameError>
{
    use tokio_util::codec::Decoder;
    codec.decode(buffer)
}
