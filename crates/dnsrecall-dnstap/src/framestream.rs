//! Frame Streams: the framing dnstap travels in.
//!
//! Every frame starts with a 32-bit big-endian length. A non-zero length is a
//! *data frame* of that many bytes; a zero length is an escape followed by a
//! *control frame* (`control_length | control_type | fields...`). The only
//! defined field is `CONTENT_TYPE` (1).
//!
//! This module owns:
//! - [`FrameCodec`], a `tokio_util::codec` decoder/encoder for [`Frame`]s that
//!   checks every length against its cap *before* reserving buffer space;
//! - [`ReceiverSession`], the receiving side of a connection: it detects
//!   bidirectional (READY first) or unidirectional (START first) senders and
//!   yields data frames;
//! - [`SenderSession`], the sending side (READY → ACCEPT → START, frames,
//!   STOP → FINISH), used by tests and a future relay;
//! - [`FileReader`] / [`FileWriter`], synchronous unidirectional Frame Streams
//!   files as written by `fstrm_capture` and read by `fstrm_dump`.

use std::fmt;
use std::io::{self, Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};

/// The dnstap content type, `protobuf:dnstap.Dnstap`.
pub const DNSTAP_CONTENT_TYPE: &str = "protobuf:dnstap.Dnstap";
/// Largest control frame payload (type + fields), as libfstrm's
/// `FSTRM_CONTROL_FRAME_LENGTH_MAX`.
pub const MAX_CONTROL_FRAME_LENGTH: usize = 512;
/// Largest CONTENT_TYPE field, as libfstrm's
/// `FSTRM_CONTROL_FIELD_CONTENT_TYPE_LENGTH_MAX`.
pub const MAX_CONTENT_TYPE_LENGTH: usize = 256;
/// Default data frame cap: 1 MiB, libfstrm's reader default.
pub const DEFAULT_MAX_DATA_FRAME_LENGTH: usize = 1 << 20;

const FIELD_CONTENT_TYPE: u32 = 1;

//---- ControlType ----

/// The type of a control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// Receiver → sender, answers READY.
    Accept,
    /// Sender → receiver, first frame of the data phase.
    Start,
    /// Sender → receiver, end of the data phase.
    Stop,
    /// Sender → receiver, opens a bidirectional handshake.
    Ready,
    /// Receiver → sender, answers STOP.
    Finish,
    /// A type this implementation does not know; ignored in the data phase.
    Unknown(u32),
}

impl ControlType {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            ControlType::Accept => 1,
            ControlType::Start => 2,
            ControlType::Stop => 3,
            ControlType::Ready => 4,
            ControlType::Finish => 5,
            ControlType::Unknown(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u32(value: u32) -> Self {
        match value {
            1 => ControlType::Accept,
            2 => ControlType::Start,
            3 => ControlType::Stop,
            4 => ControlType::Ready,
            5 => ControlType::Finish,
            v => ControlType::Unknown(v),
        }
    }
}

impl fmt::Display for ControlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlType::Accept => f.write_str("ACCEPT"),
            ControlType::Start => f.write_str("START"),
            ControlType::Stop => f.write_str("STOP"),
            ControlType::Ready => f.write_str("READY"),
            ControlType::Finish => f.write_str("FINISH"),
            ControlType::Unknown(v) => write!(f, "control type {v}"),
        }
    }
}

//---- Frame ----

/// A control frame: its type and CONTENT_TYPE fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlFrame {
    /// The control type.
    pub control_type: ControlType,
    /// The CONTENT_TYPE fields, in wire order. Empty for unknown types (their
    /// fields are skipped unparsed).
    pub content_types: Vec<Bytes>,
}

impl ControlFrame {
    /// A control frame without fields (STOP, FINISH).
    pub fn new(control_type: ControlType) -> Self {
        ControlFrame {
            control_type,
            content_types: Vec::new(),
        }
    }

    /// A control frame with one CONTENT_TYPE field.
    pub fn with_content_type(control_type: ControlType, content_type: &str) -> Self {
        ControlFrame {
            control_type,
            content_types: vec![Bytes::copy_from_slice(content_type.as_bytes())],
        }
    }

    fn offers(&self, content_type: &[u8]) -> bool {
        self.content_types
            .iter()
            .any(|c| c.as_ref() == content_type)
    }

    fn encoded_len(&self) -> usize {
        4 + self
            .content_types
            .iter()
            .map(|c| 8 + c.len())
            .sum::<usize>()
    }
}

/// One Frame Streams frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A data frame (for dnstap: one protobuf `Dnstap` message). Never empty.
    Data(Bytes),
    /// A control frame.
    Control(ControlFrame),
}

//---- FrameError ----

/// What can go wrong reading or writing Frame Streams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A data frame header announced more bytes than the configured cap.
    #[error("data frame of {length} bytes exceeds the limit of {limit} bytes")]
    DataFrameTooLarge {
        /// Announced length.
        length: u64,
        /// Configured cap.
        limit: usize,
    },
    /// A control frame announced more than 512 bytes.
    #[error(
        "control frame of {length} bytes exceeds the limit of {MAX_CONTROL_FRAME_LENGTH} bytes"
    )]
    ControlFrameTooLarge {
        /// Announced length.
        length: u32,
    },
    /// A control frame was too short to hold its type, or a field overran it.
    #[error("malformed control frame: {reason} (control length {length})")]
    MalformedControl {
        /// What was wrong.
        reason: &'static str,
        /// The control frame length.
        length: u32,
    },
    /// A known control frame carried a field type other than CONTENT_TYPE.
    #[error("unknown control field type {field_type} in {control_type} frame")]
    UnknownControlField {
        /// The field type.
        field_type: u32,
        /// The control frame it was found in.
        control_type: ControlType,
    },
    /// A CONTENT_TYPE field longer than 256 bytes.
    #[error(
        "content type field of {length} bytes exceeds the limit of {MAX_CONTENT_TYPE_LENGTH} bytes"
    )]
    ContentTypeTooLong {
        /// Field length.
        length: u32,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame with {buffered} bytes buffered")]
    Truncated {
        /// Bytes of the incomplete frame that had arrived.
        buffered: usize,
    },
    /// A control frame arrived where the protocol does not allow it.
    #[error("unexpected {got} frame while {state}")]
    UnexpectedControl {
        /// What arrived.
        got: ControlType,
        /// What the session was waiting for.
        state: &'static str,
    },
    /// A data frame arrived before START.
    #[error("data frame of {length} bytes before START")]
    DataBeforeStart {
        /// Its length.
        length: usize,
    },
    /// READY/START/ACCEPT offered content types that do not include ours.
    #[error("content type mismatch: peer offered [{offered}], expected {expected:?}")]
    ContentTypeMismatch {
        /// The offered types, comma separated (lossy UTF-8).
        offered: String,
        /// The configured type.
        expected: String,
    },
    /// The peer closed the connection before the handshake finished.
    #[error("peer closed the connection while {state}")]
    Closed {
        /// What the session was waiting for.
        state: &'static str,
    },
    /// An empty data frame cannot be encoded (length 0 is the escape).
    #[error("cannot encode an empty data frame")]
    EmptyDataFrame,
    /// Reading or writing the transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    fn mismatch(frame: &ControlFrame, expected: &[u8]) -> Self {
        let offered = frame
            .content_types
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        FrameError::ContentTypeMismatch {
            offered,
            expected: String::from_utf8_lossy(expected).into_owned(),
        }
    }
}

//---- FrameCodec ----

/// Decoder and encoder for Frame Streams frames.
///
/// Lengths are checked against the caps before any buffer space is reserved,
/// so a hostile length prefix costs nothing.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    max_data_frame_length: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_DATA_FRAME_LENGTH)
    }
}

impl FrameCodec {
    /// A codec accepting data frames up to `max_data_frame_length` bytes.
    pub fn new(max_data_frame_length: usize) -> Self {
        FrameCodec {
            max_data_frame_length,
        }
    }

    /// The data frame cap.
    pub fn max_data_frame_length(&self) -> usize {
        self.max_data_frame_length
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at + 4)?;
    let array: [u8; 4] = slice.try_into().ok()?;
    Some(u32::from_be_bytes(array))
}

/// Parses the control payload (type + fields), `payload.len() == length`.
fn parse_control(payload: Bytes) -> Result<ControlFrame, FrameError> {
    let length = payload.len() as u32;
    let Some(raw_type) = read_u32(&payload, 0) else {
        return Err(FrameError::MalformedControl {
            reason: "shorter than its type",
            length,
        });
    };
    let control_type = ControlType::from_u32(raw_type);
    let mut frame = ControlFrame::new(control_type);
    if let ControlType::Unknown(_) = control_type {
        // Future control types may carry fields we cannot interpret; the
        // protocol says to ignore such frames, so their fields are skipped.
        return Ok(frame);
    }
    let mut at = 4;
    while at < payload.len() {
        let (Some(field_type), Some(field_length)) =
            (read_u32(&payload, at), read_u32(&payload, at + 4))
        else {
            return Err(FrameError::MalformedControl {
                reason: "truncated field header",
                length,
            });
        };
        at += 8;
        if field_type != FIELD_CONTENT_TYPE {
            return Err(FrameError::UnknownControlField {
                field_type,
                control_type,
            });
        }
        if field_length as usize > MAX_CONTENT_TYPE_LENGTH {
            return Err(FrameError::ContentTypeTooLong {
                length: field_length,
            });
        }
        let end = at + field_length as usize;
        if end > payload.len() {
            return Err(FrameError::MalformedControl {
                reason: "field overruns the frame",
                length,
            });
        }
        frame.content_types.push(payload.slice(at..end));
        at = end;
    }
    Ok(frame)
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(length) = read_u32(src, 0) else {
            return Ok(None);
        };
        if length != 0 {
            let length = length as usize;
            if length > self.max_data_frame_length {
                return Err(FrameError::DataFrameTooLarge {
                    length: length as u64,
                    limit: self.max_data_frame_length,
                });
            }
            if src.len() < 4 + length {
                // Bounded by the cap checked above.
                src.reserve(4 + length - src.len());
                return Ok(None);
            }
            src.advance(4);
            return Ok(Some(Frame::Data(src.split_to(length).freeze())));
        }
        let Some(control_length) = read_u32(src, 4) else {
            return Ok(None);
        };
        if control_length as usize > MAX_CONTROL_FRAME_LENGTH {
            return Err(FrameError::ControlFrameTooLarge {
                length: control_length,
            });
        }
        let total = 8 + control_length as usize;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(8);
        let payload = src.split_to(control_length as usize).freeze();
        parse_control(payload).map(|c| Some(Frame::Control(c)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        match item {
            Frame::Data(data) => self.encode(&data[..], dst),
            Frame::Control(control) => self.encode(&control, dst),
        }
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, data: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        if data.is_empty() {
            return Err(FrameError::EmptyDataFrame);
        }
        if data.len() > self.max_data_frame_length || data.len() > u32::MAX as usize {
            return Err(FrameError::DataFrameTooLarge {
                length: data.len() as u64,
                limit: self.max_data_frame_length,
            });
        }
        dst.reserve(4 + data.len());
        dst.put_u32(data.len() as u32);
        dst.put_slice(data);
        Ok(())
    }
}

impl Encoder<&ControlFrame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, control: &ControlFrame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let length = control.encoded_len();
        if length > MAX_CONTROL_FRAME_LENGTH {
            return Err(FrameError::ControlFrameTooLarge {
                length: length as u32,
            });
        }
        if let Some(long) = control
            .content_types
            .iter()
            .find(|c| c.len() > MAX_CONTENT_TYPE_LENGTH)
        {
            return Err(FrameError::ContentTypeTooLong {
                length: long.len() as u32,
            });
        }
        dst.reserve(8 + length);
        dst.put_u32(0);
        dst.put_u32(length as u32);
        dst.put_u32(control.control_type.to_u32());
        for content_type in &control.content_types {
            dst.put_u32(FIELD_CONTENT_TYPE);
            dst.put_u32(content_type.len() as u32);
            dst.put_slice(content_type);
        }
        Ok(())
    }
}

//---- Sessions ----

/// How the peer runs the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// READY → ACCEPT → START … STOP → FINISH.
    Bidirectional,
    /// START … STOP, nothing written back.
    Unidirectional,
}

/// Settings shared by sessions, servers and file readers.
#[derive(Clone, Debug)]
pub struct FrameConfig {
    /// Data frame cap in bytes (default 1 MiB).
    pub max_data_frame_length: usize,
    /// The content type to require in READY/START and echo in ACCEPT
    /// (default `protobuf:dnstap.Dnstap`).
    pub content_type: String,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            max_data_frame_length: DEFAULT_MAX_DATA_FRAME_LENGTH,
            content_type: DNSTAP_CONTENT_TYPE.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReceiverState {
    AwaitingFirst,
    AwaitingStart,
    Data(Mode),
    Done,
}

impl ReceiverState {
    fn describe(self) -> &'static str {
        match self {
            ReceiverState::AwaitingFirst => "waiting for READY or START",
            ReceiverState::AwaitingStart => "waiting for START",
            ReceiverState::Data(_) => "in the data phase",
            ReceiverState::Done => "finished",
        }
    }
}

/// The receiving side of one Frame Streams connection.
///
/// Call [`ReceiverSession::next_data`] until it returns `Ok(None)`: it runs
/// the handshake on the way (auto-detecting the mode from the first control
/// frame), skips unknown control frames, and answers STOP with FINISH when
/// the peer is bidirectional.
pub struct ReceiverSession<T> {
    framed: Framed<T, FrameCodec>,
    content_type: Bytes,
    state: ReceiverState,
    control_frames: u64,
    stopped: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> ReceiverSession<T> {
    /// Wraps a connected transport.
    pub fn new(io: T, config: &FrameConfig) -> Self {
        ReceiverSession {
            framed: Framed::new(io, FrameCodec::new(config.max_data_frame_length)),
            content_type: Bytes::copy_from_slice(config.content_type.as_bytes()),
            state: ReceiverState::AwaitingFirst,
            control_frames: 0,
            stopped: false,
        }
    }

    /// The detected mode, once the first control frame has arrived.
    pub fn mode(&self) -> Option<Mode> {
        match self.state {
            ReceiverState::AwaitingStart => Some(Mode::Bidirectional),
            ReceiverState::Data(mode) => Some(mode),
            _ => None,
        }
    }

    /// Control frames received so far.
    pub fn control_frames(&self) -> u64 {
        self.control_frames
    }

    /// Whether the peer ended the stream with STOP (as opposed to closing).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Bytes received but not yet decoded into a frame.
    pub fn buffered(&self) -> usize {
        self.framed.read_buffer().len()
    }

    /// Runs the handshake until the data phase starts (START received).
    /// Servers wrap this in a timeout so a silent peer cannot hold a slot.
    pub async fn handshake(&mut self) -> Result<Mode, FrameError> {
        loop {
            if let ReceiverState::Data(mode) = self.state {
                return Ok(mode);
            }
            let frame = match self.framed.next().await {
                Some(frame) => frame?,
                None => {
                    return Err(FrameError::Closed {
                        state: self.state.describe(),
                    });
                }
            };
            // Data frames are refused by `handle` before START.
            self.handle(frame).await?;
        }
    }

    /// The next data frame, `Ok(None)` at the end of the stream (STOP, or the
    /// peer closing between frames in the data phase).
    pub async fn next_data(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if self.state == ReceiverState::Done {
                return Ok(None);
            }
            let frame = match self.framed.next().await {
                Some(frame) => frame?,
                None => {
                    return match self.state {
                        ReceiverState::Data(_) | ReceiverState::Done => {
                            self.state = ReceiverState::Done;
                            Ok(None)
                        }
                        state => Err(FrameError::Closed {
                            state: state.describe(),
                        }),
                    };
                }
            };
            if let Some(data) = self.handle(frame).await? {
                return Ok(Some(data));
            }
        }
    }

    /// The next data frame if one is already fully buffered, without reading
    /// from the transport. Used to drain on shutdown.
    pub fn next_buffered(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if !matches!(self.state, ReceiverState::Data(_)) {
                return Ok(None);
            }
            let mut codec = self.framed.codec().clone();
            let Some(frame) = codec.decode(self.framed.read_buffer_mut())? else {
                return Ok(None);
            };
            match frame {
                Frame::Data(data) => return Ok(Some(data)),
                Frame::Control(control) => {
                    self.control_frames += 1;
                    if control.control_type == ControlType::Stop {
                        self.stopped = true;
                        self.state = ReceiverState::Done;
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn handle(&mut self, frame: Frame) -> Result<Option<Bytes>, FrameError> {
        let control = match frame {
            Frame::Data(data) => {
                return match self.state {
                    ReceiverState::Data(_) => Ok(Some(data)),
                    _ => Err(FrameError::DataBeforeStart { length: data.len() }),
                };
            }
            Frame::Control(control) => control,
        };
        self.control_frames += 1;
        match (self.state, control.control_type) {
            (ReceiverState::AwaitingFirst, ControlType::Ready) => {
                if !control.offers(&self.content_type) {
                    return Err(FrameError::mismatch(&control, &self.content_type));
                }
                let accept = ControlFrame {
                    control_type: ControlType::Accept,
                    content_types: vec![self.content_type.clone()],
                };
                self.framed.send(Frame::Control(accept)).await?;
                self.state = ReceiverState::AwaitingStart;
            }
            (ReceiverState::AwaitingFirst, ControlType::Start) => {
                self.check_start(&control)?;
                self.state = ReceiverState::Data(Mode::Unidirectional);
            }
            (ReceiverState::AwaitingStart, ControlType::Start) => {
                self.check_start(&control)?;
                self.state = ReceiverState::Data(Mode::Bidirectional);
            }
            (ReceiverState::Data(mode), ControlType::Stop) => {
                self.stopped = true;
                self.state = ReceiverState::Done;
                if mode == Mode::Bidirectional {
                    self.framed
                        .send(Frame::Control(ControlFrame::new(ControlType::Finish)))
                        .await?;
                }
            }
            (ReceiverState::Data(_), ControlType::Unknown(_)) => {}
            (state, got) => {
                return Err(FrameError::UnexpectedControl {
                    got,
                    state: state.describe(),
                });
            }
        }
        Ok(None)
    }

    fn check_start(&self, control: &ControlFrame) -> Result<(), FrameError> {
        // START carries at most one type; with none it only matches a reader
        // configured without a content type (control.h).
        let matches = if self.content_type.is_empty() {
            true
        } else {
            control.content_types.len() == 1 && control.offers(&self.content_type)
        };
        if matches {
            Ok(())
        } else {
            Err(FrameError::mismatch(control, &self.content_type))
        }
    }

    /// Gives back the transport.
    pub fn into_inner(self) -> T {
        self.framed.into_inner()
    }
}

/// The sending side of one Frame Streams connection.
pub struct SenderSession<T> {
    framed: Framed<T, FrameCodec>,
    mode: Mode,
}

impl<T: AsyncRead + AsyncWrite + Unpin> SenderSession<T> {
    /// Runs the handshake: READY → ACCEPT → START when `mode` is
    /// bidirectional, START only otherwise.
    pub async fn start(io: T, content_type: &str, mode: Mode) -> Result<Self, FrameError> {
        let mut framed = Framed::new(io, FrameCodec::default());
        if mode == Mode::Bidirectional {
            let ready = ControlFrame::with_content_type(ControlType::Ready, content_type);
            framed.send(Frame::Control(ready)).await?;
            match framed.next().await {
                Some(Ok(Frame::Control(accept))) if accept.control_type == ControlType::Accept => {
                    if !accept.offers(content_type.as_bytes()) {
                        return Err(FrameError::mismatch(&accept, content_type.as_bytes()));
                    }
                }
                Some(Ok(Frame::Control(other))) => {
                    return Err(FrameError::UnexpectedControl {
                        got: other.control_type,
                        state: "waiting for ACCEPT",
                    });
                }
                Some(Ok(Frame::Data(data))) => {
                    return Err(FrameError::DataBeforeStart { length: data.len() });
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(FrameError::Closed {
                        state: "waiting for ACCEPT",
                    });
                }
            }
        }
        let start = ControlFrame::with_content_type(ControlType::Start, content_type);
        framed.send(Frame::Control(start)).await?;
        Ok(SenderSession { framed, mode })
    }

    /// Queues one data frame; it is written when the buffer fills or on
    /// [`SenderSession::flush`] / [`SenderSession::finish`].
    pub async fn send(&mut self, data: Bytes) -> Result<(), FrameError> {
        self.framed.feed(Frame::Data(data)).await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<Frame>::flush(&mut self.framed).await
    }

    /// Sends STOP and, when bidirectional, waits for FINISH.
    pub async fn finish(mut self) -> Result<T, FrameError> {
        self.framed
            .send(Frame::Control(ControlFrame::new(ControlType::Stop)))
            .await?;
        if self.mode == Mode::Bidirectional {
            loop {
                match self.framed.next().await {
                    Some(Ok(Frame::Control(c))) if c.control_type == ControlType::Finish => break,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e),
                    None => {
                        return Err(FrameError::Closed {
                            state: "waiting for FINISH",
                        });
                    }
                }
            }
        }
        Ok(self.framed.into_inner())
    }
}

//---- Files ----

/// Reads the data frames of a unidirectional Frame Streams file
/// (`START [data|control]* STOP`), e.g. `fstrm_capture` output.
///
/// Works on any `Read`; wrap a gzip decoder around the file for `.gz` files.
pub struct FileReader<R> {
    reader: R,
    buffer: BytesMut,
    codec: FrameCodec,
    expected_content_type: Option<Bytes>,
    content_type: Option<Bytes>,
    started: bool,
    finished: bool,
}

const FILE_READ_CHUNK: usize = 64 * 1024;

impl<R: Read> FileReader<R> {
    /// A reader with the default frame cap that accepts any content type.
    pub fn new(reader: R) -> Self {
        FileReader {
            reader,
            buffer: BytesMut::new(),
            codec: FrameCodec::default(),
            expected_content_type: None,
            content_type: None,
            started: false,
            finished: false,
        }
    }

    /// A reader using `config`'s frame cap and requiring its content type.
    pub fn with_config(reader: R, config: &FrameConfig) -> Self {
        let mut file_reader = FileReader::new(reader);
        file_reader.codec = FrameCodec::new(config.max_data_frame_length);
        file_reader.expected_content_type =
            Some(Bytes::copy_from_slice(config.content_type.as_bytes()));
        file_reader
    }

    /// The content type of the START frame, once read.
    pub fn content_type(&self) -> Option<&[u8]> {
        self.content_type.as_deref()
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer)? {
                return Ok(Some(frame));
            }
            let before = self.buffer.len();
            self.buffer.resize(before + FILE_READ_CHUNK, 0);
            let read = loop {
                match self.reader.read(&mut self.buffer[before..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buffer.truncate(before);
                        return Err(e.into());
                    }
                }
            };
            self.buffer.truncate(before + read);
            if read == 0 {
                return self.codec.decode_eof(&mut self.buffer);
            }
        }
    }

    /// The next data frame; `Ok(None)` after STOP (or at a clean end of file).
    pub fn next_data(&mut self) -> Result<Option<Bytes>, FrameError> {
        while !self.finished {
            let Some(frame) = self.next_frame()? else {
                self.finished = true;
                if !self.started {
                    return Err(FrameError::Closed {
                        state: "waiting for START",
                    });
                }
                return Ok(None);
            };
            match frame {
                Frame::Data(data) if self.started => return Ok(Some(data)),
                Frame::Data(data) => {
                    return Err(FrameError::DataBeforeStart { length: data.len() });
                }
                Frame::Control(control) => match (self.started, control.control_type) {
                    (false, ControlType::Start) => {
                        if let Some(expected) = &self.expected_content_type
                            && !control.offers(expected)
                        {
                            return Err(FrameError::mismatch(&control, expected));
                        }
                        self.content_type = control.content_types.first().cloned();
                        self.started = true;
                    }
                    (true, ControlType::Stop) => self.finished = true,
                    (true, ControlType::Unknown(_)) => {}
                    (started, got) => {
                        return Err(FrameError::UnexpectedControl {
                            got,
                            state: if started {
                                "in the data phase"
                            } else {
                                "waiting for START"
                            },
                        });
                    }
                },
            }
        }
        Ok(None)
    }
}

impl<R: Read> Iterator for FileReader<R> {
    type Item = Result<Bytes, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_data() {
            Ok(Some(data)) => Some(Ok(data)),
            Ok(None) => None,
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes a unidirectional Frame Streams file readable by `fstrm_dump` and
/// `dnstap-ldns -r`. Call [`FileWriter::finish`] to write STOP.
pub struct FileWriter<W: Write> {
    writer: W,
    codec: FrameCodec,
    scratch: BytesMut,
    written: u64,
}

impl<W: Write> FileWriter<W> {
    /// Writes START with `content_type`.
    pub fn new(writer: W, content_type: &str) -> Result<Self, FrameError> {
        let mut file_writer = FileWriter {
            writer,
            codec: FrameCodec::new(u32::MAX as usize),
            scratch: BytesMut::new(),
            written: 0,
        };
        let start = ControlFrame::with_content_type(ControlType::Start, content_type);
        file_writer.codec.encode(&start, &mut file_writer.scratch)?;
        file_writer.flush_scratch()?;
        Ok(file_writer)
    }

    fn flush_scratch(&mut self) -> Result<(), FrameError> {
        self.writer.write_all(&self.scratch)?;
        self.written += self.scratch.len() as u64;
        self.scratch.clear();
        Ok(())
    }

    /// Writes one data frame.
    pub fn write_frame(&mut self, data: &[u8]) -> Result<(), FrameError> {
        self.codec.encode(data, &mut self.scratch)?;
        self.flush_scratch()
    }

    /// Bytes written so far, START included.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> Result<(), FrameError> {
        self.writer.flush()?;
        Ok(())
    }

    /// Writes STOP, flushes and gives back the writer.
    pub fn finish(mut self) -> Result<W, FrameError> {
        self.codec
            .encode(&ControlFrame::new(ControlType::Stop), &mut self.scratch)?;
        self.flush_scratch()?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_all(frames: &[Frame]) -> BytesMut {
        let mut codec = FrameCodec::default();
        let mut out = BytesMut::new();
        for frame in frames {
            codec.encode(frame.clone(), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn ready_matches_spec_bytes() {
        let out = encode_all(&[Frame::Control(ControlFrame::with_content_type(
            ControlType::Ready,
            DNSTAP_CONTENT_TYPE,
        ))]);
        let mut expected = vec![
            0, 0, 0, 0, 0, 0, 0, 0x22, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0x16,
        ];
        expected.extend_from_slice(DNSTAP_CONTENT_TYPE.as_bytes());
        assert_eq!(&out[..], &expected[..]);
        let stop = encode_all(&[Frame::Control(ControlFrame::new(ControlType::Stop))]);
        assert_eq!(&stop[..], &[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    }

    #[test]
    fn oversized_data_frame_is_rejected_before_allocating() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xf0, 1, 2][..]);
        let capacity = buf.capacity();
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::DataFrameTooLarge {
                length: 0xffff_fff0,
                limit: 1024
            }
        ));
        assert!(err.to_string().contains("4294967280"));
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn oversized_control_frame_is_rejected() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 0, 0, 0, 2, 1][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::ControlFrameTooLarge { length: 513 })
        ));
    }

    #[test]
    fn unknown_field_in_known_control_is_an_error() {
        let mut codec = FrameCodec::default();
        let mut buf =
            BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::UnknownControlField { field_type: 9, .. })
        ));
    }

    #[test]
    fn truncated_stream_is_reported_at_eof() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 10, 1, 2, 3][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::Truncated { buffered: 7 })
        ));
    }

    #[test]
    fn file_round_trip_with_unknown_control() {
        let mut writer = FileWriter::new(Vec::new(), DNSTAP_CONTENT_TYPE).unwrap();
        writer.write_frame(b"one").unwrap();
        writer.scratch.clear();
        let mut extra = BytesMut::new();
        FrameCodec::default()
            .encode(&ControlFrame::new(ControlType::Unknown(77)), &mut extra)
            .unwrap();
        writer.writer.extend_from_slice(&extra);
        writer.write_frame(b"two").unwrap();
        let file = writer.finish().unwrap();
        let reader = FileReader::with_config(&file[..], &FrameConfig::default());
        let frames: Vec<Bytes> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(
            frames,
            vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
        );
    }

    #[test]
    fn file_reader_rejects_wrong_content_type() {
        let file = FileWriter::new(Vec::new(), "test:hello")
            .unwrap()
            .finish()
            .unwrap();
        let mut reader = FileReader::with_config(&file[..], &FrameConfig::default());
        assert!(matches!(
            reader.next_data(),
            Err(FrameError::ContentTypeMismatch { .. })
        ));
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let data = proptest::collection::vec(any::<u8>(), 1..300)
            .prop_map(|v| Frame::Data(Bytes::from(v)));
        let control = (
            prop_oneof![
                Just(ControlType::Accept),
                Just(ControlType::Start),
                Just(ControlType::Stop),
                Just(ControlType::Ready),
                Just(ControlType::Finish),
            ],
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
        )
            .prop_map(|(control_type, types)| {
                Frame::Control(ControlFrame {
                    control_type,
                    content_types: types.into_iter().map(Bytes::from).collect(),
                })
            });
        prop_oneof![3 => data, 1 => control]
    }

    proptest! {
        #[test]
        fn codec_round_trip_any_split(
            frames in proptest::collection::vec(arb_frame(), 0..20),
            splits in proptest::collection::vec(1usize..64, 1..50),
        ) {
            let wire = encode_all(&frames);
            let mut codec = FrameCodec::default();
            let mut buf = BytesMut::new();
            let mut decoded = Vec::new();
            let mut at = 0;
            let mut split = splits.iter().cycle();
            while at < wire.len() {
                let step = (*split.next().unwrap()).min(wire.len() - at);
                buf.extend_from_slice(&wire[at..at + step]);
                at += step;
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    decoded.push(frame);
                }
            }
            prop_assert!(codec.decode_eof(&mut buf).unwrap().is_none());
            prop_assert_eq!(decoded, frames);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut codec = FrameCodec::new(4096);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
            // Nothing beyond the cap is ever reserved.
            prop_assert!(buf.capacity() <= 2048 + 4096 + 8);
        }

        #[test]
        fn file_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            for frame in FileReader::new(&bytes[..]) {
                if frame.is_err() { break; }
            }
        }
    }
}
