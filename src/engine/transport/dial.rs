//! Opening connections: the TCP socket (source address, SO_LINGER, TCP_NODELAY) and the TLS
//! session over it, and the error kind each failure to do so counts as.

use crate::metrics::ErrorKind;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How to open a TCP connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dial {
    /// Local address to connect from (`--source-ips`).
    pub source: Option<std::net::IpAddr>,
    /// SO_LINGER 0: close with an RST, leaving no TIME_WAIT.
    pub linger0: bool,
    /// The network to emulate on this connection, and a seed for its jitter.
    pub network: Option<(super::network::Profile, u64)>,
    /// Which of the target's addresses to connect to (None: the first it resolved to).
    pub to: Option<std::net::SocketAddr>,
}

/// Opens a TCP connection (TCP_NODELAY on).
pub async fn tcp(addr: std::net::SocketAddr, d: Dial) -> Result<TcpStream, ErrorKind> {
    open(addr, d).await.map_err(|e| classify_io(&e, true))
}

async fn open(addr: std::net::SocketAddr, d: Dial) -> std::io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = d.source {
        // Let connect() pick the port, so each source address has its own full port range.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on a valid socket with a pointer to a local c_int.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        sock.bind(std::net::SocketAddr::new(ip, 0))?;
    }
    if d.linger0 {
        // SO_LINGER with a zero timeout: close() sends an RST at once and never blocks.
        use std::os::fd::AsRawFd;
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a valid socket with a pointer to a local linger struct.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &l as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    let s = sock.connect(addr).await?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// The TLS handshake over an open stream, with the client configuration for the wanted ALPN.
pub async fn tls<I: AsyncRead + AsyncWrite + Unpin>(
    cfg: Option<&Arc<rustls::ClientConfig>>,
    host: &str,
    tcp: I,
) -> Result<tokio_rustls::client::TlsStream<I>, ErrorKind> {
    let cfg = cfg.cloned().ok_or(ErrorKind::Tls)?;
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| ErrorKind::Tls)?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(t) => classify_tls(t),
                None => match e.kind() {
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other => {
                        ErrorKind::TlsHandshake
                    }
                    _ => classify_io(&e, true),
                },
            }
        })
}

/// A TLS failure's kind: what is wrong with the server's certificate (expired or not yet valid,
/// issued by a CA this client does not trust, not for the host name asked for, or otherwise
/// invalid), or a handshake that could not be completed (no common version, cipher suite or
/// ALPN protocol, an alert from the server, an answer that is not TLS).
pub fn classify_tls(e: &rustls::Error) -> ErrorKind {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => ErrorKind::TlsExpired,
            C::UnknownIssuer => ErrorKind::TlsUnknownCa,
            C::NotValidForName | C::NotValidForNameContext { .. } => ErrorKind::TlsHostname,
            _ => ErrorKind::TlsCert,
        },
        _ => ErrorKind::TlsHandshake,
    }
}

/// An I/O error's kind: while connecting, anything but a timeout is `connect`; later, `reset`.
pub fn classify_io(e: &std::io::Error, connecting: bool) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::TimedOut => ErrorKind::Timeout,
        K::ConnectionRefused | K::AddrNotAvailable | K::AddrInUse => ErrorKind::Connect,
        _ if connecting => ErrorKind::Connect,
        _ => ErrorKind::Reset,
    }
}
