//! The chat posts not yet done: each waits for its run to end, then posts the result to the
//! chat's response URL. They are counted so that shutdown can let them finish, and a run
//! interrupted by the shutdown is still reported in its chat.

use serde_json::Value;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Outbox {
    pending: watch::Sender<usize>,
    http: reqwest::Client,
}

impl Outbox {
    /// Posts with `http` (no redirects: an allowed URL must not send the post elsewhere).
    pub fn new(http: reqwest::Client) -> Outbox {
        Outbox {
            pending: watch::Sender::new(0),
            http,
        }
    }

    /// Runs `post` (which waits for whatever it reports) as a pending post.
    pub fn spawn(&self, post: impl Future<Output = ()> + Send + 'static) {
        self.pending.send_modify(|n| *n += 1);
        let pending = self.pending.clone();
        tokio::spawn(async move {
            post.await;
            pending.send_modify(|n| *n -= 1);
        });
    }

    /// The client posts go out with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Waits up to `limit` for every post to be done; how many were not.
    pub async fn settle(&self, limit: Duration) -> usize {
        let mut pending = self.pending.subscribe();
        let _ = tokio::time::timeout(limit, pending.wait_for(|n| *n == 0)).await;
        *self.pending.borrow()
    }
}

/// Posts a message as JSON. Slack's response URLs take 5 posts in 30 minutes, so a failure
/// is retried twice with a pause, then logged.
pub async fn post(http: &reqwest::Client, url: &str, body: &Value) {
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(attempt * 2)).await;
        }
        match http.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => eprintln!("warning: posting to the response_url: HTTP {}", r.status()),
            Err(e) => eprintln!("warning: posting to the response_url: {e}"),
        }
    }
}
