//! The coordinator ⇄ worker protocol: length-prefixed JSON frames over the worker's
//! stdin/stdout. One task in, one report per second out — never one message per request.
//! A frame is a 4-byte big-endian length, then that many bytes of JSON.

use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted: a second's snapshot of a busy worker is tens of KiB; 64 MiB means
/// a corrupt length is refused instead of allocated.
pub const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("the other side closed the pipe")]
    Closed,
    #[error("pipe error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("frame is not valid JSON for this message: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Writes one frame and flushes it.
pub async fn write_frame<W, T>(out: &mut W, message: &T) -> Result<(), IpcError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(message)?;
    if body.len() > MAX_FRAME {
        return Err(IpcError::TooLarge(body.len()));
    }
    out.write_all(&(body.len() as u32).to_be_bytes()).await?;
    out.write_all(&body).await?;
    out.flush().await?;
    Ok(())
}

/// Reads one frame; `Closed` at a clean end of stream between frames.
pub async fn read_frame<R, T>(input: &mut R) -> Result<T, IpcError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(IpcError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(IpcError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, &vec![1u32, 2, 3]).await.unwrap();
        write_frame(&mut a, &"second".to_string()).await.unwrap();
        drop(a);
        assert_eq!(
            read_frame::<_, Vec<u32>>(&mut b).await.unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(read_frame::<_, String>(&mut b).await.unwrap(), "second");
        assert!(matches!(
            read_frame::<_, String>(&mut b).await,
            Err(IpcError::Closed)
        ));
    }

    #[tokio::test]
    async fn an_absurd_length_is_refused_not_allocated() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame::<_, String>(&mut b).await,
            Err(IpcError::TooLarge(_))
        ));
    }
}
