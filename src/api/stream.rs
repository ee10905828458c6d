//! A response body written on a blocking thread and sent as it is produced:
//! a whole-period export is never held in memory as one document.

use std::io::{self, Write};

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// 200 with the body `write` produces. A client that hangs up stops the writer.
pub fn streamed<F>(content_type: &'static str, write: F) -> HttpResponse
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    // Two chunks in flight at most: the writer waits for a slow client.
    let (sender, receiver) = mpsc::channel::<Bytes>(2);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            sender,
            buffer: Vec::with_capacity(CHUNK),
        };
        if let Err(error) = write(&mut out).and_then(|()| out.flush()) {
            tracing::warn!(%error, "a streamed response ended early");
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body)
}

struct Chunks {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.sender
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}
