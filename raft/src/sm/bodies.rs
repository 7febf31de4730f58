//! Checks shared by every command that carries a body (checkpoint states, mailbox messages).

use crate::command::Rejection;
use crate::model::BodyRef;
use crate::sm::INLINE_BODY_MAX;

/// A body fits its reservation, and rides inline exactly when it has no object key.
pub fn check_body(body: &BodyRef, inline_body: Option<&[u8]>, max_body_bytes: u64) -> Result<(), Rejection> {
    if body.size_bytes > max_body_bytes {
        return Err(Rejection::TooLarge {
            size_bytes: body.size_bytes,
            limit: max_body_bytes,
        });
    }
    match (inline_body, &body.object_key) {
        (Some(bytes), None) => {
            if bytes.len() > INLINE_BODY_MAX {
                return Err(Rejection::Invalid(format!(
                    "inline bodies are at most {INLINE_BODY_MAX} bytes"
                )));
            }
            if bytes.len() as u64 != body.size_bytes || blake3::hash(bytes).to_hex().as_str() != body.blake3_hex {
                return Err(Rejection::Invalid(
                    "inline body does not match its size and hash".into(),
                ));
            }
            Ok(())
        }
        (None, Some(key)) if !key.is_empty() => Ok(()),
        _ => Err(Rejection::Invalid("a body is either inline or an object".into())),
    }
}
