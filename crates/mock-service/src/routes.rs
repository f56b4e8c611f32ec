//! The one route of a mock: validate the id, wait for the simulated
//! database, answer.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use mock_db::mock::Mock;
use service_kit::user_id::parse_user_id;
use service_kit::ApiError;

use crate::MockSpec;

#[derive(Clone)]
struct Served {
    spec: &'static MockSpec,
    mock: Mock,
}

pub(crate) fn routes(spec: &'static MockSpec, mock: Mock) -> Router {
    Router::new()
        .route(spec.route, get(answer))
        .with_state(Served { spec, mock })
}

async fn answer(
    State(served): State<Served>,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    // Validate before "querying": a bad id costs no database time.
    let id = parse_user_id(&raw_id)?;
    served.mock.query(served.spec.query).await?;
    Ok((served.spec.answer)(id))
}
