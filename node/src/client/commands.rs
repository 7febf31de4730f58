//! What each client subcommand sends, and what it prints.

use std::path::Path;

use base64::Engine;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::{json, Value};

use super::args::*;
use super::http::{ok, Body, CliError, Conn};
use super::output::{self, parse_duration, parse_size};
use super::transfer;

/// Inline baton content is capped by the API at 3 MiB.
const BATON_INLINE_MAX: u64 = 3 << 20;

fn seg(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Prints `v` as JSON (`--json`) or as `human(v)`.
fn print(conn: &Conn, v: &Value, human: impl FnOnce(&Value) -> String) {
    match conn.json {
        true => println!("{v}"),
        false => println!("{}", human(v)),
    }
}

/// Stdin is read whole (its length goes in the request's headers); past this, stream a file.
const STDIN_MAX_BYTES: u64 = 1 << 30;

fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    let io = |e: std::io::Error| CliError::Io(format!("{}: {e}", path.display()));
    match path == Path::new("-") {
        true => {
            let mut all = Vec::new();
            let stdin = std::io::Read::take(std::io::stdin(), STDIN_MAX_BYTES + 1);
            std::io::Read::read_to_end(&mut { stdin }, &mut all).map_err(io)?;
            if all.len() as u64 > STDIN_MAX_BYTES {
                return Err(CliError::Usage(
                    "stdin: over 1 GiB; give a file, which is streamed".into(),
                ));
            }
            Ok(all)
        }
        false => std::fs::read(path).map_err(io),
    }
}

/// A token from a link (`…/api/claim/hof_…`) or the token itself.
fn last_segment(link: &str) -> &str {
    link.trim_end_matches('/').rsplit('/').next().unwrap_or(link)
}

pub async fn run(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Store(a) => store(a).await,
        ClientCommand::Ls(a) => ls(a).await,
        ClientCommand::Rm(a) => rm(a).await,
        ClientCommand::Handoff(a) => handoff(a).await,
        ClientCommand::Claim(a) => claim(a).await,
        ClientCommand::Checkpoint(a) => checkpoint(a).await,
        ClientCommand::Mailbox(a) => mailbox(a).await,
        ClientCommand::Baton(a) => baton(a).await,
        ClientCommand::Quote(a) => quote(a).await,
        ClientCommand::Pricing(a) => pricing(a).await,
        ClientCommand::Completions(_) => unreachable!("handled before the runtime starts"),
    }
}

async fn store(a: StoreArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    match a.action {
        StoreAction::Put {
            file,
            ttl,
            name,
            content_type,
        } => {
            let name = match name {
                Some(n) => n,
                None if file == Path::new("-") => "stdin".into(),
                None => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "upload".into()),
            };
            let (body, size) = match file == Path::new("-") {
                true => {
                    let all = read_input(&file)?;
                    let len = all.len() as u64;
                    (Body::Bytes(all), len)
                }
                false => {
                    let len = std::fs::metadata(&file)
                        .map_err(|e| CliError::Io(format!("{}: {e}", file.display())))?
                        .len();
                    (Body::File(file), len)
                }
            };
            let headers = [
                ("x-duration-seconds", parse_duration(&ttl)?.to_string()),
                ("x-size-bytes", size.to_string()),
                ("x-file-name", name),
                (
                    "content-type",
                    content_type.unwrap_or_else(|| "application/octet-stream".into()),
                ),
            ];
            let receipt = conn.json(Method::POST, "/api/store", &headers, body, true).await?;
            print(&conn, &receipt, |r| {
                format!(
                    "{}\nexpires {} · {} · paid {} USDC",
                    output::cell_str(&r["lease_id"]),
                    output::cell_str(&r["expires_at"]),
                    output::human_bytes(r["size_bytes"].as_u64().unwrap_or(0)),
                    r["paid_usdc"]
                )
            });
            Ok(())
        }
        StoreAction::Get { lease_id, output } => {
            let resp = conn
                .send(
                    Method::GET,
                    &format!("/api/download/{}", seg(&lease_id)),
                    &[],
                    &Body::Empty,
                    true,
                )
                .await?;
            let resp = ok(resp).await?;
            transfer::download(resp, output.as_ref(), conn.quiet).await?;
            Ok(())
        }
    }
}

async fn ls(a: LsArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut last = Value::Null;
    while all.len() < a.limit {
        let page = (a.limit - all.len()).clamp(1, 200);
        let path = match &cursor {
            Some(c) => format!("/api/leases?limit={page}&cursor={}", seg(c)),
            None => format!("/api/leases?limit={page}"),
        };
        last = conn.json(Method::GET, &path, &[], Body::Empty, true).await?;
        let rows = last["leases"].as_array().cloned().unwrap_or_default();
        let empty = rows.is_empty();
        all.extend(rows);
        match last["next_cursor"].as_str() {
            // An empty page with a cursor would never end.
            Some(c) if !empty => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    all.truncate(a.limit);
    let answer = json!({"status": "ok", "count": all.len(), "leases": all, "next_cursor": last["next_cursor"]});
    print(&conn, &answer, |v| {
        output::leases(v["leases"].as_array().map(Vec::as_slice).unwrap_or(&[]))
    });
    Ok(())
}

async fn rm(a: RmArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let path = match a.id.starts_with("btn_") {
        true => format!("/v1/baton/{}{}", seg(&a.id), if a.hard { "?hard=true" } else { "" }),
        false if a.hard => return Err(CliError::Usage("--hard is for batons".into())),
        false => format!("/api/store/{}", seg(&a.id)),
    };
    let v = match conn.json(Method::DELETE, &path, &[], Body::Empty, true).await {
        // A delete whose first answer was lost finds the lease already gone: that is its own
        // work (or expiry's), and the lease is gone either way.
        Err(CliError::Api { status: 410, .. }) if conn.retried() => {
            if !conn.quiet {
                eprintln!("relay: the first answer was lost; {} is gone now", a.id);
            }
            json!({"status": "ok", "lease_id": a.id, "deleted": true, "retried": true})
        }
        other => other?,
    };
    print(&conn, &v, |v| {
        format!(
            "deleted {}",
            output::cell_str(&v["lease_id"].as_str().map(Value::from).unwrap_or(v["baton_id"].clone()))
        )
    });
    Ok(())
}

async fn handoff(a: HandoffArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let mut body = json!({
        "max_claims": a.claims,
        "delete_on_claim": a.delete_on_claim,
        "require_post": a.require_post,
    });
    if let Some(ttl) = &a.ttl {
        body["ttl_seconds"] = json!(parse_duration(ttl)?);
    }
    let path = format!("/api/handoff/{}", seg(&a.lease_id));
    let v = conn.json(Method::POST, &path, &[], Body::Json(body), true).await?;
    print(&conn, &v, |v| {
        format!(
            "{}\n{} claim(s), expires {}",
            output::cell_str(&v["claim_url"]),
            v["max_claims"],
            output::cell_str(&v["expires_at"])
        )
    });
    Ok(())
}

async fn claim(a: ClaimArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let path = match a.link.starts_with("http://") || a.link.starts_with("https://") {
        true => a.link.clone(),
        false => format!("/api/claim/{}", seg(last_segment(&a.link))),
    };
    // POST counts the claim whether or not the token requires it; the link is the credential.
    let resp = conn.send(Method::POST, &path, &[], &Body::Empty, false).await?;
    let resp = ok(resp).await?;
    let remaining = resp
        .headers()
        .get("x-claims-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    transfer::download(resp, a.output.as_ref(), conn.quiet).await?;
    if let (Some(r), false) = (remaining, conn.quiet) {
        eprintln!("relay: claimed; {r} claim(s) left");
    }
    Ok(())
}

async fn checkpoint(a: CheckpointArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    match a.action {
        CheckpointAction::Put {
            workflow_id,
            file,
            ttl,
            max_body,
            if_version,
        } => {
            let state = read_input(&file)?;
            let path = format!("/api/checkpoint/{}", seg(&workflow_id));
            let mut headers = vec![("content-type", "application/json".to_string())];
            if let Some(v) = if_version {
                headers.push(("if-match", format!("\"{v}\"")));
            }
            let put = conn
                .send(Method::PUT, &path, &headers, &Body::Bytes(state.clone()), true)
                .await?;
            let v = match (put.status().as_u16(), &ttl) {
                (404, Some(ttl)) => {
                    let mut headers = vec![
                        ("content-type", "application/json".to_string()),
                        ("x-workflow-id", workflow_id.clone()),
                        ("x-duration-seconds", parse_duration(ttl)?.to_string()),
                    ];
                    if let Some(max) = &max_body {
                        headers.push(("x-max-body-bytes", parse_size(max)?.to_string()));
                    }
                    conn.json(Method::POST, "/api/checkpoint", &headers, Body::Bytes(state), true)
                        .await?
                }
                _ => ok(put)
                    .await?
                    .json()
                    .await
                    .map_err(|e| CliError::Io(format!("the answer is not JSON: {e}")))?,
            };
            print(&conn, &v, |v| {
                format!(
                    "{} version {} ({})",
                    workflow_id,
                    v["version"],
                    output::human_bytes(v["size_bytes"].as_u64().unwrap_or(0))
                )
            });
            Ok(())
        }
        CheckpointAction::Get { workflow_id, consume } => {
            let path = format!(
                "/api/checkpoint/{}{}",
                seg(&workflow_id),
                if consume { "?consume=true" } else { "" }
            );
            let resp = conn.send(Method::GET, &path, &[], &Body::Empty, true).await?;
            let resp = ok(resp).await?;
            transfer::download(resp, None, true).await?;
            println!();
            Ok(())
        }
        CheckpointAction::Rm { workflow_id } => {
            let path = format!("/api/checkpoint/{}", seg(&workflow_id));
            let v = conn.json(Method::DELETE, &path, &[], Body::Empty, true).await?;
            print(&conn, &v, |_| format!("deleted {workflow_id}"));
            Ok(())
        }
    }
}

async fn mailbox(a: MailboxArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    match a.action {
        MailboxAction::Create {
            capacity,
            ttl,
            keep_on_read,
        } => {
            let headers = [
                ("x-capacity-bytes", parse_size(&capacity)?.to_string()),
                ("x-duration-seconds", parse_duration(&ttl)?.to_string()),
                ("x-keep-on-read", keep_on_read.to_string()),
            ];
            let v = conn
                .json(Method::POST, "/api/mailbox", &headers, Body::Empty, true)
                .await?;
            print(&conn, &v, |v| {
                format!(
                    "{}\ndrop URL (shown once): {}\nexpires {}",
                    output::cell_str(&v["lease_id"]),
                    output::cell_str(&v["drop_url"]),
                    output::cell_str(&v["expires_at"])
                )
            });
            Ok(())
        }
        MailboxAction::Drop {
            link,
            file,
            content_type,
        } => {
            let path = match link.starts_with("http://") || link.starts_with("https://") {
                true => link.clone(),
                false => format!("/api/mailbox/drop/{}", seg(last_segment(&link))),
            };
            let headers = [(
                "content-type",
                content_type.unwrap_or_else(|| "application/octet-stream".into()),
            )];
            let v = conn
                .json(Method::POST, &path, &headers, Body::Bytes(read_input(&file)?), false)
                .await?;
            print(&conn, &v, |v| format!("dropped {}", output::cell_str(&v["id"])));
            Ok(())
        }
        MailboxAction::Poll { lease_id } => {
            let path = format!("/api/mailbox/{}/messages", seg(&lease_id));
            let v = conn.json(Method::GET, &path, &[], Body::Empty, true).await?;
            print(&conn, &v, |v| {
                let rows: Vec<Vec<String>> = v["items"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(|m| {
                        vec![
                            output::cell_str(&m["id"]),
                            output::human_bytes(m["size_bytes"].as_u64().unwrap_or(0)),
                            output::cell_str(&m["content_type"]),
                            output::cell_str(&m["received_at"]),
                        ]
                    })
                    .collect();
                output::table(&["MESSAGE", "SIZE", "TYPE", "RECEIVED"], &rows)
            });
            Ok(())
        }
        MailboxAction::Pickup {
            lease_id,
            message_id,
            output,
        } => {
            let path = format!("/api/mailbox/{}/messages/{}", seg(&lease_id), seg(&message_id));
            let resp = ok(conn.send(Method::GET, &path, &[], &Body::Empty, true).await?).await?;
            transfer::download(resp, output.as_ref(), conn.quiet).await?;
            Ok(())
        }
    }
}

async fn baton(a: BatonArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let id_path = |id: &str, rest: &str| format!("/v1/baton/{}{rest}", seg(id));
    let v = match a.action {
        BatonAction::Create {
            write,
            size,
            ttl,
            file,
            tokens,
        } => {
            let mut body = json!({});
            if let Some(w) = write {
                body["write"] = json!(w);
            }
            let mut capacity = json!({});
            if let Some(s) = size {
                capacity["size_bytes"] = json!(parse_size(&s)?);
            }
            if let Some(t) = ttl {
                capacity["duration_seconds"] = json!(parse_duration(&t)?);
            }
            if capacity.as_object().is_some_and(|c| !c.is_empty()) {
                body["capacity"] = capacity;
            }
            if !tokens.is_empty() {
                body["sharing"] = json!({"tokens": tokens.iter().map(|s| json!({"scope": s})).collect::<Vec<_>>()});
            }
            if let Some(file) = file {
                let content = read_input(&file)?;
                if content.len() as u64 > BATON_INLINE_MAX {
                    return Err(CliError::Usage("--file: at most 3 MiB inline".into()));
                }
                body["content_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(content));
            }
            let v = conn
                .json(Method::POST, "/v1/baton", &[], Body::Json(body), true)
                .await?;
            print(&conn, &v, |v| {
                let mut lines = vec![
                    output::cell_str(&v["baton_id"]),
                    format!(
                        "expires {} · paid {} USDC",
                        output::cell_str(&v["expires_at"]),
                        v["paid_usdc"]
                    ),
                ];
                for t in v["tokens"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    lines.push(format!(
                        "{} token (shown once): {}",
                        output::cell_str(&t["scope"]),
                        output::cell_str(&t["token"])
                    ));
                }
                lines.join("\n")
            });
            return Ok(());
        }
        BatonAction::Get { id, output } => {
            let resp = ok(conn
                .send(Method::GET, &id_path(&id, ""), &[], &Body::Empty, true)
                .await?)
            .await?;
            transfer::download(resp, output.as_ref(), conn.quiet).await?;
            return Ok(());
        }
        BatonAction::Put { id, file } => {
            let body = Body::Bytes(read_input(&file)?);
            conn.json(Method::PUT, &id_path(&id, ""), &[], body, true).await?
        }
        BatonAction::Append { id, text } => {
            let bytes = match text.as_str() {
                "-" => read_input(Path::new("-"))?,
                _ => text.into_bytes(),
            };
            let headers = [("content-type", "text/plain; charset=utf-8".to_string())];
            conn.json(
                Method::POST,
                &id_path(&id, "/entries"),
                &headers,
                Body::Bytes(bytes),
                true,
            )
            .await?
        }
        BatonAction::Entries { id, after } => {
            let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
            let v = conn
                .json(
                    Method::GET,
                    &id_path(&id, &format!("/entries{query}")),
                    &[],
                    Body::Empty,
                    true,
                )
                .await?;
            print(&conn, &v, |v| {
                let rows: Vec<Vec<String>> = v["entries"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(|e| {
                        vec![
                            e["seq"].to_string(),
                            output::cell_str(&e["at"]),
                            output::cell_str(&e["content"]),
                        ]
                    })
                    .collect();
                output::table(&["SEQ", "AT", "CONTENT"], &rows)
            });
            return Ok(());
        }
        BatonAction::Meta { id } => {
            conn.json(Method::GET, &id_path(&id, "/meta"), &[], Body::Empty, true)
                .await?
        }
        BatonAction::Tokens { id } => {
            let v = conn
                .json(Method::GET, &id_path(&id, "/tokens"), &[], Body::Empty, true)
                .await?;
            print(&conn, &v, |v| {
                output::list(
                    v,
                    "tokens",
                    &[
                        ("TOKEN", "token_id"),
                        ("SCOPE", "scope"),
                        ("READS", "reads"),
                        ("LEFT", "reads_remaining"),
                        ("EXPIRES", "expires_at"),
                    ],
                )
            });
            return Ok(());
        }
        BatonAction::Share {
            id,
            scope,
            read_cap,
            ttl,
        } => {
            let mut token = json!({"scope": scope});
            if let Some(cap) = read_cap {
                token["read_cap"] = json!(cap);
            }
            if let Some(ttl) = ttl {
                token["ttl_seconds"] = json!(parse_duration(&ttl)?);
            }
            let body = Body::Json(json!({"tokens": [token]}));
            let v = conn
                .json(Method::POST, &id_path(&id, "/tokens"), &[], body, true)
                .await?;
            print(&conn, &v, |v| {
                let t = &v["tokens"][0];
                format!(
                    "{} ({} token, shown once): {}",
                    output::cell_str(&t["token_id"]),
                    output::cell_str(&t["scope"]),
                    output::cell_str(&t["token"])
                )
            });
            return Ok(());
        }
        BatonAction::Revoke { id, token_id } => {
            let path = id_path(&id, &format!("/tokens/{}", seg(&token_id)));
            conn.json(Method::DELETE, &path, &[], Body::Empty, true).await?
        }
        BatonAction::Extend { id, ttl, size } => {
            let mut body = json!({});
            if let Some(ttl) = ttl {
                body["add_seconds"] = json!(parse_duration(&ttl)?);
            }
            if let Some(size) = size {
                body["add_size_bytes"] = json!(parse_size(&size)?);
            }
            conn.json(Method::POST, &id_path(&id, "/extend"), &[], Body::Json(body), true)
                .await?
        }
        BatonAction::Rm { id, hard } => {
            let query = if hard { "?hard=true" } else { "" };
            conn.json(Method::DELETE, &id_path(&id, query), &[], Body::Empty, true)
                .await?
        }
    };
    print(&conn, &v, output::fields);
    Ok(())
}

async fn quote(a: QuoteArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let path = format!(
        "/api/quote?size_bytes={}&duration_seconds={}",
        parse_size(&a.size)?,
        parse_duration(&a.ttl)?
    );
    let v = conn.json(Method::GET, &path, &[], Body::Empty, false).await?;
    print(&conn, &v, |v| {
        format!(
            "{} USDC ({} micro-USDC) for {} over {}",
            v["priceUsdc"],
            output::cell_str(&v["cost_micros"]),
            output::human_bytes(v["size_bytes"].as_u64().unwrap_or(0)),
            output::cell_str(&v["duration_human"])
        )
    });
    Ok(())
}

async fn pricing(a: PricingArgs) -> Result<(), CliError> {
    let conn = Conn::new(&a.conn)?;
    let v = conn.json(Method::GET, "/api/pricing", &[], Body::Empty, false).await?;
    print(&conn, &v, output::fields);
    Ok(())
}

/// `relay account balance` (no id) and `relay account billing`: the caller's own account.
pub async fn own_account(conn: &ClientConn, billing: bool) -> Result<(), CliError> {
    let conn = Conn::new(conn)?;
    if !billing {
        let v = conn.json(Method::GET, "/api/account", &[], Body::Empty, true).await?;
        print(&conn, &v, |v| {
            format!(
                "{}  {} USDC ({} micro-USDC)",
                output::cell_str(&v["account_id"]),
                v["balance_usdc"],
                output::cell_str(&v["balance_micros"])
            )
        });
        return Ok(());
    }
    let v = conn
        .json(Method::GET, "/api/billing?limit=200", &[], Body::Empty, true)
        .await?;
    print(&conn, &v, |v| {
        output::list(
            v,
            "items",
            &[
                ("AT", "created_at"),
                ("LEASE", "lease_id"),
                ("MICROS", "amount_micros"),
                ("BALANCE AFTER", "balance_after_micros"),
                ("PAID BY", "payment_method"),
            ],
        )
    });
    Ok(())
}
