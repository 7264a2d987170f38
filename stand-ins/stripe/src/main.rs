//! `stripe-stand-in`: the stand-in for Stripe's API as a process, for local runs and the
//! functions' smoke test. Not Stripe (see the library's doc).
//!
//! Settings (environment): `STAND_IN_LISTEN` (default `127.0.0.1:12111`), and to deliver
//! webhooks `STAND_IN_WEBHOOK_URL` with `STRIPE_WEBHOOK_SECRET`. Its secret key is
//! [`STAND_IN_KEY`]: set `STRIPE_SECRET_KEY` to it and `STRIPE_API_BASE` to its address.

use ticketing_stripe_stand_in::{StandIn, Webhooks, STAND_IN_KEY};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::var("STAND_IN_LISTEN").unwrap_or_else(|_| "127.0.0.1:12111".into());
    let webhooks = match (
        std::env::var("STAND_IN_WEBHOOK_URL"),
        std::env::var("STRIPE_WEBHOOK_SECRET"),
    ) {
        (Ok(url), Ok(secret)) => Some(Webhooks { url, secret }),
        (Ok(_), Err(_)) => {
            return Err(std::io::Error::other(
                "STAND_IN_WEBHOOK_URL needs STRIPE_WEBHOOK_SECRET to sign with",
            ))
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let stand_in = StandIn::serve(listener, webhooks);
    println!(
        "stripe stand-in (not Stripe) on {}, secret key {STAND_IN_KEY}",
        stand_in.base_url
    );
    tokio::signal::ctrl_c().await
}
