use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use mock_db::simulated::SimulatedQuery;
use service_kit::user_id::parse_user_id;
use service_kit::ApiError;

use crate::{fake_user, Config, User};

const LOOKUP: SimulatedQuery = SimulatedQuery {
    operation: "SELECT",
    collection: "users",
    text: "SELECT id, name, email, member_since FROM users WHERE id = ?",
};

pub(crate) fn routes(config: Config) -> Router {
    Router::new()
        .route("/users/{id}", get(get_user))
        .with_state(config)
}

async fn get_user(
    State(config): State<Config>,
    Path(raw_id): Path<String>,
) -> Result<Json<User>, ApiError> {
    // Validate before "querying": a bad id costs no database time.
    let id = parse_user_id(&raw_id)?;
    config.mock.query(LOOKUP).await?;
    Ok(Json(fake_user(id)))
}
