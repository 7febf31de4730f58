//! A real S3-protocol server (s3s-fs: files under a temp dir) on loopback, run on its own
//! thread and runtime so blocking test code never stalls it. It can be stopped and started
//! again on the same port, to play an object store outage.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::ObjectStore;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS_KEY: &str = "relaytestaccess";
pub const SECRET_KEY: &str = "relaytestsecret0123456789";
pub const BUCKET: &str = "relay-test";

pub struct S3Server {
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    /// Starts a server with one empty bucket.
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("bucket dir");
        let mut server = S3Server {
            root,
            addr: "127.0.0.1:0".parse().unwrap(),
            stop: None,
            thread: None,
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let root = self.root.path().to_path_buf();
        let bind = self.addr;
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs");
                let mut builder = S3ServiceBuilder::new(fs);
                builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
                let service = builder.build();
                let listener = bind_retrying(bind).await;
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let http = ConnBuilder::new(TokioExecutor::new());
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { continue };
                            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                            conns.spawn(async move { let _ = conn.await; });
                        }
                        _ = &mut stop_rx => break,
                    }
                }
                // An outage: open connections are cut too.
                conns.abort_all();
            });
        });
        self.addr = addr_rx.recv().expect("s3 server address");
        self.stop = Some(stop_tx);
        self.thread = Some(thread);
    }

    /// Stops serving (connections refused) until [`S3Server::resume`].
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn resume(&mut self) {
        self.run();
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `--objects` URL for Relay.
    pub fn objects_url(&self) -> String {
        format!("s3://{BUCKET}?endpoint={}&region=us-east-1", self.endpoint())
    }

    /// Environment a Relay process needs to reach it.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ]
    }

    /// A client of the bucket, for checking what it holds.
    pub fn client(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(BUCKET)
                .with_endpoint(self.endpoint())
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(ACCESS_KEY)
                .with_secret_access_key(SECRET_KEY)
                .with_virtual_hosted_style_request(false)
                .build()
                .expect("s3 client"),
        )
    }
}

/// Rebinding the port of a server just stopped can race the old socket's close.
async fn bind_retrying(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr}");
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
