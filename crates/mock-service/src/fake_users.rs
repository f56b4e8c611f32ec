//! Deterministic fake users: what the user service answers.

use profile_contract::User;
use service_kit::user_id::mix;

const FIRST: [&str; 12] = [
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia",
    "Leslie", "Barbara",
];
const LAST: [&str; 12] = [
    "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson",
    "Perlman", "Lamport", "Simons",
];

/// The same id always gives the same user.
pub fn fake_user(id: u64) -> User {
    let seed = mix(id);
    let first = FIRST[(seed % 12) as usize];
    let last = LAST[((seed >> 8) % 12) as usize];
    User {
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
