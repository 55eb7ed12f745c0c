//! The chat platforms the server speaks. A new platform is a file beside this one that
//! implements [`Platform`], a section in the server's config, and a line in each list here.

use super::mattermost::{self, Mattermost};
use super::platform::Platform;
use super::slack::{self, Slack};
use crate::serve::config::ServerConfig;
use std::sync::Arc;
use utoipa::OpenApi;

/// The platforms this config sets up (each has a section in it); `history`, when the
/// server has one, is where a history shared with other servers also remembers the signed
/// requests taken (so a replay to another replica is refused too).
pub fn configured(
    config: &ServerConfig,
    history: Option<Arc<dyn crate::serve::store::Store>>,
) -> Vec<Arc<dyn Platform>> {
    let mut platforms: Vec<Arc<dyn Platform>> = Vec::new();
    if let Some(c) = &config.slack {
        let mut slack = Slack::new(c.clone());
        if let Some(store) = history.filter(|s| s.shared()) {
            slack.share_seen(store);
        }
        platforms.push(Arc::new(slack));
    }
    if let Some(c) = &config.mattermost {
        platforms.push(Arc::new(Mattermost::new(c.clone())));
    }
    platforms
}

/// Every platform's name, configured or not (an endpoint of one that is not configured
/// says so).
pub const NAMES: [&str; 2] = ["slack", "mattermost"];

/// The OpenAPI description of every platform's endpoints, configured or not.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = slack::Doc::openapi();
    doc.merge(mattermost::Doc::openapi());
    doc
}
