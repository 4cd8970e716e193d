//! The deadline for a whole request body, with a timer only for bodies that make the server wait.
//!
//! tower-http's `DeadlineBody` arms a timer for every request, before its first read. Almost
//! every request body here (a form, a TokenReview) arrives with the request head, so that timer
//! was registered and cancelled again for nothing: a tenth of a TokenReview's runtime work. This
//! body notes the deadline when the request starts and arms the timer only when a read has to
//! wait for the client. The deadline itself is the same: wall-clock time from the request's start.

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn StdError + Send + Sync>;

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyDeadlineExceeded`] when it is not complete by its
    /// deadline.
    pub(crate) struct DeadlineBody<B> {
        #[pin]
        body: B,
        deadline: Instant,
        // Armed at the first read that has to wait.
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<B> DeadlineBody<B> {
    /// `body`, which must be complete `limit` from now.
    pub(crate) fn new(body: B, limit: Duration) -> Self {
        DeadlineBody {
            body,
            deadline: Instant::now() + limit,
            timer: None,
        }
    }

    #[cfg(test)]
    fn armed(&self) -> bool {
        self.timer.is_some()
    }
}

/// The error of a body that was not complete by its deadline.
#[derive(Debug)]
pub(crate) struct BodyDeadlineExceeded;

impl fmt::Display for BodyDeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body was not received within the request read timeout")
    }
}

impl StdError for BodyDeadlineExceeded {}

impl<B> Body for DeadlineBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.timer.is_none() {
            this.timer
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        match this.timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(BodyDeadlineExceeded)))),
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    type Frames = Result<Bytes, std::io::Error>;

    async fn next<B: Body<Data = Bytes, Error = BoxError>>(
        mut body: Pin<&mut B>,
    ) -> Option<Result<Bytes, BoxError>> {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await?;
        Some(frame.map(|f| f.into_data().expect("a data frame")))
    }

    /// A body whose frames come from `receiver`, as a client sends them.
    fn sent_by(receiver: tokio::sync::mpsc::Receiver<Frames>) -> axum::body::Body {
        axum::body::Body::from_stream(futures_util::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|frame| (frame, r))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_is_already_there_arms_no_timer() {
        let mut body = std::pin::pin!(DeadlineBody::new(
            axum::body::Body::from("grant_type=password"),
            Duration::from_secs(30),
        ));
        let data = next(body.as_mut()).await.unwrap().unwrap();
        assert_eq!(data, "grant_type=password");
        assert!(next(body.as_mut()).await.is_none());
        assert!(!body.armed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_completes_fails_at_the_deadline() {
        let started = Instant::now();
        let (_sender, receiver) = tokio::sync::mpsc::channel::<Frames>(1);
        let mut body = std::pin::pin!(DeadlineBody::new(
            sent_by(receiver),
            Duration::from_secs(30)
        ));
        let error = next(body.as_mut()).await.unwrap().unwrap_err();
        assert!(error.is::<BodyDeadlineExceeded>(), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert!(body.armed());
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_start_not_from_the_first_wait() {
        let started = Instant::now();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Frames>(1);
        let mut body = std::pin::pin!(DeadlineBody::new(
            sent_by(receiver),
            Duration::from_secs(30)
        ));
        tokio::time::advance(Duration::from_secs(20)).await;
        sender.send(Ok(Bytes::from_static(b"part"))).await.unwrap();
        assert_eq!(next(body.as_mut()).await.unwrap().unwrap(), "part");
        let error = next(body.as_mut()).await.unwrap().unwrap_err();
        assert!(error.is::<BodyDeadlineExceeded>(), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
