//! The few API calls the tool makes: create a show and open its sales, read a show and
//! its availability, and hold seats.

use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::args::Targets;
use crate::oversell::ApiSeats;

/// The problem type of a sold-out answer (see `api/src/error.rs`).
pub const SOLD_OUT: &str = "urn:ticketing:problem:sold-out";

/// The price of a seat in the shows the tool creates, in cents.
const UNIT_PRICE_MINOR: i64 = 4500;

/// A section of `GET /v1/shows/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SectionView {
    pub name: String,
    pub capacity: u32,
}

/// The parts of `GET /v1/shows/{id}` the tool reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ShowView {
    pub show_id: Uuid,
    /// `scheduled`, `on_sale`, `closed` or `cancelled`.
    pub sales: String,
    pub max_per_order: u32,
    pub sections: Vec<SectionView>,
}

impl ShowView {
    /// The section named `name`, in any case (as the API compares them).
    pub fn section(&self, name: &str) -> Option<&SectionView> {
        self.sections
            .iter()
            .find(|s| s.name.to_lowercase() == name.to_lowercase())
    }
}

#[derive(Debug, Deserialize)]
struct AvailabilityView {
    sections: Vec<SectionSeatsView>,
}

#[derive(Debug, Deserialize)]
struct SectionSeatsView {
    name: String,
    capacity: u64,
    held: u64,
    sold: u64,
}

/// What a hold request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldAnswer {
    pub status: u16,
    /// The `type` of a problem+json answer.
    pub problem_type: Option<String>,
    /// Seats held, for a `201`.
    pub granted_seats: Option<u32>,
    /// The new reservation, for a `201`.
    pub reservation_id: Option<String>,
}

impl HoldAnswer {
    pub fn is_sold_out(&self) -> bool {
        self.problem_type.as_deref() == Some(SOLD_OUT)
    }
}

/// The API, with one connection pool shared by every buyer.
#[derive(Debug, Clone)]
pub struct Api {
    http: Client,
    targets: Targets,
}

impl Api {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(targets: Targets, connections: u32, timeout: Duration) -> anyhow::Result<Self> {
        let http = Client::builder()
            .timeout(timeout)
            // One connection per buyer stays open between its requests.
            .pool_max_idle_per_host(connections as usize)
            .tcp_nodelay(true)
            // Loopback targets: never through an HTTP_PROXY from the environment.
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, targets })
    }

    /// Creates a show with one section of `capacity` seats (in `buckets` escrow
    /// buckets, or the server's default) and a per-order limit of `max_per_order`,
    /// starting in 30 days.
    ///
    /// # Errors
    /// Any answer but `201`, with the problem the API sent.
    pub async fn create_show(
        &self,
        token: &str,
        section: &str,
        capacity: u32,
        buckets: Option<u32>,
        max_per_order: u32,
    ) -> anyhow::Result<Uuid> {
        let starts_at = chrono::Utc::now() + chrono::TimeDelta::days(30);
        let mut new_section =
            json!({"name": section, "capacity": capacity, "unit_price_minor": UNIT_PRICE_MINOR});
        if let Some(buckets) = buckets {
            new_section["buckets"] = json!(buckets);
        }
        let body = json!({
            "title": "Flash sale load test",
            "venue": "ticketing-loadtest",
            "starts_at": starts_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "currency": "EUR",
            "max_per_order": max_per_order,
            "sections": [new_section],
        });
        let url = format!("{}/shows", self.targets.shows);
        let response = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header("idempotency-key", fresh_key())
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let show: ShowView = expect_json(response, StatusCode::CREATED, &url).await?;
        Ok(show.show_id)
    }

    /// # Errors
    /// Any answer but `200`.
    pub async fn open_sales(&self, token: &str, show_id: Uuid) -> anyhow::Result<()> {
        let url = format!("{}/shows/{show_id}/open-sales", self.targets.shows);
        let response = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header("idempotency-key", fresh_key())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let _: serde_json::Value = expect_json(response, StatusCode::OK, &url).await?;
        Ok(())
    }

    /// # Errors
    /// Any answer but `200` (a `404` for an unknown show).
    pub async fn show(&self, show_id: Uuid) -> anyhow::Result<ShowView> {
        let url = format!("{}/shows/{show_id}", self.targets.queries);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        expect_json(response, StatusCode::OK, &url).await
    }

    /// The section's seats as the (projected) availability reports them.
    ///
    /// # Errors
    /// Any answer but `200`, or no such section in it.
    pub async fn section_seats(&self, show_id: Uuid, section: &str) -> anyhow::Result<ApiSeats> {
        let url = format!("{}/shows/{show_id}/availability", self.targets.queries);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let availability: AvailabilityView = expect_json(response, StatusCode::OK, &url).await?;
        let seats = availability
            .sections
            .into_iter()
            .find(|s| s.name.to_lowercase() == section.to_lowercase())
            .with_context(|| format!("GET {url}: no section {section:?} in the answer"))?;
        Ok(ApiSeats {
            capacity: seats.capacity,
            held: seats.held,
            sold: seats.sold,
        })
    }

    /// `POST /v1/reservations` for `quantity` seats, with a fresh `Idempotency-Key`:
    /// every request is a new purchase attempt, never a replay.
    ///
    /// # Errors
    /// Only when no HTTP answer came (connection refused, timeout): every status is
    /// an answer.
    pub async fn hold(
        &self,
        token: &str,
        show_id: Uuid,
        section: &str,
        quantity: u32,
    ) -> Result<HoldAnswer, reqwest::Error> {
        let response = self
            .http
            .post(format!("{}/reservations", self.targets.reservations))
            .bearer_auth(token)
            .header("idempotency-key", fresh_key())
            .json(&json!({"show_id": show_id, "section": section, "quantity": quantity}))
            .send()
            .await?;
        let status = response.status().as_u16();
        // The whole body is read, so that the connection goes back to the pool.
        let body = response.bytes().await?;
        Ok(read_hold_answer(status, &body))
    }

    /// `POST /v1/reservations/{id}/payment` with `tok_visa` and a fresh
    /// `Idempotency-Key`; its status.
    ///
    /// # Errors
    /// Only when no HTTP answer came.
    pub async fn pay(&self, token: &str, reservation_id: &str) -> Result<u16, reqwest::Error> {
        let response = self
            .http
            .post(format!(
                "{}/reservations/{reservation_id}/payment",
                self.targets.reservations
            ))
            .bearer_auth(token)
            .header("idempotency-key", fresh_key())
            .json(&json!({"card_token": "tok_visa"}))
            .send()
            .await?;
        let status = response.status().as_u16();
        response.bytes().await?;
        Ok(status)
    }
}

/// Classifies a hold's answer from its status and body.
pub fn read_hold_answer(status: u16, body: &[u8]) -> HoldAnswer {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name));
    let problem_type = if status >= 400 {
        field("type").and_then(|t| t.as_str()).map(str::to_owned)
    } else {
        None
    };
    let granted_seats = (status == 201).then(|| {
        field("quantity")
            .and_then(serde_json::Value::as_u64)
            .and_then(|q| u32::try_from(q).ok())
            // A 201 always holds seats; an unreadable body still counts them as 0 so
            // that the checks, not this parser, say something is wrong.
            .unwrap_or(0)
    });
    let reservation_id = (status == 201)
        .then(|| {
            field("reservation_id")
                .and_then(|r| r.as_str())
                .map(str::to_owned)
        })
        .flatten();
    HoldAnswer {
        status,
        problem_type,
        granted_seats,
        reservation_id,
    }
}

/// A new `Idempotency-Key`.
fn fresh_key() -> String {
    format!("loadtest-{}", Uuid::new_v4().simple())
}

/// The JSON body of an answer with status `expected`, or an error with what came.
async fn expect_json<T: serde::de::DeserializeOwned>(
    response: Response,
    expected: StatusCode,
    url: &str,
) -> anyhow::Result<T> {
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if status != expected {
        bail!("{url} answered {status}: {body}");
    }
    serde_json::from_str(&body)
        .with_context(|| format!("{url} answered an unexpected body: {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_201_grants_the_quantity_in_its_body() {
        let answer = read_hold_answer(201, br#"{"reservation_id":"x","quantity":3}"#);
        assert_eq!(answer.granted_seats, Some(3));
        assert_eq!(answer.reservation_id.as_deref(), Some("x"));
        assert_eq!(answer.problem_type, None);
    }

    #[test]
    fn a_problem_is_classified_by_its_type() {
        let answer = read_hold_answer(
            409,
            br#"{"type":"urn:ticketing:problem:sold-out","title":"Sold out","status":409,"detail":"","available":0}"#,
        );
        assert!(answer.is_sold_out());
        assert_eq!(answer.granted_seats, None);

        let contention = read_hold_answer(409, br#"{"type":"urn:ticketing:problem:contention"}"#);
        assert!(!contention.is_sold_out());
        assert_eq!(
            contention.problem_type.as_deref(),
            Some("urn:ticketing:problem:contention")
        );

        // A proxy's HTML error page has no problem type.
        let html = read_hold_answer(502, b"<html>bad gateway</html>");
        assert_eq!(html.problem_type, None);
    }
}
