//! Session tokens: compact JWTs (RFC 7519, `alg` HS256 only) signed with a key the ledger holds,
//! so every node verifies every token, and naming a session the ledger keeps, so a revocation or
//! an expiry ends the token everywhere.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use relay_raft::SessionKey;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The longest token looked at.
pub const TOKEN_MAX_LEN: usize = 2048;
const ISSUER: &str = "relay";
/// How far in the future an `iat` may lie (clocks differ).
const IAT_SKEW_SECONDS: u64 = 60;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account id, or the wallet's checksummed address.
    pub sub: String,
    /// The session in the ledger.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

impl Claims {
    pub fn new(sub: String, sid: String, iat: u64, exp: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub,
            sid,
            iat,
            exp,
        }
    }
}

/// Whether a bearer token has a JWT's shape (three base64url parts), so it is judged as one.
pub fn looks_like_token(token: &str) -> bool {
    token.len() <= TOKEN_MAX_LEN
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub fn mint(key: &SessionKey, claims: &Claims) -> String {
    let header = Header {
        alg: "HS256".into(),
        typ: "JWT".into(),
        kid: key.kid.clone(),
    };
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header serializes"));
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{claims}");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key.key), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The claims of a token signed by one of `keys` and not expired at `now_s`; why not otherwise
/// (the reason is for the log, never for the client).
pub fn verify(keys: &[SessionKey], token: &str, now_s: u64) -> Result<Claims, &'static str> {
    if !looks_like_token(token) {
        return Err("not a token");
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(c), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not a token");
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad header")?;
    // Only our own algorithm: never "none", never a key chosen by the token.
    if header.alg != "HS256" {
        return Err("bad algorithm");
    }
    let key = keys.iter().find(|k| k.kid == header.kid).ok_or("unknown key")?;
    let tag = URL_SAFE_NO_PAD.decode(s).map_err(|_| "bad signature")?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, &key.key),
        signing_input.as_bytes(),
        &tag,
    )
    .map_err(|_| "bad signature")?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad claims")?;
    if claims.iss != ISSUER {
        return Err("another issuer");
    }
    if claims.exp <= now_s {
        return Err("expired");
    }
    if claims.iat > now_s + IAT_SKEW_SECONDS {
        return Err("issued in the future");
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, b: u8) -> SessionKey {
        SessionKey {
            kid: kid.into(),
            key: vec![b; 32],
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let k = key("k1", 1);
        let t = mint(&k, &Claims::new("0xabc".into(), "ses_1".into(), 100, 200));
        assert!(looks_like_token(&t));
        let c = verify(&[key("k0", 0), k.clone()], &t, 150).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("0xabc", "ses_1"));
        assert_eq!(verify(std::slice::from_ref(&k), &t, 200), Err("expired"));
        assert_eq!(verify(&[key("k1", 2)], &t, 150), Err("bad signature"));
        assert_eq!(verify(&[key("k9", 1)], &t, 150), Err("unknown key"));
    }

    #[test]
    fn tampered_or_unsigned_tokens_are_refused() {
        let k = key("k1", 1);
        let t = mint(&k, &Claims::new("acct_a".into(), "ses_1".into(), 100, 200));
        let parts: Vec<&str> = t.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(br#"{"iss":"relay","sub":"acct_b","sid":"ses_1","iat":100,"exp":200}"#);
        let swapped = format!("{}.{}.{}", parts[0], other, parts[2]);
        assert_eq!(verify(std::slice::from_ref(&k), &swapped, 150), Err("bad signature"));
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let unsigned = format!("{none}.{}.", parts[1]);
        assert_eq!(verify(std::slice::from_ref(&k), &unsigned, 150), Err("bad algorithm"));
        assert_eq!(verify(&[k], "a.b", 150), Err("not a token"));
    }
}
