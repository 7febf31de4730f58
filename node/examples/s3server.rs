//! A real S3-protocol server (s3s-fs) for benchmarks: `s3server ROOT [ADDR]`. Prints
//! `s3server: listening on http://ADDR`; access key `bench`, secret `benchsecret0123456789`.
//! Create a bucket by making a directory under ROOT.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or("usage: s3server ROOT [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("{root}: {e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single("bench", "benchsecret0123456789"));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("s3server: listening on http://{}", listener.local_addr()?);
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
