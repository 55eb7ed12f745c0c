//! What every handler sees.

use super::config::ServerConfig;
use super::outbox::Outbox;
use super::runs::Runs;
use std::sync::Arc;

pub struct App {
    pub config: ServerConfig,
    pub runs: Arc<Runs>,
    /// Chat results still to be posted.
    pub outbox: Outbox,
}
