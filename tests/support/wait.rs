//! Waiting for a condition, never for a fixed time: a test goes on as soon as what it waits for
//! holds, and fails naming it when it does not within the limit.

use std::time::{Duration, Instant};

/// How long any awaited condition may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `condition` every 10 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`wait_until`] a synchronous condition holds, for up to [`WAIT`].
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_until(WAIT, what, || {
        let ok = condition();
        async move { ok }
    })
    .await
}

/// Polls `observe` until it returns `expected`, for up to [`WAIT`]; then fails showing both.
pub async fn until_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &T,
    mut observe: impl FnMut() -> T,
) {
    let deadline = Instant::now() + WAIT;
    let mut seen = observe();
    while seen != *expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        seen = observe();
    }
    assert_eq!(&seen, expected, "{what}");
}
