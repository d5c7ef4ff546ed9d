//! A TCP proxy the test controls, to make a service unreachable for a while: [`TcpProxy::cut`]
//! drops every open connection and refuses new ones (they are accepted and closed at once)
//! until [`TcpProxy::restore`]; [`TcpProxy::stall`] keeps connections open but forwards nothing
//! (a network that silently stopped, or a peer that stopped answering) until
//! [`TcpProxy::resume`].

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::JoinHandle,
};

/// Forwards `127.0.0.1:<port>` to an upstream address; stops when dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    /// `true` while cut.
    cut: watch::Sender<bool>,
    /// `true` while stalled.
    stalled: watch::Sender<bool>,
    /// Connections forwarded so far, and those refused or dropped by a cut.
    accepted: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    ///
    /// # Errors
    /// No local port can be bound.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(false);
        let (stalled, _) = watch::channel(false);
        let accepted = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            cut.clone(),
            stalled.clone(),
            accepted.clone(),
            dropped.clone(),
        ));
        Ok(Self {
            addr,
            cut,
            stalled,
            accepted,
            dropped,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// Keeps every connection open but forwards no byte either way until [`Self::resume`]
    /// (bytes read meanwhile are held, then delivered).
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Forwards again after [`Self::stall`].
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections dropped by a cut or refused during one.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    cut: watch::Sender<bool>,
    stalled: watch::Sender<bool>,
    accepted: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if *cut.borrow() {
            dropped.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        accepted.fetch_add(1, Ordering::Relaxed);
        let mut cut_rx = cut.subscribe();
        let (up, down) = (stalled.subscribe(), stalled.subscribe());
        let dropped = dropped.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                () = pump(client_read, server_write, up) => {}
                () = pump(server_read, client_write, down) => {}
                _ = cut_rx.wait_for(|cut| *cut) => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Both sockets close here, mid-conversation when cut.
        });
    }
}

/// Copies bytes from `from` to `to` until either side closes, holding them while stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stalled: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
