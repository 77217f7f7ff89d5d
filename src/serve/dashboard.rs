//! The dashboard at `/`: one page and its assets, embedded in the binary (no CDN, no build
//! step). It reads the JSON API from the browser; the server only hands out these files,
//! with a Content-Security-Policy that allows nothing but this origin.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The page and its assets: name under `/assets/` (the page: `/`), content type, bytes.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("dashboard/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("dashboard/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("dashboard/favicon.svg"),
    ),
];

/// Scripts, styles, images and requests from this origin only; no frames, no plugins, no
/// forms sent anywhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn serve(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // The files change only with the binary: revalidated, never stale after an upgrade.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response()
}

pub(super) async fn page() -> Response {
    let (_, t, b) = ASSETS[0];
    serve(t, b)
}

pub(super) async fn asset(
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let name = name.map(|Path(n)| n).unwrap_or_default();
    ASSETS
        .iter()
        .skip(1)
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| serve(t, b))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no dashboard asset {:?}: the dashboard is at /",
                name.chars().take(64).collect::<String>()
            ))
        })
}
