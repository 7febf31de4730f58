//! Node-signed upload URLs for the local-files store: `PUT {base}/uploads/{id}?expires=…&sig=…`.
//! The signature is HMAC-SHA256 over the method, the upload id and the expiry, under a key
//! derived from the cluster secret, so every node accepts a URL any node made. The length and
//! checksum it is bound to are the upload's record in the ledger, checked by the handler.

use ring::hmac;

/// The key upload URLs are signed with: derived, so it signs nothing else.
fn key(cluster_secret: &str) -> hmac::Key {
    let derived = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, cluster_secret.as_bytes()),
        b"relay upload url v1",
    );
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn message(upload_id: &str, expires_s: u64) -> String {
    format!("PUT\n{upload_id}\n{expires_s}")
}

/// The `sig` for this upload and expiry, hex.
pub fn signature(cluster_secret: &str, upload_id: &str, expires_s: u64) -> String {
    hex::encode(hmac::sign(
        &key(cluster_secret),
        message(upload_id, expires_s).as_bytes(),
    ))
}

/// Whether `sig_hex` signs this upload and expiry (constant time).
pub fn verify(cluster_secret: &str, upload_id: &str, expires_s: u64, sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    hmac::verify(&key(cluster_secret), message(upload_id, expires_s).as_bytes(), &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_upload_expiry_and_secret() {
        let sig = signature("s3cret", "upl_1", 100);
        assert!(verify("s3cret", "upl_1", 100, &sig));
        assert!(!verify("s3cret", "upl_2", 100, &sig));
        assert!(!verify("s3cret", "upl_1", 101, &sig));
        assert!(!verify("other", "upl_1", 100, &sig));
        assert!(!verify("s3cret", "upl_1", 100, "zz"));
        let mut tampered = sig.into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        assert!(!verify("s3cret", "upl_1", 100, std::str::from_utf8(&tampered).unwrap()));
    }
}
