//! The CSS and the scripts, compiled into the binary: the pages load
//! nothing from anywhere else.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::WebError;

/// (name, content type, bytes) of every asset.
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "cardhub.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/cardhub.css"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/live.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/upload.js"),
    ),
];

pub(super) async fn file(Path(name): Path<String>) -> Result<Response, WebError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| WebError::NotFound(format!("no asset {name}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        *bytes,
    )
        .into_response())
}
