//! `GET /api/openapi.json`: the document, generated from the code.

use std::sync::OnceLock;

use axum::{http::header, response::IntoResponse};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    // Built once: the document only changes with the code.
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        crate::openapi()
            .to_json()
            .unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}
