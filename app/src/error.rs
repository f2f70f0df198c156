//! The one error type of the product: returned by server functions and JSON handlers alike,
//! mapped to an HTTP status and a `{"error": "..."}` body on the server.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("not signed in")]
    Unauthorized,
    #[error("invalid user name or password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A database Opsdeck was asked to work on (a backup target) cannot be reached or refused
    /// the connection: Opsdeck itself is fine, so not a 5xx, but 424 Failed Dependency.
    #[error("{0}")]
    TargetUnreachable(String),
    /// Details were logged on the server; the client only learns that something failed.
    #[error("internal error; the details are in the server log")]
    Internal,
    #[error("{0}")]
    ServerFn(String),
}

impl AppError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn unprocessable(msg: impl Into<String>) -> Self {
        Self::Unprocessable(msg.into())
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }

    /// HTTP status code for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::ServerFn(_) => 400,
            Self::Unauthorized | Self::BadCredentials => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge => 413,
            Self::Unprocessable(_) => 422,
            Self::TargetUnreachable(_) => 424,
            Self::TooManyRequests { .. } => 429,
            Self::Internal => 500,
            Self::Unavailable(_) => 503,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(e) => {
                Self::Unavailable(format!("cannot reach the Opsdeck server: {e}"))
            }
            other => Self::ServerFn(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    impl From<sqlx::Error> for AppError {
        fn from(e: sqlx::Error) -> Self {
            match &e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => {
                    tracing::warn!(error = %e, "database unavailable");
                    AppError::Unavailable("the database is unavailable; try again shortly".into())
                }
                sqlx::Error::Database(db) => match db.code().as_deref().unwrap_or_default() {
                    // Text with a NUL byte, or not valid in the database's encoding: the
                    // request's fault, whatever field carried it.
                    // A unique name taken meanwhile (two requests at once, or a rename).
                    "23505" => AppError::conflict("that name is already taken"),
                    "22021" | "22P05" => AppError::bad_request(
                        "the request holds text the database cannot store (a NUL byte or \
                         invalid character)",
                    ),
                    // The server is shutting down, restarting, refusing connections or out of
                    // connections: the same as not reaching it, so retry later.
                    code if code.starts_with("08")
                        || code.starts_with("53")
                        || matches!(code, "57P01" | "57P02" | "57P03") =>
                    {
                        tracing::warn!(error = %e, "database unavailable");
                        AppError::Unavailable(
                            "the database is unavailable; try again shortly".into(),
                        )
                    }
                    _ => {
                        tracing::error!(error = %e, "database error");
                        AppError::Internal
                    }
                },
                _ => {
                    tracing::error!(error = %e, "database error");
                    AppError::Internal
                }
            }
        }
    }

    impl From<tower_sessions::session::Error> for AppError {
        fn from(e: tower_sessions::session::Error) -> Self {
            tracing::error!(error = %e, "session store error");
            AppError::Unavailable("the session store is unavailable; try again shortly".into())
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = StatusCode::from_u16(self.status_code())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
            let mut res = (status, body).into_response();
            match &self {
                AppError::TooManyRequests { retry_after_secs } => {
                    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                        res.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                }
                AppError::Unavailable(_) => {
                    res.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                }
                _ => {}
            }
            res
        }
    }

    /// Inside a server function: make the HTTP status of the response match the error, so that
    /// scripts and browsers without WASM see 401/403/422 instead of a blanket 500.
    /// A plain HTML form post (no WASM yet) keeps Leptos's redirect back to the form, which
    /// carries the error in its URL.
    pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
        let form_post = leptos::prelude::use_context::<http::request::Parts>().is_some_and(|p| {
            p.method == http::Method::POST
                && p.headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("text/html"))
        });
        if form_post {
            return result;
        }
        if let Err(e) = &result {
            if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
                opts.set_status(
                    StatusCode::from_u16(e.status_code())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                );
            }
        }
        result
    }
}

#[cfg(feature = "ssr")]
pub use ssr::with_status;

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_the_kind_of_error() {
        let cases = [
            (AppError::bad_request("x"), 400),
            (AppError::Unauthorized, 401),
            (AppError::BadCredentials, 401),
            (AppError::forbidden("x"), 403),
            (AppError::not_found("x"), 404),
            (AppError::conflict("x"), 409),
            (AppError::PayloadTooLarge, 413),
            (AppError::unprocessable("x"), 422),
            (
                AppError::TooManyRequests {
                    retry_after_secs: 3,
                },
                429,
            ),
            (AppError::Internal, 500),
            (AppError::Unavailable("x".into()), 503),
            (AppError::TargetUnreachable("x".into()), 424),
        ];
        for (err, code) in cases {
            assert_eq!(err.status_code(), code, "{err:?}");
        }
    }

    #[test]
    fn internal_errors_reveal_nothing() {
        assert!(!AppError::Internal.to_string().contains("sql"));
        assert_eq!(
            AppError::TooManyRequests {
                retry_after_secs: 42
            }
            .to_string(),
            "too many attempts; try again in 42 s"
        );
    }
}
