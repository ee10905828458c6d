//! A response body written on a blocking thread and sent as it is produced:
//! a whole-period export is never held in memory as one document.

use std::io::{self, Write};

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::store::StoreError;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// 200 with the body `write` produces. The status waits for the first
/// chunk, so a failure before it (a small document, or the first rows) is an
/// error response as any other. A client that hangs up stops the writer; a
/// writer that fails later cuts the response off (no final chunk), so a
/// client never takes a shortened document for a whole one.
pub async fn streamed<F>(content_type: &'static str, write: F) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut (dyn Write + Send)) -> io::Result<()> + Send + 'static,
{
    // Two chunks in flight at most: the writer waits for a slow client.
    let (sender, mut receiver) = mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            sender,
            buffer: Vec::with_capacity(CHUNK),
        };
        if let Err(error) = write(&mut out).and_then(|()| out.flush()) {
            let _gone = out.sender.blocking_send(Err(error));
        }
    });
    let first = match receiver.recv().await {
        Some(Ok(chunk)) => Some(Ok(chunk)),
        Some(Err(error)) => return Err(failed(error)),
        None => None,
    };
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        if let Err(error) = &chunk {
            tracing::warn!(%error, "a streamed response was cut off");
        }
        Some((chunk, receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(futures_util::stream::iter(first).chain(rest)))
}

/// The error response for a writer that failed before its first chunk: a
/// storage error keeps its meaning (503 to try again, 500 for a bug).
fn failed(error: io::Error) -> ApiError {
    let text = error.to_string();
    match error
        .into_inner()
        .map(|inner| inner.downcast::<StoreError>())
    {
        Some(Ok(store)) => ApiError::from(*store),
        _ => ApiError::Internal(text),
    }
}

struct Chunks {
    sender: mpsc::Sender<io::Result<Bytes>>,
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
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}
