//! A TCP proxy on loopback that a test can cut (closing every connection
//! and refusing new ones), restore, and point at another upstream: a
//! network fault between the stats service and the registry.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Control {
    upstream: Mutex<SocketAddr>,
    /// Whether connections are let through.
    open: watch::Sender<bool>,
    /// Bumped by every cut; connections of older generations close.
    generation: watch::Sender<u64>,
    /// While set, connections forward nothing but stay open (a stalled
    /// network); connections stalled once stay stalled.
    stalled: watch::Sender<bool>,
    /// Connections accepted so far.
    accepted: watch::Sender<u64>,
}

/// The proxy; dropped, it stops accepting.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    control: Arc<Control>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let control = Arc::new(Control {
            upstream: Mutex::new(upstream),
            open: watch::channel(true).0,
            generation: watch::channel(0).0,
            stalled: watch::channel(false).0,
            accepted: watch::channel(0).0,
        });
        let c = control.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !*c.open.borrow() {
                    drop(inbound);
                    continue;
                }
                c.accepted.send_modify(|n| *n += 1);
                let upstream = *c.upstream.lock().expect("proxy lock");
                let mut generation = c.generation.subscribe();
                let mut stalled = c.stalled.subscribe();
                // A connection accepted during a stall is frozen for good.
                let frozen = *stalled.borrow();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut a, mut b) = (inbound, outbound);
                    if !frozen {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut a, &mut b) => return,
                            _ = generation.changed() => return,
                            _ = stalled.wait_for(|s| *s) => {}
                        }
                    }
                    // Stalled: hold both sockets, forward nothing.
                    let _ = generation.changed().await;
                    drop((a, b));
                });
            }
        });
        Self {
            addr,
            control,
            task,
        }
    }

    /// `http://` endpoint of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.control.open.send_replace(false);
        self.control.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.control.open.send_replace(true);
    }

    /// Freezes every connection, current and new: open, but silent.
    pub fn stall(&self) {
        self.control.stalled.send_replace(true);
    }

    /// New connections forward again; frozen ones stay frozen.
    pub fn unstall(&self) {
        self.control.stalled.send_replace(false);
    }

    /// Waits until more than `n` connections have been accepted in all.
    pub async fn wait_accepted_more_than(&self, n: u64) {
        let mut rx = self.control.accepted.subscribe();
        let _ = rx.wait_for(|a| *a > n).await;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        *self.control.accepted.borrow()
    }

    /// Sends new connections to `upstream` and closes the current ones.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.control.upstream.lock().expect("proxy lock") = upstream;
        self.control.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.control.generation.send_modify(|g| *g += 1);
    }
}
