//! Where a test's objects live: local files or a real S3-protocol server (s3s-fs on loopback), and
//! a macro that runs one test body against each, like Garage's `db/test.rs` runs one suite over
//! each database engine. Include with `mod common; #[path = "common/s3.rs"] mod s3;
//! #[path = "common/backend.rs"] #[macro_use] mod backend;`.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStore;

use crate::common::{Relay, RelayExt};
use crate::s3::S3Server;

/// Where a test's objects live.
pub enum Backend {
    Local(tempfile::TempDir),
    S3(S3Server),
}

impl Backend {
    pub fn local() -> Backend {
        Backend::Local(tempfile::tempdir().unwrap())
    }

    pub fn s3() -> Backend {
        Backend::S3(S3Server::start())
    }

    pub fn objects_url(&self) -> String {
        match self {
            Backend::Local(dir) => format!("file://{}", dir.path().display()),
            Backend::S3(s) => s.objects_url(),
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Backend::Local(_) => vec![],
            Backend::S3(s) => s.env(),
        }
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        match self {
            Backend::Local(dir) => Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
            Backend::S3(s) => s.client(),
        }
    }

    pub fn node(&self, extra: &[&str]) -> Relay {
        let url = self.objects_url();
        let mut args = vec!["--objects", url.as_str()];
        args.extend_from_slice(extra);
        Relay::start_with_env(&args, &self.env())
    }

    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .store()
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    /// Waits (up to 10 s) until the store holds exactly `n` objects.
    pub async fn expect_objects(&self, n: usize, what: &str) {
        let mut keys = Vec::new();
        for _ in 0..100 {
            keys = self.keys().await;
            if keys.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: expected {n} objects, found {keys:?}");
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::backend::Backend::local()).await })*
        }
        mod s3_protocol {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::backend::Backend::s3()).await })*
        }
    };
}

impl Backend {
    pub fn is_s3(&self) -> bool {
        matches!(self, Backend::S3(_))
    }
}
