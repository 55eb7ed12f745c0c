//! The server's accept loop, with the bounds `axum::serve` lacks: a cap on open
//! connections, a deadline for each request's header (and for a connection idle between
//! requests), and one for its body. Without them ~20,000 connections that never finish a
//! header filled the process's file descriptors and `/healthz` stopped answering.
//!
//! At the cap, a new connection closes the oldest one that has no request in flight (one
//! still sending its header, or idle between requests), as nginx reuses its idle
//! connections when it runs out: a client that is mid-request is never cut off for a
//! stranger's sake, and a flood of connections that never send anything cannot lock out
//! the next real request. Only when every connection has a request in flight is the new one
//! closed at once.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use futures::future::BoxFuture;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The bounds on connections and requests (`limits:` in the config).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// A request's header must arrive whole within this, counted from when the server
    /// starts waiting for it: a connection idle between requests closes after it too.
    pub header_timeout: Duration,
    /// A request's body must arrive whole within this.
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(15),
        }
    }
}

/// Reads the whole request body within `limit` (the body timeout) before any handler sees
/// it, so a client that sends its body a byte at a time cannot hold a handler, and the size
/// cap applies as it arrives.
pub async fn read_body_in_time(
    limit: Duration,
    max_bytes: usize,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(limit, axum::body::to_bytes(body, max_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return super::error::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {max_bytes} bytes, or cut short"),
            );
        }
        Err(_) => {
            return super::error::error(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {} s", limit.as_secs_f64()),
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The open connections, oldest first, each with what it takes to close it.
#[derive(Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Connection>>,
}

struct Connection {
    /// Requests in flight (from the header read to the response body handed over).
    busy: Arc<AtomicUsize>,
    /// Told when the connection is to close to make room.
    evict: Arc<Notify>,
    /// Already told, so the next newcomer picks another.
    evicted: bool,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for one more under `cap`: false if every open connection is busy.
    fn make_room(&self, cap: usize) -> bool {
        let mut open = self.lock();
        let closing = open.values().filter(|c| c.evicted).count();
        if open.len() - closing < cap {
            return true;
        }
        match open
            .values_mut()
            .find(|c| !c.evicted && c.busy.load(Ordering::SeqCst) == 0)
        {
            Some(idle) => {
                idle.evicted = true;
                idle.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registered {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish their requests (as `axum::serve`'s graceful shutdown does).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: axum::serve::Listener,
{
    let connections = Arc::new(Connections::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (closed_tx, closed_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let (io, _addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        if !connections.make_room(limits.max_connections) {
            // Every connection is mid-request: this one is closed unanswered.
            drop(io);
            continue;
        }
        next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        connections.lock().insert(
            next_id,
            Connection {
                busy: busy.clone(),
                evict: evict.clone(),
                evicted: false,
            },
        );
        let registered = Registered {
            id: next_id,
            connections: connections.clone(),
        };
        let service = Tracked {
            inner: TowerToHyperService::new(router.clone()),
            busy: busy.clone(),
        };
        let (mut stop, closed) = (stop_rx.clone(), closed_rx.clone());
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _registered = registered;
            let _closed = closed;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    // Dropping the connection closes it. A request that arrived since it
                    // was picked is let finish (the cap is exceeded by one meanwhile).
                    _ = evict.notified(), if !stopping => {
                        if busy.load(Ordering::SeqCst) == 0 {
                            break;
                        }
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    changed = stop.changed(), if !stopping => {
                        stopping = true;
                        if changed.is_ok() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(closed_rx);
    closed_tx.closed().await;
}

/// The router as hyper calls it, counting the requests in flight on its connection until
/// each response's body has been handed over whole.
struct Tracked {
    inner: TowerToHyperService<Router>,
    busy: Arc<AtomicUsize>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = Busy::enter(self.busy.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _busy: guard,
            }))
        })
    }
}

/// One request in flight, until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight until hyper drops it.
pub struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        HttpBody::poll_frame(Pin::new(&mut self.inner), cx)
    }

    fn is_end_stream(&self) -> bool {
        HttpBody::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        HttpBody::size_hint(&self.inner)
    }
}
