//! `relay dev-facilitator`: a local x402 facilitator for development and tests. It checks what a
//! real facilitator checks (the EIP-712 signer, amount, payTo, asset and network, the time
//! window, nonce reuse, the payer's balance) and keeps balances in memory; it never touches a
//! chain, and its "transactions" are hashes of the authorization.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use relay_api::x402::evm::{self, Address, Domain, TransferWithAuthorization};
use serde_json::{json, Value};

#[derive(Args, Debug, Clone)]
pub struct DevFacilitatorArgs {
    /// Where to listen (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Opening balance of every wallet, atomic units (micro-USDC).
    #[arg(long, default_value_t = 1_000_000)]
    pub balance: u64,
    /// A wallet with its own opening balance: `0xADDRESS=micros` (repeatable).
    #[arg(long = "fund")]
    pub fund: Vec<String>,
    /// A wallet whose payments verify but never settle (repeatable): to test what a server does
    /// when settlement fails after its work is done.
    #[arg(long = "refuse-settle")]
    pub refuse_settle: Vec<String>,
    /// Settle (move the money) at once but answer a settlement only after this many
    /// milliseconds (refusals at once): to test a server whose settle call times out after the
    /// money moved.
    #[arg(long, default_value_t = 0)]
    pub settle_answer_delay_ms: u64,
}

#[derive(Default)]
struct Books {
    balances: HashMap<Address, u64>,
    used: HashSet<(Address, [u8; 32])>,
}

struct Facilitator {
    default_balance: u64,
    answer_delay: std::time::Duration,
    refuse_settle: HashSet<Address>,
    books: Mutex<Books>,
}

pub async fn run(args: DevFacilitatorArgs) -> Result<(), String> {
    let mut books = Books::default();
    for f in &args.fund {
        let (addr, amount) = f
            .split_once('=')
            .ok_or(format!("--fund {f:?}: want 0xADDRESS=micros"))?;
        let addr = Address::parse(addr).ok_or(format!("--fund {f:?}: not an address"))?;
        let amount = amount.parse().map_err(|_| format!("--fund {f:?}: not an amount"))?;
        books.balances.insert(addr, amount);
    }
    let refuse_settle = args
        .refuse_settle
        .iter()
        .map(|a| Address::parse(a).ok_or(format!("--refuse-settle {a:?}: not an address")))
        .collect::<Result<_, _>>()?;
    let state = Arc::new(Facilitator {
        default_balance: args.balance,
        answer_delay: std::time::Duration::from_millis(args.settle_answer_delay_ms),
        refuse_settle,
        books: Mutex::new(books),
    });
    let app = Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .with_state(state);
    let addr: SocketAddr = args.listen.parse().map_err(|e| format!("--listen: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("http://{local}");
    tracing::info!(%local, "dev facilitator listening");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn supported() -> Json<Value> {
    let kinds: Vec<Value> = relay_api::x402::KNOWN
        .iter()
        .flat_map(|k| {
            [
                json!({"x402Version": 1, "scheme": "exact", "network": k.v1_name}),
                json!({"x402Version": 2, "scheme": "exact", "network": format!("eip155:{}", k.chain_id)}),
            ]
        })
        .collect();
    Json(json!({ "kinds": kinds }))
}

/// A checked payment: the authorization and who signed it.
struct Checked {
    auth: TransferWithAuthorization,
    network: String,
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, &'static str> {
    let mut at = v;
    for p in path {
        at = at.get(p).ok_or("invalid_payload")?;
    }
    at.as_str().ok_or("invalid_payload")
}

fn uint(v: &Value, name: &str) -> Result<u128, &'static str> {
    text(v, &[name])?.parse().map_err(|_| "invalid_payload")
}

/// What `/verify` and `/settle` both check, from the request alone.
fn check(body: &Value) -> Result<Checked, &'static str> {
    let version = body
        .get("x402Version")
        .and_then(Value::as_u64)
        .ok_or("invalid_x402_version")?;
    let payload = body.get("paymentPayload").ok_or("invalid_payload")?;
    let req = body.get("paymentRequirements").ok_or("invalid_payment_requirements")?;
    let (scheme, network, amount) = match version {
        1 => (
            text(payload, &["scheme"])?,
            text(payload, &["network"])?,
            text(req, &["maxAmountRequired"])?,
        ),
        2 => (
            text(payload, &["accepted", "scheme"])?,
            text(payload, &["accepted", "network"])?,
            text(req, &["amount"])?,
        ),
        _ => return Err("invalid_x402_version"),
    };
    if scheme != "exact" || text(req, &["scheme"])? != "exact" {
        return Err("unsupported_scheme");
    }
    if network != text(req, &["network"])? {
        return Err("invalid_network");
    }
    let (net, _) = relay_api::x402::network(network).ok_or("invalid_network")?;
    let a = payload
        .get("payload")
        .and_then(|p| p.get("authorization"))
        .ok_or("invalid_payload")?;
    let addr = |name: &str| Address::parse(text(a, &[name])?).ok_or("invalid_payload");
    let auth = TransferWithAuthorization {
        from: addr("from")?,
        to: addr("to")?,
        value: uint(a, "value")?,
        valid_after: uint(a, "validAfter")?,
        valid_before: uint(a, "validBefore")?,
        nonce: evm::parse_bytes32(text(a, &["nonce"])?).ok_or("invalid_payload")?,
    };
    let pay_to = Address::parse(text(req, &["payTo"])?).ok_or("invalid_payment_requirements")?;
    if auth.to != pay_to {
        return Err("invalid_exact_evm_payload_recipient_mismatch");
    }
    if amount.parse::<u128>().ok() != Some(auth.value) {
        return Err("invalid_exact_evm_payload_authorization_value");
    }
    let now = relay_raft::wall_clock_ms() as u128 / 1000;
    if auth.valid_after > now {
        return Err("invalid_exact_evm_payload_authorization_valid_after");
    }
    if auth.valid_before < now + 6 {
        return Err("invalid_exact_evm_payload_authorization_valid_before");
    }
    let domain = Domain {
        name: text(req, &["extra", "name"])?.to_string(),
        version: text(req, &["extra", "version"])?.to_string(),
        chain_id: net.chain_id,
        verifying_contract: Address::parse(text(req, &["asset"])?).ok_or("invalid_payment_requirements")?,
    };
    let signature = text(payload, &["payload", "signature"])?;
    match evm::recover(&auth.digest(&domain), signature) {
        Ok(signer) if signer == auth.from => Ok(Checked {
            auth,
            network: network.to_string(),
        }),
        _ => Err("invalid_exact_evm_payload_signature"),
    }
}

impl Facilitator {
    /// Checks the books; with `spend`, moves the money and burns the nonce.
    fn book(&self, c: &Checked, spend: bool) -> Result<(), &'static str> {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        if books.used.contains(&(c.auth.from, c.auth.nonce)) {
            return Err("invalid_exact_evm_nonce_already_used");
        }
        let balance = *books.balances.get(&c.auth.from).unwrap_or(&self.default_balance);
        if (balance as u128) < c.auth.value {
            return Err("insufficient_funds");
        }
        if spend {
            books.used.insert((c.auth.from, c.auth.nonce));
            books.balances.insert(c.auth.from, balance - c.auth.value as u64);
        }
        Ok(())
    }
}

async fn verify(State(f): State<Arc<Facilitator>>, Json(body): Json<Value>) -> Json<Value> {
    match check(&body).and_then(|c| f.book(&c, false).map(|()| c)) {
        Ok(c) => Json(json!({"isValid": true, "payer": c.auth.from.checksummed()})),
        Err(reason) => Json(json!({"isValid": false, "invalidReason": reason})),
    }
}

async fn settle(State(f): State<Arc<Facilitator>>, Json(body): Json<Value>) -> Json<Value> {
    let settled = check(&body).and_then(|c| {
        if f.refuse_settle.contains(&c.auth.from) {
            return Err("settlement_refused");
        }
        f.book(&c, true).map(|()| c)
    });
    match settled {
        Ok(c) => {
            tokio::time::sleep(f.answer_delay).await;
            let mut seed = c.auth.from.0.to_vec();
            seed.extend_from_slice(&c.auth.nonce);
            Json(json!({
                "success": true,
                "transaction": format!("0x{}", hex::encode(evm::keccak(&seed))),
                "network": c.network,
                "payer": c.auth.from.checksummed(),
            }))
        }
        Err(reason) => Json(json!({"success": false, "errorReason": reason, "transaction": "", "network": ""})),
    }
}
