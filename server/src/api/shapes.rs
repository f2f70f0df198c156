//! The four endpoint shapes most resources share, written once: list a collection, add an item,
//! change one, delete one. A call site gives the doc text, the path, the OpenAPI tag, the answers
//! particular to it and the expression that does the work (the area's service function, which
//! checks the role, acts and writes the audit line). The answers every operation can give (400,
//! 401, 403, 404, 413, 422, 503) are added to the document by `complete_responses`.
//!
//! Macro arguments that reach `utoipa::path` are taken as single tokens (`tt`), so the attribute
//! sees plain literals and types, as if written by hand.

/// `GET` a collection: `ctx.require(role)`, then the list.
macro_rules! api_list {
    ($(#[doc = $doc:tt])* $name:ident: $path:tt, $tag:tt, $role:ident, Vec<$item:tt $(:: $rest:tt)*>,
     |$ctx:ident| $call:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag, responses(
            (status = 200, description = "The list", body = Vec<$item $(:: $rest)*>),
        ))]
        pub async fn $name(
            $ctx: ::app::auth::service::RequestCtx,
        ) -> Result<::axum::Json<Vec<$item $(:: $rest)*>>, ::app::error::AppError> {
            $ctx.require(::app::auth::Role::$role).await?;
            Ok(::axum::Json($call))
        }
    };
}

/// `POST` a JSON body: 201 with what `$call` returns.
macro_rules! api_create {
    ($(#[doc = $doc:tt])* $name:ident: $path:tt, $tag:tt, $body:tt -> $out:tt,
     [$($answer:tt),* $(,)?], |$ctx:ident, $new:ident| $call:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $body, responses(
            (status = 201, description = "Saved", body = $out),
            $($answer,)*
        ))]
        pub async fn $name(
            $ctx: ::app::auth::service::RequestCtx,
            $crate::api::extract::ApiJson($new): $crate::api::extract::ApiJson<$body>,
        ) -> Result<(::axum::http::StatusCode, ::axum::Json<$out>), ::app::error::AppError> {
            Ok((::axum::http::StatusCode::CREATED, ::axum::Json($call)))
        }
    };
}

/// `PATCH /…/{key}` with a JSON object of the fields to change (and `paused`): 204.
macro_rules! api_patch {
    ($(#[doc = $doc:tt])* $name:ident: $path:tt, $tag:tt, $key:tt: $key_ty:tt, $what:tt,
     |$ctx:ident, $id:ident, $change:ident| $call:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(patch, path = $path, tag = $tag,
            params(($key = $key_ty, Path, description = $what)),
            request_body = ::app::patch::Change,
            responses(
                (status = 204, description = "Changed"),
                (status = 409, description = "The new name is taken", body = $crate::api::ErrorBody),
        ))]
        pub async fn $name(
            $ctx: ::app::auth::service::RequestCtx,
            $crate::api::extract::ApiPath($id): $crate::api::extract::ApiPath<$key_ty>,
            $crate::api::extract::ApiJson($change): $crate::api::extract::ApiJson<::app::patch::Change>,
        ) -> Result<::axum::http::StatusCode, ::app::error::AppError> {
            $call;
            Ok(::axum::http::StatusCode::NO_CONTENT)
        }
    };
}

/// `DELETE /…/{key}`: 204.
macro_rules! api_delete {
    ($(#[doc = $doc:tt])* $name:ident: $path:tt, $tag:tt, $key:tt: $key_ty:tt, $what:tt,
     $done:tt, |$ctx:ident, $id:ident| $call:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(delete, path = $path, tag = $tag,
            params(($key = $key_ty, Path, description = $what)),
            responses((status = 204, description = $done)))]
        pub async fn $name(
            $ctx: ::app::auth::service::RequestCtx,
            $crate::api::extract::ApiPath($id): $crate::api::extract::ApiPath<$key_ty>,
        ) -> Result<::axum::http::StatusCode, ::app::error::AppError> {
            $call;
            Ok(::axum::http::StatusCode::NO_CONTENT)
        }
    };
}
