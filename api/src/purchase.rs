//! The path every paid create walks. The reservation is priced by the cluster's prices
//! (replicated in the ledger, the same on every node) and its duration checked; then the payer
//! is checked before any bytes are taken: an account's balance is pre-checked, an x402 payment is
//! checked offline and verified by the facilitator, and a request with no credentials is
//! answered 402 with its exact price. The ledger prices again when it applies the command; that
//! charge is the one that counts. An x402 payment is settled only after its lease is written, and
//! a settlement that fails voids the lease.

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::response::Response;
use relay_raft::ops::{LeaseCreated, PayX402, X402Payment};
use relay_raft::{Lease, LedgerError, Op, Outcome, Rejection, Settlement};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, PaymentDemand};
use crate::headers::check_duration;
use crate::idempotency::Keyed;
use crate::render;
use crate::state::AppState;
use crate::x402;
use crate::x402::evm::Address;
use crate::x402::facilitator::{self, FacilitatorError, NONCE_USED};
use crate::x402::offer::{self, Offer, Receipt};
use crate::x402::payment::{self, PaymentError, SignedPayment};

/// Who pays for a purchase, and owns what it buys. Handlers take a `Payer` and never look
/// inside: a new way to pay is a new variant here.
pub enum Payer {
    /// An account, proven by its API key; pays from its balance.
    Account(Caller),
    /// An x402 payment; the lease belongs to the wallet that signed it.
    Wallet(Box<Wallet>),
    /// No credentials, on a node that takes x402: the purchase is answered 402 with its price.
    Nobody { resource: String },
}

pub struct Wallet {
    pub payment: SignedPayment,
    /// The signer, or why the signature does not prove one (answered 402 once priced).
    pub signer: Result<Address, PaymentError>,
    /// The request's URL (the requirements' `resource`).
    pub resource: String,
    /// The claimed payer, checksummed: the owner once the signature is proven.
    pub address: String,
}

impl Payer {
    /// The owner of what is bought: the account, or the wallet's checksummed address.
    pub fn account_id(&self) -> &str {
        match self {
            Payer::Account(caller) => &caller.account_id,
            Payer::Wallet(w) => &w.address,
            Payer::Nobody { .. } => "",
        }
    }

    /// The scope its Idempotency-Keys live in.
    pub fn scope(&self) -> &str {
        self.account_id()
    }
}

impl FromRequestParts<AppState> for Payer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Payer, ApiError> {
        let Some(x402) = &state.config.x402 else {
            return Ok(Payer::Account(Caller::from_request_parts(parts, state).await?));
        };
        let paying = parts.headers.contains_key("x-payment") || parts.headers.contains_key("payment-signature");
        let caller = match parts.headers.contains_key(header::AUTHORIZATION) {
            true => Some(Caller::from_request_parts(parts, state).await?),
            false => None,
        };
        let resource = format!(
            "{}{}",
            crate::mailbox::base_url(state, &parts.headers),
            parts.uri.path()
        );
        if !paying {
            return Ok(match caller {
                // A wallet's session has no balance to pay from: it is offered the price.
                Some(c) if c.key_hash.is_none() && Address::parse(&c.account_id).is_some() => {
                    Payer::Nobody { resource }
                }
                Some(c) => Payer::Account(c),
                None => Payer::Nobody { resource },
            });
        }
        match payment::from_headers(&parts.headers) {
            Err(PaymentError::Malformed(m)) => Err(ApiError::PaymentMalformed(m)),
            Err(refused) => Err(ApiError::PaymentMalformed(refused.to_string())),
            Ok(None) => Ok(Payer::Nobody { resource }),
            Ok(Some(payment)) => {
                // With credentials beside it, only the paying wallet's own session: a lease
                // must not land with an owner the caller did not mean.
                if let Some(c) = &caller {
                    if c.key_hash.is_some()
                        || !c
                            .account_id
                            .eq_ignore_ascii_case(&payment.authorization.from.checksummed())
                    {
                        return Err(ApiError::BadRequest(
                            "send an account's credentials or a payment, not both".into(),
                        ));
                    }
                }
                // Recovering the signer costs a fraction of a millisecond and proves who asks.
                let signer = payment.signer(x402);
                let address = payment.authorization.from.checksummed();
                Ok(Payer::Wallet(Box::new(Wallet {
                    payment,
                    signer,
                    resource,
                    address,
                })))
            }
        }
    }
}

/// Whether the payer's identity is proven: an account (or session), or a payment whose signature
/// recovers its signer. Only then may anything of the owner's be looked up for it.
pub fn proven(payer: &Payer) -> bool {
    match payer {
        Payer::Account(_) => true,
        Payer::Wallet(w) => w.signer.is_ok(),
        Payer::Nobody { .. } => false,
    }
}

/// What a create asks to buy: `billable_bytes` (the object's size, a checkpoint's reserved body,
/// a mailbox's capacity) for `duration_seconds`; `product` names it in a payment offer.
#[derive(Clone, Copy, Debug)]
pub struct Reservation {
    pub billable_bytes: u64,
    pub duration_seconds: u64,
    pub product: &'static str,
    /// A baton's whole shape, priced by the baton formula (size and duration are its own).
    pub baton: Option<relay_raft::baton::Shape>,
    /// A baton grown from the first shape to the second: priced as the difference.
    pub extension: Option<(relay_raft::baton::Shape, relay_raft::baton::Shape)>,
}

/// The price of `reservation` by the prices this node has applied, after checking its duration.
pub fn quote(state: &AppState, reservation: Reservation) -> ApiResult<u64> {
    let cfg = &state.config;
    match &reservation.extension {
        // The baton's whole term after it, within the longest a lease may last.
        Some((_, after)) => check_duration(after.duration_seconds, 1, cfg.max_duration_seconds)?,
        None => check_duration(
            reservation.duration_seconds,
            cfg.min_duration_seconds,
            cfg.max_duration_seconds,
        )?,
    };
    let reader = state.ledger.reader();
    let pricing = reader.pricing()?;
    Ok(match (&reservation.baton, &reservation.extension) {
        (_, Some((before, after))) => {
            relay_raft::baton::extension_price(&pricing, &reader.baton_rates()?, before, after)
        }
        (Some(shape), None) => relay_raft::baton::price(&pricing, &reader.baton_rates()?, shape),
        (None, None) => pricing.price_micros(reservation.billable_bytes, reservation.duration_seconds),
    })
}

/// A purchase whose payer has been checked: [`Purchase::commit`] writes it (and settles an x402
/// payment).
pub struct Purchase {
    pub cost_micros: u64,
    x402: Option<X402Purchase>,
    /// The ledger already made it under this request's key: its answer is a replay, and this
    /// request settles nothing.
    replayed: bool,
}

#[derive(Clone)]
struct X402Purchase {
    version: u8,
    /// The network as the requirements name it (v1 name or CAIP-2).
    network: String,
    offer: Offer,
    payment: X402Payment,
}

/// Checks the payer for `reservation` before anything is taken: see the module's description.
/// A retry of a keyed purchase the ledger already made is not refused: the ledger replays its
/// answer, and nothing is charged or settled again.
pub async fn begin(
    state: &AppState,
    payer: &Payer,
    keyed: Option<&Keyed>,
    reservation: Reservation,
) -> ApiResult<Purchase> {
    let cost_micros = quote(state, reservation)?;
    let made = match keyed {
        Some(k) => already_made(state, k, reservation)?,
        None => None,
    };
    match payer {
        Payer::Account(caller) => {
            if made.is_none() {
                let account = state
                    .ledger
                    .reader()
                    .account(&caller.account_id)?
                    .ok_or(ApiError::Unauthorized("no account to pay from"))?;
                if account.balance_micros < cost_micros {
                    return Err(ApiError::InsufficientBalance {
                        balance_micros: account.balance_micros,
                        needed_micros: cost_micros,
                    });
                }
            }
            Ok(Purchase {
                cost_micros,
                x402: None,
                replayed: made.is_some(),
            })
        }
        Payer::Nobody { resource } => {
            let offer = offer_for(resource, cost_micros, reservation);
            Err(demand(state, offer, "payment required", "payment_required"))
        }
        Payer::Wallet(wallet) => wallet_purchase(state, wallet, cost_micros, reservation, made).await,
    }
}

/// The lease the ledger already made under this key, when it has this size and duration.
fn already_made(state: &AppState, keyed: &Keyed, reservation: Reservation) -> ApiResult<Option<String>> {
    let made = state
        .ledger
        .reader()
        .idempotency_record(keyed.scope(), keyed.key())?
        .map(|r| r.response);
    Ok(match made {
        // An extension's record holds the grown baton, which this node may already see grown:
        // its shape cannot tell, but the ledger checks the request's fingerprint (which names the
        // baton and the payment) before it replays.
        Some(Ok(Outcome::LeaseCreated(LeaseCreated { lease, .. }))) if reservation.extension.is_some() => {
            Some(lease.lease_id)
        }
        Some(Ok(Outcome::LeaseCreated(LeaseCreated { lease, .. })))
            if lease.kind.billable_bytes() == reservation.billable_bytes
                && lease.duration_seconds == reservation.duration_seconds =>
        {
            Some(lease.lease_id)
        }
        _ => None,
    })
}

async fn wallet_purchase(
    state: &AppState,
    wallet: &Wallet,
    cost_micros: u64,
    reservation: Reservation,
    made: Option<String>,
) -> ApiResult<Purchase> {
    let Some(cfg) = &state.config.x402 else {
        return Err(ApiError::Internal("an x402 payer on a node without x402".into()));
    };
    let offer = offer_for(&wallet.resource, cost_micros, reservation);
    let refuse = |e: PaymentError, offer: Offer| match e {
        PaymentError::Refused { reason, detail } => demand(state, offer, &detail, reason),
        PaymentError::Malformed(m) => ApiError::PaymentMalformed(m),
    };
    let payment = &wallet.payment;
    if let Err(e) = wallet.signer.clone() {
        return Err(refuse(e, offer));
    }
    let now_s = relay_raft::wall_clock_ms() / 1000;
    if let Err(e) = payment.check(cfg, cost_micros, now_s) {
        return Err(refuse(e, offer));
    }
    let requirements = match payment.version {
        1 => offer::v1_requirements(cfg, &offer),
        _ => offer::v2_requirements(cfg, &offer),
    };
    let address = wallet.address.clone();
    let settle_request = facilitator::request(payment.version, &payment.raw, &requirements);
    let x = X402Purchase {
        version: payment.version,
        network: requirements["network"].as_str().unwrap_or_default().to_string(),
        payment: X402Payment {
            from: address.clone(),
            nonce_hex: payment.nonce_hex(),
            value_micros: cost_micros,
            valid_before_ms: payment.valid_before_ms(),
            settle_request,
        },
        offer,
    };
    let spent = state.ledger.reader().x402_record(&address, &x.payment.nonce_hex)?;
    if let Some(lease_id) = made {
        // The ledger will replay its answer: only this payment's own answer may be replayed.
        return match spent {
            Some(record) if record.lease_id == lease_id => Ok(Purchase {
                cost_micros,
                x402: Some(x),
                replayed: true,
            }),
            _ => Err(ApiError::IdempotencyKeyReused),
        };
    }
    // Spent here already: no need to ask the facilitator (the ledger refuses it anyway).
    if spent.is_some() {
        return Err(demand(
            state,
            x.offer,
            "this payment authorization was already used",
            NONCE_USED,
        ));
    }
    match state.facilitator()?.verify(&x.payment.settle_request).await {
        Ok(()) => Ok(Purchase {
            cost_micros,
            x402: Some(x),
            replayed: false,
        }),
        Err(FacilitatorError::Refused { reason }) => {
            Err(demand(state, x.offer, "the facilitator refused the payment", &reason))
        }
        Err(FacilitatorError::Unknown(e)) => {
            tracing::warn!(error = %e, "x402 verify");
            Err(ApiError::Unavailable("the payment facilitator did not answer".into()))
        }
    }
}

/// A create's answer from the ledger, and for an x402 purchase what became of its settlement.
pub struct Committed {
    pub answer: Result<Result<LeaseCreated, Rejection>, LedgerError>,
    settled: Option<ApiResult<Receipt>>,
}

impl Purchase {
    /// Proposes the create: from the account's balance, or paid by the x402 payment and then
    /// settled. The x402 path runs in a task of its own, so a client that hangs up cannot stop
    /// it between the write and the settlement.
    pub async fn commit<O: Op<Output = LeaseCreated>>(
        &self,
        state: &AppState,
        idempotency: Option<relay_raft::IdempotencyKey>,
        op: O,
    ) -> Committed {
        if self.x402.is_none() {
            return Committed {
                answer: state.ledger.run(idempotency, op).await,
                settled: None,
            };
        }
        self.commit_x402(state, idempotency, op.into()).await
    }

    /// [`Purchase::commit`] of any purchase the ledger takes x402 for (a create, an extension),
    /// on a purchase paid with x402.
    pub async fn commit_x402(
        &self,
        state: &AppState,
        idempotency: Option<relay_raft::IdempotencyKey>,
        purchase: relay_raft::Command,
    ) -> Committed {
        let Some(x) = &self.x402 else {
            return Committed {
                answer: Err(LedgerError::Unavailable("an x402 commit without a payment".into())),
                settled: None,
            };
        };
        let ours = new_lease_id(&purchase).map(String::from);
        // An extension names a baton that exists: its answer cannot tell this request's write from
        // a concurrent twin's under the same key, so both may settle, and the second finds the
        // nonce used by the first: that is its settlement, not a refusal.
        let twins = matches!(purchase, relay_raft::Command::ExtendBaton(_));
        let replayed = self.replayed;
        let (state, x) = (state.clone(), x.clone());
        let task = tokio::spawn(async move {
            let pay = PayX402 {
                payment: x.payment.clone(),
                purchase: Box::new(purchase),
            };
            let answer = state.ledger.run(idempotency, pay).await;
            let settled = match &answer {
                Ok(Ok(created)) => {
                    let fresh = !replayed && ours.as_deref() == Some(created.lease.lease_id.as_str());
                    Some(settle(&state, &x, fresh, twins).await)
                }
                _ => None,
            };
            Committed { answer, settled }
        });
        task.await.unwrap_or_else(|e| Committed {
            answer: Err(LedgerError::Unavailable(format!("purchase task: {e}"))),
            settled: None,
        })
    }

    /// The committed lease and, for an x402 purchase, its settlement's receipt; or the error the
    /// answer means (an x402 payment the ledger refused is a 402 with a fresh offer).
    pub fn answer(
        &self,
        state: &AppState,
        committed: Committed,
        what: &'static str,
    ) -> ApiResult<(Lease, Option<Receipt>)> {
        let lease = match committed.answer? {
            Ok(created) => created.lease,
            Err(rejection) => return Err(self.refused(state, rejection, what)),
        };
        Ok((lease, committed.settled.transpose()?))
    }

    fn refused(&self, state: &AppState, rejection: Rejection, what: &'static str) -> ApiError {
        match (&self.x402, &rejection) {
            (Some(x), Rejection::PaymentReused | Rejection::PriceMismatch { .. } | Rejection::PaymentExpired) => {
                let reason = match rejection {
                    Rejection::PaymentReused => NONCE_USED,
                    Rejection::PaymentExpired => "invalid_exact_evm_payload_authorization_valid_before",
                    _ => "invalid_exact_evm_payload_authorization_value",
                };
                demand(state, x.offer.clone(), &rejection.to_string(), reason)
            }
            _ => ApiError::from_rejection(rejection, what),
        }
    }
}

/// The lease id a create proposes.
fn new_lease_id(command: &relay_raft::Command) -> Option<&str> {
    use relay_raft::Command as C;
    match command {
        C::CreateLease(new) => Some(&new.lease_id),
        C::CreateCheckpoint(c) => Some(&c.new.lease_id),
        C::CreateMailbox(c) => Some(&c.new.lease_id),
        C::CreateBaton(c) => Some(&c.new.lease_id),
        C::ExtendBaton(e) => Some(&e.lease_id),
        C::CreateWithUpload(c) => new_lease_id(&c.purchase),
        _ => None,
    }
}

/// Settles a payment whose lease is written. Only the request that wrote it (`fresh`) calls the
/// facilitator; a replay reports what is known, waiting a little for a settlement in progress.
async fn settle(state: &AppState, x: &X402Purchase, fresh: bool, twins: bool) -> ApiResult<Receipt> {
    let p = &x.payment;
    let receipt = |transaction: String, network: String| Receipt {
        version: x.version,
        transaction,
        network,
        payer: p.from.clone(),
    };
    let pending = || {
        ApiError::Unavailable("the payment's settlement is not known yet; retry with the same Idempotency-Key".into())
    };
    if fresh {
        let settlement = match x402::settle::attempt(state, &p.settle_request, twins).await? {
            x402::settle::Outcome::Settled(s) => Settlement::Settled {
                transaction: s.transaction,
                network: if s.network.is_empty() {
                    x.network.clone()
                } else {
                    s.network
                },
            },
            x402::settle::Outcome::Refused(reason) => Settlement::Failed { reason },
            x402::settle::Outcome::Unknown => Settlement::Pending,
        };
        let recorded = x402::settle::record(state, &p.from, &p.nonce_hex, settlement.clone()).await;
        return match (settlement, recorded) {
            // The money moved: the receipt stands even if recording it must wait for the
            // reconciler.
            (Settlement::Settled { transaction, network }, _) => Ok(receipt(transaction, network)),
            (Settlement::Failed { reason }, Ok(_)) => {
                Err(demand(state, x.offer.clone(), "the payment did not settle", &reason))
            }
            (Settlement::Failed { .. }, Err(e)) => Err(e),
            (Settlement::Pending, _) => Err(pending()),
        };
    }
    for _ in 0..20 {
        let record = state
            .ledger
            .linearizable()
            .await?
            .x402_record(&p.from, &p.nonce_hex)?
            .ok_or_else(|| ApiError::Internal("x402 record missing after its create".into()))?;
        match record.settlement {
            Settlement::Settled { transaction, network } => return Ok(receipt(transaction, network)),
            Settlement::Failed { reason } => {
                return Err(demand(state, x.offer.clone(), "the payment did not settle", &reason))
            }
            Settlement::Pending => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    Err(pending())
}

/// Adds a settlement's `X-PAYMENT-RESPONSE` / `PAYMENT-RESPONSE` to a paid answer.
pub fn with_receipt(mut response: Response, receipt: Option<Receipt>) -> Response {
    if let Some(r) = receipt {
        let (name, value) = r.header();
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

fn offer_for(resource: &str, price_micros: u64, reservation: Reservation) -> Offer {
    Offer {
        price_micros,
        resource: resource.to_string(),
        description: format!(
            "{} of {} bytes for {} seconds",
            reservation.product, reservation.billable_bytes, reservation.duration_seconds
        ),
    }
}

/// A 402 for `offer`, or a 401 on a node that takes no x402 payments.
fn demand(state: &AppState, offer: Offer, message: &str, reason: &str) -> ApiError {
    match &state.config.x402 {
        Some(config) => ApiError::PaymentRequired(Box::new(PaymentDemand {
            message: message.to_string(),
            reason: reason.to_string(),
            offer,
            config: config.clone(),
        })),
        None => ApiError::Unauthorized("missing or invalid credentials"),
    }
}

/// The receipt of a purchase: what every paid create answers with (the lease, its term, what
/// it cost and who owns it), to which each resource adds its own fields.
pub fn receipt(lease: &Lease, own: Value) -> Value {
    let actor_type = match Address::parse(&lease.owner) {
        Some(_) => "wallet",
        None => "account",
    };
    let mut v = json!({
        "status": "ok",
        "actor_type": actor_type,
        "owner": lease.owner,
        "lease_id": lease.lease_id,
        "expires_at": render::timestamp(lease.expires_at_ms),
        "duration_seconds": lease.duration_seconds,
        "duration_human": render::duration_human(lease.duration_seconds),
        "cost_micros": lease.cost_micros.to_string(),
        "paid_usdc": render::usdc(lease.cost_micros),
        "ledger_id": lease.ledger_id,
    });
    if let (Some(all), Value::Object(own)) = (v.as_object_mut(), own) {
        all.extend(own);
    }
    v
}
