//! WebSocket: the upgrade handshake (RFC 6455, by tokio-tungstenite) over the client's own
//! stream — TCP, the emulated network when the client has one, TLS for a `https` target
//! (`wss://`) — and the error kind of each way it can fail. What is sent and received after the
//! open is the session's (`session::stream`).

use super::dial::{self, classify_io};
use super::{network, Dial, Failed};
use crate::engine::compile::Program;
use crate::metrics::ErrorKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite;

/// Any stream a WebSocket can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// Opens a WebSocket to `path_and_query` on the target, with `headers`: the connection, then
/// the upgrade. A refused upgrade is `ws_handshake` with the status the server answered.
pub async fn open(
    prog: &Program,
    d: Dial,
    path_and_query: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
) -> Result<Ws, Failed> {
    let t = &prog.target;
    let tcp = dial::tcp(d.to.unwrap_or(t.addr), d)
        .await
        .map_err(Failed::early)?;
    let mut io: Box<dyn Io> = match d.network {
        None => Box::new(tcp),
        Some((profile, seed)) => Box::new(network::shape(tcp, profile, seed).await),
    };
    if t.https {
        io = Box::new(
            dial::tls(prog.tls.as_ref(), &t.host, io)
                .await
                .map_err(Failed::early)?,
        );
    }
    let scheme = if t.https { "wss" } else { "ws" };
    let url = format!("{scheme}://{}{path_and_query}", t.authority);
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
        .map_err(|_| Failed::early(ErrorKind::Protocol))?;
    for (name, value) in headers {
        req.headers_mut().insert(name.clone(), value.clone());
    }
    match tokio_tungstenite::client_async(req, io).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(Failed {
            kind: ErrorKind::WsHandshake,
            head_at: Some(std::time::Instant::now()),
            status: Some(resp.status().as_u16()),
            bytes_in: 0,
            unprocessed: false,
        }),
        Err(tungstenite::Error::Io(e)) => Err(Failed::early(classify_io(&e, false))),
        Err(_) => Err(Failed::early(ErrorKind::WsHandshake)),
    }
}
