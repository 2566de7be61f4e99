//! The switch link's frame reader (`link::frame`), every framing: a stream
//! fed in pieces gives the same frames as fed whole, and the frames read
//! encode back to exactly the bytes they were read from.
//!
//! Input: byte 0 picks the maximum frame size, byte 1 the piece size, the
//! rest is the stream.

use bytes::{Bytes, BytesMut};
use cardhub_core::link::frame::{FrameCodec, Framing};
use tokio_util::codec::{Decoder, Encoder};

const FRAMINGS: [Framing; 3] = [Framing::TwoByte, Framing::TwoByteEtx, Framing::FourAscii];

/// What a stream reads as: its frames, and whether it ended in an error.
#[derive(Debug, PartialEq)]
struct Read {
    frames: Vec<Vec<u8>>,
    failed: bool,
}

pub fn target(data: &[u8]) {
    let [max, piece, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*max) * 16;
    let piece = usize::from(*piece).max(1);
    for framing in FRAMINGS {
        let whole = read(framing, max, stream, stream.len().max(1));
        let pieces = read(framing, max, stream, piece);
        assert_eq!(
            whole, pieces,
            "{framing:?}: pieces of {piece} read differently"
        );
        let mut codec = FrameCodec::new(framing, max);
        let mut wire = BytesMut::new();
        for frame in &whole.frames {
            codec
                .encode(Bytes::copy_from_slice(frame), &mut wire)
                .unwrap_or_else(|e| panic!("{framing:?}: a frame read does not encode: {e}"));
        }
        assert!(
            stream.starts_with(&wire),
            "{framing:?}: frames encode back to other bytes than they were read from"
        );
    }
}

/// Reads `stream` arriving `piece` bytes at a time, up to the first error.
fn read(framing: Framing, max: usize, stream: &[u8], piece: usize) -> Read {
    let mut codec = FrameCodec::new(framing, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(
                        !frame.is_empty() && frame.len() <= max,
                        "{framing:?}: frame of {} bytes (max {max})",
                        frame.len()
                    );
                    frames.push(frame.to_vec());
                }
                Ok(None) => break,
                Err(_) => {
                    return Read {
                        frames,
                        failed: true,
                    };
                }
            }
        }
    }
    Read {
        frames,
        failed: false,
    }
}
