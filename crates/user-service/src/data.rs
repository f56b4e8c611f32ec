//! Deterministic fake users.

use serde::{Deserialize, Serialize};
use service_kit::user_id::mix;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub member_since: u16,
}

const FIRST: [&str; 12] = [
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia",
    "Leslie", "Barbara",
];
const LAST: [&str; 12] = [
    "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson",
    "Perlman", "Lamport", "Simons",
];

impl User {
    /// The same id always gives the same user.
    pub fn for_id(id: u64) -> Self {
        let seed = mix(id);
        let first = FIRST[(seed % 12) as usize];
        let last = LAST[((seed >> 8) % 12) as usize];
        Self {
            id,
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                id
            ),
            member_since: 2010 + ((seed >> 16) % 16) as u16,
        }
    }
}
