//! Transport framing of ISO 8583 messages on a TCP stream: a length header in
//! front of each message, as the switch link is configured.
//!
//! The codec checks, then parses: "need more bytes" (`Ok(None)`) is distinct
//! from "invalid" (`Err`). A broken header or a frame over the maximum means
//! framing is lost; the connection must close.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Deserialize;
use tokio_util::codec::{Decoder, Encoder};

/// The ETX byte BASE24 TCP links append to each message.
pub const ETX: u8 = 0x03;

/// How messages are delimited on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// 2-byte big-endian binary length, then the message.
    #[default]
    TwoByte,
    /// 2-byte big-endian binary length, then the message and an ETX (0x03)
    /// byte that the length counts.
    TwoByteEtx,
    /// 4 ASCII decimal digits of length, then the message.
    FourAscii,
}

impl Framing {
    fn header_len(self) -> usize {
        match self {
            Framing::TwoByte | Framing::TwoByteEtx => 2,
            Framing::FourAscii => 4,
        }
    }

    /// Largest frame the header can express.
    pub fn capacity(self) -> usize {
        match self {
            Framing::TwoByte | Framing::TwoByteEtx => 0xffff,
            Framing::FourAscii => 9999,
        }
    }
}

/// Framing is lost: the connection cannot continue.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length header announces more than the configured maximum.
    #[error("frame of {length} bytes exceeds the maximum of {max}")]
    TooLarge { length: usize, max: usize },
    /// The length header is not a length (e.g. non-digits in an ASCII header).
    #[error("broken length header {raw:?}")]
    BadHeader { raw: String },
    /// A zero-length frame, or an ETX frame too short to hold its ETX.
    #[error("empty frame")]
    Empty,
    /// An ETX-framed message whose last byte is not ETX.
    #[error("frame does not end with ETX (0x03) but {last:#04x}")]
    MissingEtx { last: u8 },
    /// The message to send is larger than the framing or the maximum allows.
    #[error("message of {length} bytes cannot be framed (max {max})")]
    Unframeable { length: usize, max: usize },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A tokio codec for one framing and frame-size limit.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    framing: Framing,
    max: usize,
}

impl FrameCodec {
    /// A codec; `max` is capped at what the framing can express.
    pub fn new(framing: Framing, max: usize) -> FrameCodec {
        FrameCodec {
            framing,
            max: max.min(framing.capacity()),
        }
    }

    /// Reads the announced frame length, or an error when the header is broken.
    fn announced(&self, header: &[u8]) -> Result<usize, FrameError> {
        match self.framing {
            Framing::TwoByte | Framing::TwoByteEtx => {
                Ok(usize::from(u16::from_be_bytes([header[0], header[1]])))
            }
            Framing::FourAscii => {
                if header.iter().all(u8::is_ascii_digit) {
                    Ok(header
                        .iter()
                        .fold(0, |acc, &d| acc * 10 + usize::from(d - b'0')))
                } else {
                    Err(FrameError::BadHeader {
                        raw: String::from_utf8_lossy(header).into_owned(),
                    })
                }
            }
        }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let header_len = self.framing.header_len();
        if src.len() < header_len {
            return Ok(None);
        }
        let length = self.announced(&src[..header_len])?;
        if length > self.max {
            return Err(FrameError::TooLarge {
                length,
                max: self.max,
            });
        }
        let etx = self.framing == Framing::TwoByteEtx;
        if length == 0 || (etx && length < 2) {
            return Err(FrameError::Empty);
        }
        if src.len() < header_len + length {
            src.reserve(header_len + length - src.len());
            return Ok(None);
        }
        src.advance(header_len);
        let mut frame = src.split_to(length);
        if etx {
            let last = frame[length - 1];
            if last != ETX {
                return Err(FrameError::MissingEtx { last });
            }
            frame.truncate(length - 1);
        }
        Ok(Some(frame))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, message: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        let etx = usize::from(self.framing == Framing::TwoByteEtx);
        let length = message.len() + etx;
        if length > self.max || message.is_empty() {
            return Err(FrameError::Unframeable {
                length,
                max: self.max,
            });
        }
        dst.reserve(self.framing.header_len() + length);
        match self.framing {
            Framing::TwoByte | Framing::TwoByteEtx => dst.put_u16(length as u16),
            Framing::FourAscii => dst.put_slice(format!("{length:04}").as_bytes()),
        }
        dst.put_slice(&message);
        if etx == 1 {
            dst.put_u8(ETX);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(framing: Framing) {
        let mut codec = FrameCodec::new(framing, 8192);
        let mut buf = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"0800abc"), &mut buf)
            .unwrap();
        codec
            .encode(Bytes::from_static(b"0810xyz"), &mut buf)
            .unwrap();
        // Byte by byte: "need more" until each frame is complete.
        let wire = buf.split().freeze();
        let mut got = Vec::new();
        for &b in wire.iter() {
            buf.put_u8(b);
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                got.push(frame.to_vec());
            }
        }
        assert_eq!(got, vec![b"0800abc".to_vec(), b"0810xyz".to_vec()]);
    }

    #[test]
    fn every_framing_round_trips_in_pieces() {
        round_trip(Framing::TwoByte);
        round_trip(Framing::TwoByteEtx);
        round_trip(Framing::FourAscii);
    }

    #[test]
    fn wire_formats() {
        let mut buf = BytesMut::new();
        FrameCodec::new(Framing::TwoByteEtx, 100)
            .encode(Bytes::from_static(b"AB"), &mut buf)
            .unwrap();
        assert_eq!(&buf[..], &[0, 3, b'A', b'B', ETX]);
        buf.clear();
        FrameCodec::new(Framing::FourAscii, 100)
            .encode(Bytes::from_static(b"AB"), &mut buf)
            .unwrap();
        assert_eq!(&buf[..], b"0002AB");
    }

    #[test]
    fn broken_frames_are_errors() {
        let mut codec = FrameCodec::new(Framing::TwoByte, 100);
        let mut buf = BytesMut::from(&[0x01, 0x00, 1, 2, 3][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge {
                length: 256,
                max: 100
            })
        ));
        let mut ascii = FrameCodec::new(Framing::FourAscii, 100);
        let mut buf = BytesMut::from(&b"00x5hello"[..]);
        assert!(matches!(
            ascii.decode(&mut buf),
            Err(FrameError::BadHeader { .. })
        ));
        let mut etx = FrameCodec::new(Framing::TwoByteEtx, 100);
        let mut buf = BytesMut::from(&[0, 3, b'A', b'B', b'C'][..]);
        assert!(matches!(
            etx.decode(&mut buf),
            Err(FrameError::MissingEtx { last: b'C' })
        ));
        let mut buf = BytesMut::from(&[0, 0][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Empty)));
    }
}
