//! The wire contract: the JSON the mocks answer and the aggregator reads.
//!
//! Its own tiny crate (serde only) so that both sides agree on one
//! definition without the aggregator linking, or rebuilding for, the mocks.
//! How the mocks *make* these values (deterministic fake data) stays with
//! the mocks.

use serde::{Deserialize, Serialize};

/// `GET /users/{id}` of the user service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub member_since: u16,
}

/// One element of `GET /users/{id}/orders` of the order service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub user_id: u64,
    pub item: String,
    pub quantity: u32,
    pub total_cents: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names are the contract: renaming one breaks the other side.
    #[test]
    fn field_names_are_the_wire_names() {
        let user = User {
            id: 7,
            name: "Ada Lovelace".into(),
            email: "ada.lovelace7@example.com".into(),
            member_since: 2015,
        };
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            serde_json::json!({"id": 7, "name": "Ada Lovelace",
                "email": "ada.lovelace7@example.com", "member_since": 2015})
        );
        let order = Order {
            order_id: "ord-7-1".into(),
            user_id: 7,
            item: "desk lamp".into(),
            quantity: 2,
            total_cents: 7800,
        };
        assert_eq!(
            serde_json::to_value(&order).unwrap(),
            serde_json::json!({"order_id": "ord-7-1", "user_id": 7, "item": "desk lamp",
                "quantity": 2, "total_cents": 7800})
        );
    }
}
