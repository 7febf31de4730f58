//! The error answers operations share, as named components (`#/components/responses/…`): each
//! operation lists the statuses it can answer by naming these groups, so the spec says which codes
//! exist without repeating the error shape seventy times.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::IntoResponses;

/// Every error status, its component name and what it means; `components()` builds them all.
const ERRORS: &[(u16, &str, &str)] = &[
    (400, "BadRequest", "A header, parameter or body is missing or malformed"),
    (401, "Unauthorized", "No credential, or one that is not valid"),
    (402, "PaymentRequired", "Payment required: the x402 offer for this exact request (body and `PAYMENT-REQUIRED` header), or an account balance that does not cover it"),
    (403, "Forbidden", "The credential is valid but may not do this"),
    (404, "NotFound", "No such resource for this caller"),
    (405, "MethodNotAllowed", "This resource takes another method or kind of write"),
    (408, "RequestTimeout", "The request's headers or body did not arrive in time"),
    (409, "Conflict", "The resource's state does not allow this, or the same Idempotency-Key is in flight"),
    (410, "Gone", "The resource existed and is expired, deleted, used up or revoked"),
    (412, "PreconditionFailed", "An If-Match / If-None-Match precondition does not hold"),
    (413, "PayloadTooLarge", "The body or declared size is over its bound"),
    (415, "UnsupportedMediaType", "The body's Content-Type is not one this route takes"),
    (416, "RangeNotSatisfiable", "The Range asks for bytes the object does not have"),
    (422, "UnprocessableEntity", "A value is out of range, or an Idempotency-Key is reused for another request"),
    (429, "TooManyRequests", "A rate, quota or in-flight cap; `Retry-After` says when to try again"),
    (431, "HeadersTooLarge", "The request's head is over its bound"),
    (460, "ChecksumMismatch", "A tus chunk's Upload-Checksum does not match its bytes"),
    (500, "Internal", "A bug; the body carries the request id and nothing else"),
    (502, "IntegrityError", "Stored bytes failed their hash check; nothing was served"),
    (503, "Unavailable", "No quorum, no leader, or a dependency is down; `Retry-After` says when to try again"),
];

/// The component responses, for the document's `components.responses`.
pub fn components() -> Vec<(String, RefOr<Response>)> {
    ERRORS
        .iter()
        .map(|(code, name, description)| {
            let schema = match code {
                402 => "Payment402",
                _ => "Error",
            };
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (name.to_string(), RefOr::T(response))
        })
        .collect()
}

fn refs(codes: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    codes
        .iter()
        .map(|code| {
            let (_, name, _) = ERRORS.iter().find(|(c, ..)| c == code).expect("a listed status");
            (code.to_string(), RefOr::Ref(Ref::from_response_name(*name)))
        })
        .collect()
}

macro_rules! group {
    ($(#[$doc:meta])* $name:ident = [$($code:literal),*]) => {
        $(#[$doc])*
        pub struct $name;
        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                refs(&[$($code),*])
            }
        }
    };
}

group!(
    /// What any route can answer: limits, time bounds, a lost quorum, a bug.
    Common = [400, 408, 429, 431, 500, 503]
);
group!(
    /// A route behind a credential.
    Authed = [401, 403]
);
group!(E402 = [402]);
group!(E404 = [404]);
group!(E405 = [405]);
group!(E409 = [409]);
group!(E410 = [410]);
group!(E412 = [412]);
group!(E413 = [413]);
group!(E415 = [415]);
group!(E416 = [416]);
group!(E422 = [422]);
group!(E460 = [460]);
group!(E502 = [502]);

#[cfg(test)]
mod tests {
    /// Every status `ApiError` can answer has its component, so no group can name a status the
    /// spec does not describe.
    #[test]
    fn every_error_status_has_a_component() {
        for code in [
            400, 401, 402, 403, 404, 405, 408, 409, 410, 412, 413, 415, 416, 422, 429, 460, 500, 502, 503,
        ] {
            assert!(super::ERRORS.iter().any(|(c, ..)| *c == code), "{code}");
        }
    }
}
