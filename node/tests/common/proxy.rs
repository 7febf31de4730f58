//! A loopback TCP proxy that can hold back the answers: requests still pass through, the bytes
//! coming back wait until released. A node dialling a peer through it (`--chaos-dial`) sees its
//! calls succeed at the peer and their answers lost: the ambiguous outcome of a lost leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub addr: String,
    held: Arc<AtomicBool>,
    target: Arc<Mutex<Option<String>>>,
}

impl Proxy {
    /// Listens on a free loopback port; connections are relayed once a target is set.
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let held = Arc::new(AtomicBool::new(false));
        let target: Arc<Mutex<Option<String>>> = Arc::default();
        let (hold, to) = (held.clone(), target.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(target) = to.lock().unwrap().clone() else {
                    continue;
                };
                let Ok(upstream) = TcpStream::connect(&target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (mut client_rd, mut client_wr) = client.into_split();
                let (mut up_rd, mut up_wr) = upstream.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rd, &mut up_wr).await;
                    let _ = up_wr.shutdown().await;
                });
                let hold = hold.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match up_rd.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        while hold.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        if client_wr.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = client_wr.shutdown().await;
                });
            }
        });
        Proxy { addr, held, target }
    }

    /// Where new connections go.
    pub fn target(&self, addr: &str) {
        *self.target.lock().unwrap() = Some(addr.to_string());
    }

    /// Holds back (true) or releases (false) the answers.
    pub fn hold(&self, on: bool) {
        self.held.store(on, Ordering::SeqCst);
    }
}
