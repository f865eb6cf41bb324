//! A response body that holds one of the worker's HTTP/1.1 connection slots until it is read
//! to the end (or dropped): the connection is busy until then.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::OwnedSemaphorePermit;

pub(super) struct Held<B> {
    body: B,
    _slot: OwnedSemaphorePermit,
}

impl<B> Held<B> {
    pub(super) fn new(body: B, slot: OwnedSemaphorePermit) -> Held<B> {
        Held { body, _slot: slot }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Held<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
