//! Each mock described as data: everything that makes the user service
//! differ from the order service, in one value.
//!
//! The shell around it — flags, start-up, routes, the simulated database —
//! is the same code for both, so a fix to one mock can never miss the other.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::Json;
use mock_db::mock::{Mock, MockName, MockSettings, SettingsError};
use mock_db::simulated::SimulatedQuery;

use crate::{fake_orders, fake_users};

/// One mock service.
#[derive(Debug)]
pub struct MockSpec {
    /// Its `service.name` and the short name its baggage keys end in
    /// (`latency.user`, `fail.orders`, …).
    pub name: MockName,
    /// The one-line `--help` summary.
    pub about: &'static str,
    /// The one route, with an `{id}` segment (a user id).
    pub route: &'static str,
    /// Prefix of its environment variables: `<PREFIX>_LISTEN`, `<PREFIX>_LATENCY`, …
    pub env_prefix: &'static str,
    /// `--listen` unless set.
    pub default_listen: SocketAddr,
    /// `--latency` unless set.
    pub default_latency: Duration,
    /// What it pretends to ask its database.
    pub query: SimulatedQuery,
    /// The body for a user id that exists, once the query has waited.
    pub answer: fn(u64) -> Response,
}

/// `GET /users/{id}`: a deterministic fake user after 100 ms, as in the
/// story this suite grew from.
pub const USER_SERVICE: MockSpec = MockSpec {
    name: MockName {
        service: "user-service",
        short: "user",
    },
    about: "Mock user service: GET /users/{id} after a simulated database wait",
    route: "/users/{id}",
    env_prefix: "USER_SERVICE",
    default_listen: loopback(5001),
    default_latency: Duration::from_millis(100),
    query: SimulatedQuery {
        operation: "SELECT",
        collection: "users",
        text: "SELECT id, name, email, member_since FROM users WHERE id = ?",
    },
    answer: answer_user,
};

/// `GET /users/{id}/orders`: a deterministic list of fake orders after
/// 200 ms — the slow dependency of the story, the one that dominates a
/// sequential fan-out.
pub const ORDER_SERVICE: MockSpec = MockSpec {
    name: MockName {
        service: "order-service",
        short: "orders",
    },
    about: "Mock order service: GET /users/{id}/orders after a simulated database wait",
    route: "/users/{id}/orders",
    env_prefix: "ORDER_SERVICE",
    default_listen: loopback(5002),
    default_latency: Duration::from_millis(200),
    query: SimulatedQuery {
        operation: "SELECT",
        collection: "orders",
        text: "SELECT order_id, item, quantity, total_cents FROM orders WHERE user_id = ?",
    },
    answer: answer_orders,
};

/// Both mocks, for what is done to each (tests, docs).
pub const ALL: [&MockSpec; 2] = [&USER_SERVICE, &ORDER_SERVICE];

const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

fn answer_user(id: u64) -> Response {
    Json(fake_users::fake_user(id)).into_response()
}

fn answer_orders(user_id: u64) -> Response {
    Json(fake_orders::fake_orders(user_id)).into_response()
}

impl MockSpec {
    /// The path of its route for one id: `/users/7/orders`.
    pub fn path(&self, id: &str) -> String {
        self.route.replace("{id}", id)
    }

    /// Its simulated database with these settings (a latency above
    /// `max_delay` is refused).
    pub fn mock(&self, settings: MockSettings) -> Result<Mock, SettingsError> {
        Mock::new(self.name, settings)
    }

    /// Same, its draws seeded when `seed` is given (`--seed`).
    pub fn mock_seeded(
        &self,
        settings: MockSettings,
        seed: Option<u64>,
    ) -> Result<Mock, SettingsError> {
        match seed {
            Some(seed) => Mock::seeded(self.name, settings, seed),
            None => Mock::new(self.name, settings),
        }
    }

    /// Its simulated database with a constant latency, no faults, no pool.
    pub fn fixed(&self, latency: Duration) -> Mock {
        Mock::fixed(self.name, latency)
    }

    /// Its simulated database as it starts without flags.
    pub fn default_mock(&self) -> Mock {
        self.fixed(self.default_latency)
    }
}

/// A mock as a type, for what needs one: a `clap` parser per mock
/// ([`crate::cli::Args`]).
pub trait MockKind: Send + Sync + 'static {
    const SPEC: &'static MockSpec;
}

/// The user service as a type.
#[derive(Debug, Clone, Copy)]
pub struct UserService;

impl MockKind for UserService {
    const SPEC: &'static MockSpec = &USER_SERVICE;
}

/// The order service as a type.
#[derive(Debug, Clone, Copy)]
pub struct OrderService;

impl MockKind for OrderService {
    const SPEC: &'static MockSpec = &ORDER_SERVICE;
}
