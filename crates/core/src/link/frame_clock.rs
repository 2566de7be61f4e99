//! The frame-completion time limit: a reader under the frame codec that
//! starts a clock when the first byte of a frame arrives and fails the read
//! once the frame is not complete in time, so a peer trickling bytes
//! (slowloris) cannot hold a connection open. The connection tells it where
//! frames end ([`FrameClock::frame_done`]); it sees bytes, not frames.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps the read half of a connection.
pub(crate) struct FrameClock<R> {
    inner: R,
    limit: Option<Duration>,
    /// Armed while a frame is incomplete: fires at its time limit.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Set once the limit passed; the connection reads it to say why it closes.
    expired: bool,
}

impl<R> FrameClock<R> {
    /// `limit`: how long a frame may take from its first byte; `None`: no limit.
    pub fn new(inner: R, limit: Option<Duration>) -> FrameClock<R> {
        FrameClock {
            inner,
            limit,
            deadline: None,
            expired: false,
        }
    }

    /// A frame was completed. `more_buffered`: bytes of the next frame are
    /// already read, so its clock starts now.
    pub fn frame_done(&mut self, more_buffered: bool) {
        self.deadline = None;
        if more_buffered {
            self.start();
        }
    }

    /// Whether the read failed because a frame took too long.
    pub fn expired(&self) -> bool {
        self.expired
    }

    fn start(&mut self) {
        if let Some(limit) = self.limit {
            self.deadline = Some(Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FrameClock<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && self.deadline.is_none() {
                    self.start();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Polling the deadline registers the wake-up at the limit.
                let fired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !fired {
                    return Poll::Pending;
                }
                self.expired = true;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "frame not completed in time",
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::{AsyncWriteExt, DuplexStream};
    use tokio_util::codec::FramedRead;

    use super::*;
    use crate::link::frame::{FrameCodec, Framing};

    /// Outer bound on each step, never reached unless something is broken.
    const WAIT: Duration = Duration::from_secs(10);

    fn frames(
        limit: Duration,
    ) -> (
        DuplexStream,
        FramedRead<FrameClock<DuplexStream>, FrameCodec>,
    ) {
        let (peer, ours) = tokio::io::duplex(64);
        let frames = FramedRead::new(
            FrameClock::new(ours, Some(limit)),
            FrameCodec::new(Framing::TwoByte, 64),
        );
        (peer, frames)
    }

    #[tokio::test]
    async fn frames_split_across_reads_pass_and_the_clock_restarts_per_frame() {
        // A limit far beyond the test's steps: only a bug makes it fire.
        let (mut peer, mut frames) = frames(WAIT * 6);
        // A whole frame, then the first byte of the next, in one write.
        peer.write_all(&[0, 2, b'h', b'i', 0]).await.unwrap();
        let frame = tokio::time::timeout(WAIT, frames.next()).await.unwrap();
        assert_eq!(&frame.unwrap().unwrap()[..], b"hi");
        let more = !frames.read_buffer().is_empty();
        assert!(more, "the next frame's first byte is buffered");
        frames.get_mut().frame_done(more);
        assert!(frames.get_ref().deadline.is_some(), "its clock runs");
        peer.write_all(&[3, b'a', b'b', b'c']).await.unwrap();
        let frame = tokio::time::timeout(WAIT, frames.next()).await.unwrap();
        assert_eq!(&frame.unwrap().unwrap()[..], b"abc");
        let more = !frames.read_buffer().is_empty();
        frames.get_mut().frame_done(more);
        assert!(
            frames.get_ref().deadline.is_none(),
            "between frames no clock runs"
        );
        assert!(!frames.get_ref().expired());
    }

    #[tokio::test]
    async fn a_frame_never_completed_fails_the_read_at_its_limit() {
        let (mut peer, mut frames) = frames(Duration::from_millis(50));
        // The header and one byte of a 9-byte frame; the rest never comes.
        peer.write_all(&[0, 9, b'x']).await.unwrap();
        let outcome = tokio::time::timeout(WAIT, frames.next()).await.unwrap();
        let err = outcome.unwrap().unwrap_err();
        assert!(err.to_string().contains("in time"), "{err}");
        assert!(frames.get_ref().expired());
    }
}
