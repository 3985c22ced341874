//! What the sandbox's servers (API server, registry, ECR API) share: a
//! task that accepts connections until it is told to stop, and, for the
//! ones built on hyper, the HTTP/1.1 accept loop itself.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// A running server's accept task. [`ServerTask::shutdown`] asks it to stop
/// and waits; dropping it aborts the task (and with it every connection).
pub struct ServerTask {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Spawns `run` on `runtime`; its argument resolves when the server is
    /// asked to stop.
    pub fn spawn<F>(
        runtime: &tokio::runtime::Handle,
        run: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> ServerTask
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        ServerTask {
            stop: Some(stop),
            task: Some(runtime.spawn(run(stopped))),
        }
    }

    /// Stops accepting, closes every connection and waits for the task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves HTTP/1.1 on `listener` with `handle(request, peer)` until `stop`
/// resolves; then closes every open connection. Accept errors (out of file
/// descriptors and the like) pause briefly instead of spinning.
pub async fn serve_http1<H, Fut, B>(
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
    handle: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Dropping the set (when the loop ends or the task is aborted) aborts
    // every open connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let handle = handle.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let answer = handle(req, peer);
                            async move { Ok::<_, Infallible>(answer.await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(e) => {
                    tracing::debug!("sandbox server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}
