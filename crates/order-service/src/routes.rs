use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use mock_db::simulated::SimulatedQuery;
use service_kit::user_id::parse_user_id;
use service_kit::ApiError;

use crate::{fake_orders, Config, Order};

const LOOKUP: SimulatedQuery = SimulatedQuery {
    operation: "SELECT",
    collection: "orders",
    text: "SELECT order_id, item, quantity, total_cents FROM orders WHERE user_id = ?",
};

pub(crate) fn routes(config: Config) -> Router {
    Router::new()
        .route("/users/{id}/orders", get(list_orders))
        .with_state(config)
}

async fn list_orders(
    State(config): State<Config>,
    Path(raw_id): Path<String>,
) -> Result<Json<Vec<Order>>, ApiError> {
    let id = parse_user_id(&raw_id)?;
    config.mock.query(LOOKUP).await?;
    Ok(Json(fake_orders(id)))
}
