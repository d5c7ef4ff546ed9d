//! This test's service addresses, and its URLs pointed through a [`crate::proxy`] instead.

use crate::TestEnv;

impl TestEnv {
    /// This test's `DATABASE_URL` with `addr` as the server, e.g. a [`crate::proxy`].
    pub fn database_url_via(&self, addr: std::net::SocketAddr) -> anyhow::Result<String> {
        url_via(&self.database_url, addr)
    }

    /// The PostgreSQL server's address, for a [`crate::proxy`] in front of it.
    pub async fn database_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        server_addr(&self.database_url, 5432).await
    }

    /// This test's `AMQP_URL` with `addr` as the broker, e.g. a [`crate::proxy`].
    pub fn amqp_url_via(&self, addr: std::net::SocketAddr) -> anyhow::Result<String> {
        url_via(&self.amqp_url, addr)
    }

    /// RabbitMQ's address, for a [`crate::proxy`] in front of it.
    pub async fn amqp_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        server_addr(&self.amqp_url, 5672).await
    }
}

/// `url` with `addr` as its host and port.
fn url_via(url: &str, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url)?;
    url.set_host(Some(&addr.ip().to_string()))?;
    url.set_port(Some(addr.port()))
        .map_err(|()| anyhow::anyhow!("cannot set a port on {}", url.scheme()))?;
    Ok(url.to_string())
}

/// The socket address `url` points at.
async fn server_addr(url: &str, default_port: u16) -> anyhow::Result<std::net::SocketAddr> {
    let url = url::Url::parse(url)?;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port().unwrap_or(default_port);
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host}:{port} does not resolve"))
}
