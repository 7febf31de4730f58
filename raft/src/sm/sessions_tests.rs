//! Sessions step by step: a sign-in nonce opens one session, only the subject revokes its own,
//! sessions and nonces are forgotten once expired, and key rotation keeps the newest few.

use crate::command::{Command, Outcome, Rejection, Request};
use crate::model::SessionKey;
use crate::ops;
use crate::sm::sessions::SESSION_KEYS_KEPT;
use crate::sm::tests::{apply_all, fresh_db, raw};
use crate::store::keys::META_SESSION_KEYS;

const T0: u64 = 70_000_000;

fn at(now_ms: u64, command: Command) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command,
    }
}

fn open(id: &str, subject: &str, nonce: Option<&str>, expires_at_ms: u64) -> Command {
    Command::OpenSession(ops::OpenSession {
        session_id: id.into(),
        subject: subject.into(),
        nonce: nonce.map(String::from),
        expires_at_ms,
        opened_by_key: None,
    })
}

#[test]
fn a_nonce_opens_one_session_and_only_its_subject_revokes_it() {
    let (_dir, db) = fresh_db();
    let r = apply_all(
        &db,
        &[
            at(T0, open("ses_1", "0xabc", Some("n1"), T0 + 60_000)),
            at(T0, open("ses_2", "0xabc", Some("n1"), T0 + 60_000)),
            at(T0, open("ses_3", "0xabc", None, T0 + 25 * 3600 * 1000)),
            at(T0, open("ses_4", "0xabc", None, T0)),
            at(
                T0 + 1,
                Command::RevokeSession(ops::RevokeSession {
                    session_id: "ses_1".into(),
                    subject: "0xdef".into(),
                }),
            ),
            at(
                T0 + 2,
                Command::RevokeSession(ops::RevokeSession {
                    session_id: "ses_1".into(),
                    subject: "0xabc".into(),
                }),
            ),
        ],
    );
    assert!(matches!(&r[0], Ok(Outcome::SessionOpened { session }) if !session.revoked));
    assert_eq!(r[1], Err(Rejection::NonceReused));
    assert!(matches!(r[2], Err(Rejection::Invalid(_))), "longer than a day");
    assert!(matches!(r[3], Err(Rejection::Invalid(_))), "already expired");
    assert_eq!(r[4], Err(Rejection::SessionNotFound));
    assert!(matches!(&r[5], Ok(Outcome::SessionRevoked { session }) if session.revoked));
}

#[test]
fn sessions_and_their_nonces_are_forgotten_once_expired() {
    let (_dir, db) = fresh_db();
    let until = T0 + 60_000;
    apply_all(&db, &[at(T0, open("ses_1", "0xabc", Some("n1"), until))]);
    assert_eq!(raw(&db, "sessions").len(), 4, "session, nonce and their age entries");
    apply_all(&db, &[at(until - 1, Command::ExpireDue(ops::ExpireDue { max: 10 }))]);
    assert_eq!(raw(&db, "sessions").len(), 4);
    apply_all(&db, &[at(until + 1, Command::ExpireDue(ops::ExpireDue { max: 10 }))]);
    assert!(raw(&db, "sessions").is_empty());
}

#[test]
fn rotation_keeps_the_newest_keys() {
    let (_dir, db) = fresh_db();
    let add = |i: u8| {
        at(
            T0,
            Command::AddSessionKey(ops::AddSessionKey {
                kid: format!("k{i}"),
                key_hex: hex::encode([i; 32]),
            }),
        )
    };
    let mut requests: Vec<Request> = (0..6).map(add).collect();
    requests.push(add(5)); // the same key again changes nothing
    requests.push(at(
        T0,
        Command::AddSessionKey(ops::AddSessionKey {
            kid: "short".into(),
            key_hex: "00".into(),
        }),
    ));
    let r = apply_all(&db, &requests);
    assert!(matches!(r[7], Err(Rejection::Invalid(_))));
    let meta = raw(&db, "meta");
    let (_, value) = meta.iter().find(|(k, _)| k == META_SESSION_KEYS).unwrap();
    let keys: Vec<SessionKey> = crate::store::decode("meta", value).unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids.len(), SESSION_KEYS_KEPT);
    assert_eq!(kids, ["k2", "k3", "k4", "k5"]);
}

#[test]
fn accounts_are_topped_up_and_their_keys_issued_listed_and_revoked() {
    let (_dir, db) = fresh_db();
    let hash = hex::encode([9u8; 32]);
    let r = apply_all(
        &db,
        &[
            at(
                T0,
                Command::CreateAccount(ops::CreateAccount {
                    account_id: "acct_a".into(),
                    balance_micros: 10,
                }),
            ),
            at(
                T0,
                Command::TopUp(ops::TopUp {
                    account_id: "acct_a".into(),
                    amount_micros: 5,
                }),
            ),
            at(
                T0,
                Command::TopUp(ops::TopUp {
                    account_id: "acct_a".into(),
                    amount_micros: u64::MAX,
                }),
            ),
            at(
                T0,
                Command::TopUp(ops::TopUp {
                    account_id: "acct_nobody".into(),
                    amount_micros: 5,
                }),
            ),
            at(
                T0,
                Command::IssueApiKey(ops::IssueApiKey {
                    account_id: "acct_a".into(),
                    key_hash_hex: hash.clone(),
                    prefix: "rs_live_ab".into(),
                }),
            ),
            at(
                T0,
                Command::RevokeApiKey(ops::RevokeApiKey {
                    account_id: "acct_b".into(),
                    key_id: hash[..16].into(),
                }),
            ),
            at(
                T0,
                Command::RevokeApiKey(ops::RevokeApiKey {
                    account_id: "acct_a".into(),
                    key_id: hash[..16].into(),
                }),
            ),
        ],
    );
    assert!(matches!(&r[1], Ok(Outcome::ToppedUp { account }) if account.balance_micros == 15));
    assert!(matches!(r[2], Err(Rejection::Invalid(_))), "no wrap-around");
    assert_eq!(r[3], Err(Rejection::AccountNotFound));
    assert!(matches!(&r[4], Ok(Outcome::ApiKeyIssued { key }) if key.key_id == hash[..16]));
    assert_eq!(r[5], Err(Rejection::KeyNotFound), "only its own account revokes a key");
    assert!(matches!(r[6], Ok(Outcome::ApiKeyRevoked { .. })));
    assert!(raw(&db, "api_keys").is_empty(), "a revoked key acts for no one");
    assert!(raw(&db, "account_keys").is_empty());
}
