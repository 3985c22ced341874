//! Gentle on the API server: a client-side rate limit (`--qps`, `--burst`),
//! client-go's token bucket, and an overloaded server's "wait and try
//! again" (429 Too Many Requests from API Priority and Fairness, or a 5xx
//! with `Retry-After`) waited out and retried a few times, never at once
//! and never without end.
//!
//! Every request the client sends takes a token first; a retry takes one
//! too, so retries count against the same limit. When the server asks for
//! a wait, every request of the run waits with it, not only the one that
//! was answered 429: the others would only be turned away as well.
//!
//! This layer replaces kube's own retry (`Config::default_retry`), which
//! would retry a 429, 503 or 504 up to 15 times with waits of up to
//! 1000 s, or as long as the server's `Retry-After` said.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;
use tower::BoxError;

/// `--qps`'s default. A normal `diagnose` sends fewer than 30 requests, all
/// within [`DEFAULT_BURST`], so it never waits; a longer run (`scan -A`,
/// `fix` on many workloads) is held to 20 requests a second. kubectl keeps
/// client-go's 5 a second (burst 10) for its ordinary requests and allows
/// 50 (burst 300) for discovery; 5 would slow a `diagnose` by seconds.
pub const DEFAULT_QPS: &str = "20";

/// `--burst`'s default: more than a normal `diagnose` sends.
pub const DEFAULT_BURST: &str = "50";

/// How many times one request is sent again after a 429 (or a 5xx with
/// `Retry-After`): 4 tries in all. client-go allows 10; on an on-call
/// engineer's terminal, 3 waits of at most [`MAX_WAIT`] are enough to ride
/// out a short overload, and a longer one is better said than hidden.
pub const MAX_RETRIES: u32 = 3;

/// The longest wait for one `Retry-After`, whatever the server asks.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// The wait after a 429 without a `Retry-After` (seconds) header.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// The `Retry-After` (seconds) of the last 429 a request gave up on, for the
/// error's advice; `u64::MAX` while there is none.
static LAST_RETRY_AFTER: AtomicU64 = AtomicU64::new(u64::MAX);

/// The `Retry-After` of the last 429 passed on to the caller, in seconds.
pub(crate) fn last_retry_after() -> Option<u64> {
    Some(LAST_RETRY_AFTER.load(Ordering::Relaxed)).filter(|&s| s != u64::MAX)
}

/// `--qps`: a number of requests a second, 0 (no limit) or more.
pub fn parse_qps(s: &str) -> Result<f64, crate::input::Invalid> {
    let help = "give requests a second as a number, e.g. --qps 5 or --qps 0.5; --qps 0 turns the limit off";
    let qps: f64 = s.trim().parse().map_err(|_| {
        crate::input::Invalid::new(
            format!("`{}` is not a number", crate::input::shown(s)),
            help,
        )
    })?;
    if !qps.is_finite() || qps < 0.0 {
        return Err(crate::input::Invalid::new(
            format!("`{}` is not 0 or more", crate::input::shown(s)),
            help,
        ));
    }
    Ok(qps)
}

/// `--burst`: how many requests may go at once, 1 or more.
pub fn parse_burst(s: &str) -> Result<u32, crate::input::Invalid> {
    let help = "give how many requests may go at once, 1 or more, e.g. --burst 10; --qps 0 turns the limit off";
    match s.trim().parse::<u32>() {
        Ok(0) => Err(crate::input::Invalid::new(
            "a burst of 0 would let no request through",
            help,
        )),
        Ok(b) => Ok(b),
        Err(_) => Err(crate::input::Invalid::new(
            format!("`{}` is not a whole number", crate::input::shown(s)),
            help,
        )),
    }
}

/// A token bucket: `qps` tokens a second, at most `burst` at hand. Taking a
/// token never fails: when none is left it is taken on credit (the count
/// goes below zero) and the answer is when it will have come, so waiters
/// queue in turn. The time is given, never read, so the arithmetic is
/// tested without sleeping.
#[derive(Debug)]
pub(crate) struct Bucket {
    /// `(qps, burst)`; `None`: no limit.
    limit: Option<(f64, f64)>,
    tokens: f64,
    last: Instant,
    /// No request goes before this (the server asked for a wait).
    hold: Option<Instant>,
}

impl Bucket {
    /// A full bucket; `qps` 0 is no limit, and a burst of 0 counts as 1.
    pub(crate) fn new(qps: f64, burst: u32, now: Instant) -> Bucket {
        let limit = (qps.is_finite() && qps > 0.0).then(|| (qps, f64::from(burst.max(1))));
        Bucket {
            tokens: limit.map_or(0.0, |(_, burst)| burst),
            limit,
            last: now,
            hold: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some((qps, burst)) = self.limit
            && now > self.last
        {
            let elapsed = now.duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * qps).min(burst);
            self.last = now;
        }
    }

    /// Takes a token at `now`: when the request may go.
    pub(crate) fn take(&mut self, now: Instant) -> Instant {
        let mut at = now;
        if let Some((qps, _)) = self.limit {
            self.refill(now);
            self.tokens -= 1.0;
            if self.tokens < 0.0 {
                let wait = Duration::try_from_secs_f64(-self.tokens / qps).unwrap_or(Duration::MAX);
                at = later(now, wait);
            }
        }
        if let Some(hold) = self.hold {
            at = at.max(hold);
        }
        at
    }

    /// Gives back a token taken for a request that did not go.
    pub(crate) fn give_back(&mut self, now: Instant) {
        if let Some((_, burst)) = self.limit {
            self.refill(now);
            self.tokens = (self.tokens + 1.0).min(burst);
        }
    }

    /// No request goes before `until`.
    pub(crate) fn hold_until(&mut self, until: Instant) {
        self.hold = Some(self.hold.map_or(until, |h| h.max(until)));
    }
}

/// `now + wait`, or a year on when that does not fit.
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// How long the server asked to wait before `response`'s request is sent
/// again, when it is to be sent again: a 429 (any method: API Priority and
/// Fairness turns a request away before it does anything), `Retry-After`
/// seconds or [`DEFAULT_WAIT`]; a 5xx with `Retry-After`, for a GET or HEAD
/// only (a write may have been done). Capped at [`MAX_WAIT`].
pub(crate) fn retry_wait(
    method: &Method,
    status: StatusCode,
    headers: &http::HeaderMap,
) -> Option<Duration> {
    let asked = retry_after(headers);
    let wait = match status {
        StatusCode::TOO_MANY_REQUESTS => asked.map_or(DEFAULT_WAIT, Duration::from_secs),
        s if s.is_server_error() && (method == Method::GET || method == Method::HEAD) => {
            Duration::from_secs(asked?)
        }
        _ => return None,
    };
    Some(wait.min(MAX_WAIT))
}

/// `Retry-After` in seconds (its HTTP-date form is not used by the API
/// server, and counts as none).
fn retry_after(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A client for `config` whose requests go through a [`Throttle`]: at most
/// `qps` a second after a burst of `burst` (`qps` 0: no limit), and no wait
/// past `timeout`.
pub(crate) fn client(
    mut config: kube::Config,
    qps: f64,
    burst: u32,
    timeout: Option<Duration>,
) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    // The throttle waits out and retries what kube's own retry would (a
    // 429, a 503 or 504 that says how long to wait), within bounds.
    config.default_retry = false;
    Ok(kube::client::ClientBuilder::try_from(config)
        .context("create the Kubernetes client")?
        .with_layer(&Throttle::new(qps, burst, timeout))
        .build())
}

/// The tower layer: the rate limit and the retries, for one client.
#[derive(Clone)]
pub(crate) struct Throttle {
    shared: Arc<Shared>,
}

struct Shared {
    bucket: Mutex<Bucket>,
    /// `--request-timeout`: no wait goes past it.
    timeout: Option<Duration>,
}

impl Throttle {
    /// `qps` 0: no rate limit (429s are still waited out); `timeout`: the
    /// bound on one request, waits included.
    pub(crate) fn new(qps: f64, burst: u32, timeout: Option<Duration>) -> Throttle {
        Throttle {
            shared: Arc::new(Shared {
                bucket: Mutex::new(Bucket::new(qps, burst, Instant::now())),
                timeout,
            }),
        }
    }
}

impl<S> tower::Layer<S> for Throttle {
    type Service = Throttled<S>;
    fn layer(&self, inner: S) -> Throttled<S> {
        Throttled {
            inner: Arc::new(Mutex::new(inner)),
            shared: self.shared.clone(),
        }
    }
}

/// The service [`Throttle`] wraps around kube's.
pub(crate) struct Throttled<S> {
    /// Shared so that a retry, made from the request's own future, can
    /// send again.
    inner: Arc<Mutex<S>>,
    shared: Arc<Shared>,
}

impl<S> Clone for Throttled<S> {
    fn clone(&self) -> Self {
        Throttled {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<Request<Body>> for Throttled<S>
where
    S: tower::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The inner service's readiness is awaited in `send`, request by
        // request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move { shared.send(&inner, req).await })
    }
}

/// Sends `req` through `inner` once.
async fn send_once<S, B>(inner: &Mutex<S>, req: Request<Body>) -> Result<Response<B>, BoxError>
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    let mut req = Some(req);
    let call = std::future::poll_fn(|cx| {
        let mut svc = inner.lock().unwrap_or_else(PoisonError::into_inner);
        match svc.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(())) => match req.take() {
                Some(r) => Poll::Ready(Ok(svc.call(r))),
                None => Poll::Ready(Err(BoxError::from("request already sent"))),
            },
        }
    })
    .await?;
    call.await.map_err(Into::into)
}

/// A copy of `req` to send again, when its body can be replayed (kube's
/// bodies are bytes in memory; a streamed one cannot).
fn replayable(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

impl Shared {
    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the request's turn: a token, and the end of any wait the
    /// server asked for. Past `deadline` it does not wait: the request fails
    /// as timed out, as client-go's does.
    async fn turn(&self, deadline: Option<Instant>) -> Result<(), BoxError> {
        let now = Instant::now();
        let at = self.bucket().take(now);
        if let Some(deadline) = deadline
            && at > deadline
        {
            self.bucket().give_back(now);
            return Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the wait for a turn to send (--qps and --burst, or the API server's Retry-After) would outlast --request-timeout",
            )));
        }
        if at > now {
            tracing::debug!(wait = ?at.duration_since(now), "client-side rate limit: waiting for a turn");
        }
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    async fn send<S, B>(
        &self,
        inner: &Mutex<S>,
        mut req: Request<Body>,
    ) -> Result<Response<B>, BoxError>
    where
        S: tower::Service<Request<Body>, Response = Response<B>>,
        S::Error: Into<BoxError>,
    {
        let deadline = self.timeout.map(|t| later(Instant::now(), t));
        let mut retries = 0;
        loop {
            self.turn(deadline).await?;
            let method = req.method().clone();
            let again = (retries < MAX_RETRIES).then(|| replayable(&req)).flatten();
            let response = send_once(inner, req).await?;
            let status = response.status();
            let Some(wait) = retry_wait(&method, status, response.headers()) else {
                return Ok(response);
            };
            let until = later(Instant::now(), wait);
            let Some(next) = again.filter(|_| deadline.is_none_or(|d| until <= d)) else {
                if status == StatusCode::TOO_MANY_REQUESTS {
                    let asked = retry_after(response.headers()).unwrap_or(DEFAULT_WAIT.as_secs());
                    LAST_RETRY_AFTER.store(asked, Ordering::Relaxed);
                }
                return Ok(response);
            };
            tracing::info!(
                "the API server answered {status} to {method} {}: waiting {wait:?} as it asked, then trying again ({} of {MAX_RETRIES})",
                crate::redact::redact(&next.uri().to_string()),
                retries + 1
            );
            // Every request waits: the others would be turned away too.
            self.bucket().hold_until(until);
            retries += 1;
            req = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(now: Instant, ms: u64) -> Instant {
        now + Duration::from_millis(ms)
    }

    /// Takes `n` tokens at `now`, each of which lets its request go at once.
    fn all_go_now(b: &mut Bucket, n: usize, now: Instant) {
        for i in 0..n {
            assert_eq!(b.take(now), now, "token {i}: {b:?}");
        }
    }

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_paces_at_qps() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, 10, t0);
        all_go_now(&mut b, 10, t0);
        // The 11th waits for one token (200 ms at 5 a second), the 12th for two.
        assert_eq!(b.take(t0), after(t0, 200));
        assert_eq!(b.take(t0), after(t0, 400));
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 3, t0);
        for _ in 0..3 {
            b.take(t0);
        }
        // An hour idle refills 3, not 36000.
        let t1 = t0 + Duration::from_secs(3600);
        all_go_now(&mut b, 3, t1);
        assert_eq!(b.take(t1), after(t1, 100));
        // Half a second on: the token owed is paid, and of the 4 more that
        // came, 3 (the burst) are at hand.
        let t2 = after(t1, 500);
        all_go_now(&mut b, 3, t2);
        assert_eq!(b.take(t2), after(t2, 100));
    }

    #[test]
    fn a_token_given_back_is_taken_again() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1.0, 1, t0);
        assert_eq!(b.take(t0), t0);
        assert_eq!(b.take(t0), after(t0, 1000));
        b.give_back(t0);
        assert_eq!(b.take(t0), after(t0, 1000));
    }

    #[test]
    fn qps_zero_is_no_limit_but_a_hold_still_holds() {
        let t0 = Instant::now();
        let mut b = Bucket::new(0.0, 0, t0);
        all_go_now(&mut b, 1000, t0);
        b.hold_until(after(t0, 3000));
        b.hold_until(after(t0, 1000));
        assert_eq!(b.take(t0), after(t0, 3000), "the later hold wins");
        assert_eq!(b.take(after(t0, 5000)), after(t0, 5000));
    }

    #[test]
    fn a_tiny_qps_does_not_overflow() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1e-300, 1, t0);
        assert_eq!(b.take(t0), t0);
        assert!(b.take(t0) > t0);
    }

    fn headers(retry_after: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn what_is_retried_and_after_how_long() {
        let s = Duration::from_secs;
        let (get, post) = (Method::GET, Method::POST);
        let tmr = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(retry_wait(&get, tmr, &headers(Some("2"))), Some(s(2)));
        assert_eq!(retry_wait(&post, tmr, &headers(Some("2"))), Some(s(2)));
        assert_eq!(retry_wait(&get, tmr, &headers(None)), Some(DEFAULT_WAIT));
        assert_eq!(
            retry_wait(&get, tmr, &headers(Some("3600"))),
            Some(MAX_WAIT)
        );
        assert_eq!(
            retry_wait(&get, tmr, &headers(Some("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Some(DEFAULT_WAIT)
        );
        let busy = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(retry_wait(&get, busy, &headers(Some("1"))), Some(s(1)));
        assert_eq!(retry_wait(&get, busy, &headers(None)), None);
        assert_eq!(
            retry_wait(&post, busy, &headers(Some("1"))),
            None,
            "a write may have been done"
        );
        assert_eq!(retry_wait(&get, StatusCode::OK, &headers(Some("1"))), None);
        assert_eq!(
            retry_wait(&get, StatusCode::NOT_FOUND, &headers(Some("1"))),
            None
        );
    }

    #[test]
    fn flags_are_checked() {
        assert_eq!(parse_qps("0").unwrap(), 0.0);
        assert_eq!(parse_qps("2.5").unwrap(), 2.5);
        for bad in ["-1", "NaN", "inf", "x", ""] {
            assert!(parse_qps(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_burst("1").unwrap(), 1);
        for bad in ["0", "-1", "1.5", "x"] {
            assert!(parse_burst(bad).is_err(), "{bad}");
        }
        let e = parse_burst("0").unwrap_err().to_string();
        assert!(e.contains("no request"), "{e}");
    }

    /// A fake inner service: answers each request with the next status
    /// (and `Retry-After`) of `answers`, the last one for ever; counts the
    /// calls and when they came.
    #[derive(Clone)]
    struct Fake {
        answers: Vec<(u16, Option<&'static str>)>,
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    impl tower::Service<Request<Body>> for Fake {
        type Response = Response<()>;
        type Error = BoxError;
        type Future = BoxFuture<Result<Response<()>, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<Body>) -> Self::Future {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Instant::now());
            let (code, after) = *self
                .answers
                .get(calls.len() - 1)
                .or(self.answers.last())
                .unwrap();
            let mut r = Response::builder().status(code);
            if let Some(a) = after {
                r = r.header("retry-after", a);
            }
            let r = r.body(()).unwrap();
            Box::pin(async move { Ok(r) })
        }
    }

    fn fake(answers: &[(u16, Option<&'static str>)]) -> (Fake, Arc<Mutex<Vec<Instant>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        (
            Fake {
                answers: answers.to_vec(),
                calls: calls.clone(),
            },
            calls,
        )
    }

    async fn get(svc: &mut Throttled<Fake>, method: Method) -> u16 {
        use tower::Service as _;
        let mut req = Request::new(Body::from(b"{}".to_vec()));
        *req.method_mut() = method;
        svc.call(req).await.unwrap().status().as_u16()
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_waited_out_as_asked_and_retried_a_bounded_number_of_times() {
        use tower::Layer as _;
        let (inner, calls) = fake(&[(429, Some("2")), (429, None), (200, None)]);
        let mut svc = Throttle::new(0.0, 1, None).layer(inner);
        let t0 = Instant::now();
        assert_eq!(get(&mut svc, Method::POST).await, 200);
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[1] - t0, Duration::from_secs(2), "Retry-After: 2");
        assert_eq!(calls[2] - calls[1], DEFAULT_WAIT, "no Retry-After: 1 s");

        let (inner, calls) = fake(&[(429, Some("3600"))]);
        let mut svc = Throttle::new(0.0, 1, None).layer(inner);
        let t0 = Instant::now();
        assert_eq!(get(&mut svc, Method::GET).await, 429);
        assert_eq!(calls.lock().unwrap().len() as u32, MAX_RETRIES + 1);
        assert_eq!(
            Instant::now() - t0,
            MAX_WAIT * MAX_RETRIES,
            "each wait capped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_5xx_is_retried_only_with_retry_after_and_only_for_a_read() {
        use tower::Layer as _;
        let (inner, calls) = fake(&[(503, Some("1")), (200, None)]);
        let mut svc = Throttle::new(0.0, 1, None).layer(inner);
        assert_eq!(get(&mut svc, Method::GET).await, 200);
        assert_eq!(calls.lock().unwrap().len(), 2);

        let (inner, calls) = fake(&[(503, Some("1")), (200, None)]);
        let mut svc = Throttle::new(0.0, 1, None).layer(inner);
        assert_eq!(get(&mut svc, Method::PATCH).await, 503);
        assert_eq!(calls.lock().unwrap().len(), 1);

        let (inner, calls) = fake(&[(500, None), (200, None)]);
        let mut svc = Throttle::new(0.0, 1, None).layer(inner);
        assert_eq!(get(&mut svc, Method::GET).await, 500);
        assert_eq!(calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_goes_past_the_request_timeout() {
        use tower::Layer as _;
        // Retry-After 5 within a 3 s timeout: the 429 is the answer, at once.
        let (inner, calls) = fake(&[(429, Some("5")), (200, None)]);
        let mut svc = Throttle::new(0.0, 1, Some(Duration::from_secs(3))).layer(inner);
        let t0 = Instant::now();
        assert_eq!(get(&mut svc, Method::GET).await, 429);
        assert_eq!(calls.lock().unwrap().len(), 1);
        assert_eq!(Instant::now(), t0);

        // At 1 a second with a 1.5 s timeout, the 3rd request at once would
        // wait 2 s for its token: it times out instead of waiting.
        let (inner, calls) = fake(&[(200, None)]);
        let svc = Throttle::new(1.0, 1, Some(Duration::from_millis(1500))).layer(inner);
        let (mut a, mut b, mut c) = (svc.clone(), svc.clone(), svc);
        let req = || Request::new(Body::empty());
        use tower::Service as _;
        let (ra, rb, rc) = tokio::join!(a.call(req()), b.call(req()), c.call(req()));
        assert!(ra.is_ok() && rb.is_ok());
        let e = rc.unwrap_err();
        let io = e.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert!(io.to_string().contains("--request-timeout"), "{io}");
        assert_eq!(calls.lock().unwrap().len(), 2);
    }

    /// A client through the throttle to a fake API server that answers
    /// `GET /api/v1/namespaces/shop/secrets/regcred` with `answers` in turn
    /// (status, `Retry-After`), the last for ever.
    async fn client_to(
        answers: &'static [(u16, Option<&'static str>)],
    ) -> (kube::Client, Arc<std::sync::Mutex<Vec<String>>>) {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let (url, seen) = crate::api::tests::fake_api(move |_| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let (code, after) = *answers.get(n).or(answers.last()).unwrap();
            let headers = after
                .map(|a| format!("Retry-After: {a}\r\n"))
                .unwrap_or_default();
            let body = if code == 200 {
                r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"regcred","namespace":"shop"}}"#
            } else {
                // What API Priority and Fairness answers: plain text.
                "Too many requests, please try again later."
            };
            (code, headers, body.to_string())
        })
        .await;
        let config = kube::Config::new(url.parse().unwrap());
        (client(config, 20.0, 50, None).unwrap(), seen)
    }

    async fn get_regcred(
        client: &kube::Client,
    ) -> Result<Option<serde_json::Value>, crate::errors::ApiError> {
        crate::api::get_opt_as::<k8s_openapi::api::core::v1::Secret, serde_json::Value>(
            client,
            Some("shop"),
            "regcred",
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_fake_api_server_that_answers_429_twice_is_answered_on_the_third_try() {
        let (client, seen) = client_to(&[(429, Some("1")), (429, Some("1")), (200, None)]).await;
        let started = Instant::now();
        let secret = get_regcred(&client).await.unwrap().unwrap();
        assert_eq!(secret["metadata"]["name"], "regcred");
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "waited as asked"
        );
    }

    #[tokio::test]
    async fn a_fake_api_server_that_always_answers_429_is_tried_a_bounded_number_of_times() {
        let (client, seen) = client_to(&[(429, Some("0"))]).await;
        let e = get_regcred(&client).await.unwrap_err();
        assert_eq!(seen.lock().unwrap().len() as u32, MAX_RETRIES + 1);
        assert_eq!(e.code, Some(429));
        let text = e.to_string();
        assert!(
            text.starts_with("get secret shop/regcred: Too many requests"),
            "{text}"
        );
        assert!(
            text.contains("(429)") && text.contains("overloaded"),
            "{text}"
        );
        assert!(text.contains("--qps"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_at_qps_after_the_burst() {
        use tower::{Layer as _, Service as _};
        let (inner, calls) = fake(&[(200, None)]);
        let mut svc = Throttle::new(10.0, 5, None).layer(inner);
        let t0 = Instant::now();
        for _ in 0..8 {
            svc.call(Request::new(Body::empty())).await.unwrap();
        }
        let calls = calls.lock().unwrap().clone();
        assert!(
            calls[..5].iter().all(|&t| t == t0),
            "the burst goes at once"
        );
        assert_eq!(
            calls[7] - t0,
            Duration::from_millis(300),
            "then 10 a second"
        );
    }
}
