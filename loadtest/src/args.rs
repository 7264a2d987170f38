//! The command line, and its checks: every bad argument is refused with a clear
//! message before anything touches the network.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgGroup, Parser};
use reqwest::Url;
use ticketing_domain::show::MAX_CAPACITY;
use ticketing_domain::{Quantity, SectionName};
use uuid::Uuid;

/// The capacity of the section the tool creates, unless told otherwise.
pub const DEFAULT_CAPACITY: u32 = 50_000;
/// The name of the section the tool creates, unless told otherwise.
pub const DEFAULT_SECTION: &str = "Flash Sale";

/// A flash-sale load test of the ticketing API: concurrent buyers hold seats in one
/// section, then the seats granted are checked against what the API and the event
/// store report. Exits non-zero when a check fails.
#[derive(Debug, Parser)]
#[command(name = "ticketing-loadtest", version, about)]
#[command(group(ArgGroup::new("stop").required(true).args(["duration", "until_sold_out"])))]
pub struct Args {
    /// The API's base URL, `/v1` included. Loopback `http://` only.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080/v1")]
    pub base_url: String,
    /// Base URL of the show commands (`POST /shows`, `/open-sales`) when another
    /// process serves them, e.g. http://localhost:9000/lambda-url/shows/v1 under
    /// `cargo lambda watch` [default: --base-url].
    #[arg(long, value_name = "URL")]
    pub shows_url: Option<String>,
    /// Base URL of `POST /reservations` when another process serves it
    /// (http://localhost:9000/lambda-url/reservations/v1) [default: --base-url].
    #[arg(long, value_name = "URL")]
    pub reservations_url: Option<String>,
    /// Base URL of `GET /shows/{id}` and `/availability` when another process serves
    /// them (http://localhost:9000/lambda-url/queries/v1) [default: --base-url].
    #[arg(long, value_name = "URL")]
    pub queries_url: Option<String>,

    /// Reuse this show instead of creating one (with --section). Its sales must be
    /// open.
    #[arg(long, value_name = "UUID", requires = "section")]
    pub show_id: Option<Uuid>,
    /// The section to buy in; when the tool creates the show, its one section's name
    /// [default: "Flash Sale"].
    #[arg(long, value_name = "NAME")]
    pub section: Option<String>,
    /// Seats of the section the tool creates [default: 50000].
    #[arg(long, conflicts_with = "show_id",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CAPACITY)))]
    pub capacity: Option<u32>,
    /// Escrow buckets of the section the tool creates (1 is an unsplit section)
    /// [default: the server's, one per 5,000 seats].
    #[arg(long, conflicts_with = "show_id", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub buckets: Option<u32>,

    /// Concurrent buyers, each sending its next hold as soon as the last one is
    /// answered.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub buyers: u32,
    /// Seats per hold. With --until-sold-out, a buyer told "sold out" asks for 1 seat
    /// from then on, so that the section sells out to the last seat.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(Quantity::MAX)))]
    pub quantity: u32,
    /// Run for this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: Option<u64>,
    /// Run until a hold of 1 seat is answered sold out (at most --max-duration).
    #[arg(long)]
    pub until_sold_out: bool,
    /// Pay for every granted hold at once (`POST /v1/reservations/{id}/payment` with
    /// `tok_visa`): the purchase path, a hold then its payment, each timed on its own.
    #[arg(long)]
    pub pay: bool,
    /// The longest an --until-sold-out run may take, in seconds. Keep it below the
    /// server's HOLD_DURATION_SECONDS (600 by default): an expired hold gives its seats
    /// back, and the checks would no longer balance.
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_duration: u64,
    /// How long to wait, after the load, for the projected availability to show every
    /// granted seat, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub settle_timeout: u64,
    /// The longest one request may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout: u64,

    /// The organizer's bearer token, to create the show. Without it, one is minted
    /// from JWT_HS256_SECRET or ./.ticketing-dev-secret.
    #[arg(long, env = "LOADTEST_ORGANIZER_TOKEN", hide_env_values = true)]
    pub organizer_token: Option<String>,
    /// A customer's bearer token, shared by every buyer. Without it, one token per
    /// buyer is minted from JWT_HS256_SECRET or ./.ticketing-dev-secret.
    #[arg(long, env = "LOADTEST_CUSTOMER_TOKEN", hide_env_values = true)]
    pub customer_token: Option<String>,

    /// The event store (`postgres://...` or `sqlite:...`): also check the section's
    /// `SeatsHeld` events in SQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// When the load stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRule {
    After(Duration),
    UntilSoldOut { at_most: Duration },
}

/// Where the route groups are served: one process (`ticketing serve`) or one Lambda
/// function each. Each URL ends before the route's own path (`.../v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub shows: String,
    pub reservations: String,
    pub queries: String,
}

/// The show to sell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowChoice {
    Create {
        section: String,
        capacity: u32,
        buckets: Option<u32>,
    },
    Reuse {
        show_id: Uuid,
        section: String,
    },
}

/// The checked arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Targets,
    pub show: ShowChoice,
    pub buyers: u32,
    pub quantity: u32,
    pub stop: StopRule,
    pub pay: bool,
    pub settle_timeout: Duration,
    pub request_timeout: Duration,
    pub organizer_token: Option<String>,
    pub customer_token: Option<String>,
    pub database_url: Option<String>,
    pub json: Option<PathBuf>,
}

impl Args {
    /// # Errors
    /// A URL that is not loopback `http://`, a section name the API would refuse, or
    /// an empty token.
    pub fn check(self) -> anyhow::Result<Settings> {
        let base = base_url(&self.base_url).context("--base-url")?;
        let other = |url: Option<String>, flag: &str| match url {
            Some(url) => base_url(&url).with_context(|| flag.to_owned()),
            None => Ok(base.clone()),
        };
        let targets = Targets {
            shows: other(self.shows_url, "--shows-url")?,
            reservations: other(self.reservations_url, "--reservations-url")?,
            queries: other(self.queries_url, "--queries-url")?,
        };

        let section = self.section.unwrap_or_else(|| DEFAULT_SECTION.to_owned());
        SectionName::parse(section.clone()).map_err(|_| {
            anyhow::anyhow!(
                "--section {section:?}: a section name is 1-{} letters, digits, spaces, `-` or `_`, without leading or trailing spaces",
                SectionName::MAX_LEN
            )
        })?;
        let show = match self.show_id {
            Some(show_id) => ShowChoice::Reuse { show_id, section },
            None => ShowChoice::Create {
                section,
                capacity: self.capacity.unwrap_or(DEFAULT_CAPACITY),
                buckets: self.buckets,
            },
        };

        let stop = match self.duration {
            Some(seconds) => StopRule::After(Duration::from_secs(seconds)),
            None => StopRule::UntilSoldOut {
                at_most: Duration::from_secs(self.max_duration),
            },
        };
        let token = |token: Option<String>, flag: &str| match token {
            Some(t) if t.trim().is_empty() => bail!("{flag} is empty"),
            Some(t) => Ok(Some(t.trim().to_owned())),
            None => Ok(None),
        };
        Ok(Settings {
            targets,
            show,
            buyers: self.buyers,
            quantity: self.quantity,
            stop,
            pay: self.pay,
            settle_timeout: Duration::from_secs(self.settle_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            organizer_token: token(self.organizer_token, "--organizer-token")?,
            customer_token: token(self.customer_token, "--customer-token")?,
            database_url: self.database_url.filter(|url| !url.trim().is_empty()),
            json: self.json,
        })
    }
}

/// Checks a base URL and returns it without a trailing `/`.
///
/// Only loopback `http://` targets: the tool is a load generator, and must never be
/// pointed at somebody else's server by mistake.
fn base_url(raw: &str) -> anyhow::Result<String> {
    let url = Url::parse(raw).with_context(|| format!("{raw:?} is not a URL"))?;
    if url.scheme() != "http" {
        bail!("{raw:?}: only http:// URLs are supported (targets are loopback only)");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("{raw:?}: a base URL has no query or fragment");
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{raw:?}: the target must be a loopback address (127.0.0.1, ::1 or localhost)");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Settings> {
        let argv = std::iter::once("ticketing-loadtest").chain(args.iter().copied());
        Args::try_parse_from(argv)?.check()
    }

    #[test]
    fn loopback_http_urls_only() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/v1/").unwrap(),
            "http://127.0.0.1:8080/v1"
        );
        assert!(base_url("http://localhost:9000/lambda-url/shows/v1").is_ok());
        assert!(base_url("http://[::1]:8080/v1").is_ok());
        assert!(base_url("http://127.1.2.3/v1").is_ok());
        for refused in [
            "http://example.com/v1",
            "http://10.0.0.1:8080/v1",
            "https://127.0.0.1/v1",
            "http://127.0.0.1/v1?x=1",
            "127.0.0.1:8080",
        ] {
            assert!(base_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn defaults_create_a_50k_section_and_route_everything_to_the_base_url() {
        let s = parse(&["--until-sold-out"]).unwrap();
        assert_eq!(
            s.show,
            ShowChoice::Create {
                section: DEFAULT_SECTION.into(),
                capacity: DEFAULT_CAPACITY,
                buckets: None,
            }
        );
        let split = parse(&["--until-sold-out", "--buckets", "4"]).unwrap();
        assert!(matches!(
            split.show,
            ShowChoice::Create {
                buckets: Some(4),
                ..
            }
        ));
        assert!(parse(&["--until-sold-out", "--buckets", "65"]).is_err());
        assert_eq!(s.targets.reservations, "http://127.0.0.1:8080/v1");
        assert_eq!(s.targets.shows, s.targets.queries);
        assert_eq!(
            s.stop,
            StopRule::UntilSoldOut {
                at_most: Duration::from_secs(300)
            }
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        // Neither or both stop rules.
        assert!(parse(&[]).is_err());
        assert!(parse(&["--duration", "5", "--until-sold-out"]).is_err());
        // Beyond the domain's limits.
        let over = (MAX_CAPACITY + 1).to_string();
        assert!(parse(&["--until-sold-out", "--capacity", &over]).is_err());
        assert!(parse(&["--until-sold-out", "--quantity", "0"]).is_err());
        assert!(parse(&["--until-sold-out", "--quantity", "101"]).is_err());
        assert!(parse(&["--until-sold-out", "--buyers", "0"]).is_err());
        // A reused show needs its section, and has its own capacity.
        let id = "0192f0c5-0000-7000-8000-000000000000";
        assert!(parse(&["--until-sold-out", "--show-id", id]).is_err());
        assert!(parse(&[
            "--until-sold-out",
            "--show-id",
            id,
            "--section",
            "A",
            "--capacity",
            "5"
        ])
        .is_err());
        assert!(parse(&["--until-sold-out", "--section", "Bad/Name"]).is_err());
        assert!(parse(&["--until-sold-out", "--queries-url", "http://example.com"]).is_err());
    }
}
