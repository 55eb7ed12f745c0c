//! Plugins through the real host, live where this machine can serve it (in progress).
