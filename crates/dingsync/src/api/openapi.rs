//! The OpenAPI document, generated from the handlers.
//!
//! Why `utoipa-axum`'s `OpenApiRouter`: each route is registered once, from the handler's
//! `#[utoipa::path]` annotation, and that one registration both mounts the handler and adds it
//! to the document. A route cannot be served without being documented, or documented at a
//! path it is not served at.

use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, ErrorDetail, FieldError};
use super::{ApiState, changes, departments, role_assignments, role_groups, roles, users};

/// The document's fixed parts; the paths and schemas come from [`routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dingsync OA API",
        description = "The OA system's view of the contacts directory that dingsync keeps in \
            two-way sync with DingTalk. Every request needs `Authorization: Bearer <token>` \
            except this document. Entities carry a `version`, sent as a strong `ETag`; `PATCH` \
            and `DELETE` honour `If-Match` (412 when stale, nothing written) and also work \
            without it. `PATCH` bodies are JSON merge patches (absent: unchanged; `null`: cleared, \
            or 422 where the field cannot be empty). Lists are keyset-paged and \
            return a `next` URL. Errors are `{\"error\":{\"code\",\"message\",\"fields\"}}` with \
            codes `bad_request` 400, `unauthorized` 401, `not_found` 404, `method_not_allowed` 405, \
            `conflict` 409, \
            `precondition_failed` 412, `payload_too_large` 413 (bodies over 1 MiB), \
            `unsupported_media_type` 415, `validation_failed` 422, `internal` 500."
    ),
    paths(openapi_json),
    components(schemas(ErrorBody, ErrorDetail, FieldError)),
    modifiers(&BearerAuth, &AdminApi),
    security(("bearer" = [])),
    tags(
        (name = "departments", description = "The department tree"),
        (name = "users", description = "People and their memberships"),
        (name = "roles", description = "Role groups, roles and who holds them"),
        (name = "changes", description = "The change feed"),
        (name = "meta", description = "This document"),
        (name = "admin", description = "The admin console's JSON API (issue 16): everything \
            the console shows and does. Sign in at POST /console/login (form fields username, \
            password, csrf) and send the session cookie; a POST also needs X-CSRF-Token from \
            GET /api/v1/admin/me. Errors are {\"error\":{\"code\",\"message\"}}."),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Declares the bearer scheme the `security` requirement refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Adds the admin console's JSON API, which the console crate serves and lists in
/// [`console::ADMIN_API`] (its tests check that every listed route is served). Its credential
/// is the console's session cookie, not the bearer token.
struct AdminApi;

impl Modify for AdminApi {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder};
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement};
        use utoipa::openapi::{ContentBuilder, ObjectBuilder, ResponseBuilder};

        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "console_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                console::SESSION_COOKIE,
                "The console's signed session cookie (POST /console/login)",
            ))),
        );
        for route in console::ADMIN_API {
            let json = ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().build()))
                .build();
            let answer = |description: &str| {
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", json.clone())
                    .build()
            };
            let mut operation = OperationBuilder::new()
                .summary(Some(route.summary))
                .tag("admin")
                .security(SecurityRequirement::new(
                    "console_session",
                    Vec::<String>::new(),
                ))
                .response("200", answer("The view, as the console page shows it"))
                .response("401", answer("Not signed in, or the session expired"))
                .response("404", answer("No such object"));
            let method = if route.method == "post" {
                operation = operation
                    .request_body(Some(
                        utoipa::openapi::request_body::RequestBodyBuilder::new()
                            .content("application/json", json.clone())
                            .required(Some(utoipa::openapi::Required::True))
                            .build(),
                    ))
                    .response("400", answer("Bad input, naming the field"))
                    .response("403", answer("A viewer, or a missing or wrong CSRF token"))
                    .response(
                        "409",
                        answer("Refused in the current state, with the reason"),
                    );
                HttpMethod::Post
            } else {
                HttpMethod::Get
            };
            openapi
                .paths
                .add_path_operation(route.path, vec![method], operation.build());
        }
    }
}

/// Every authenticated route, each mounted and documented by the same line.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            departments::list_departments,
            departments::create_department
        ))
        .routes(routes!(
            departments::get_department,
            departments::update_department,
            departments::delete_department
        ))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(
            role_groups::list_role_groups,
            role_groups::create_role_group
        ))
        .routes(routes!(
            role_groups::get_role_group,
            role_groups::update_role_group,
            role_groups::delete_role_group
        ))
        .routes(routes!(roles::list_roles, roles::create_role))
        .routes(routes!(
            roles::get_role,
            roles::update_role,
            roles::delete_role
        ))
        .routes(routes!(
            role_assignments::list_assignments,
            role_assignments::create_assignment
        ))
        .routes(routes!(role_assignments::delete_assignment))
        .routes(routes!(changes::list_changes))
}

/// This document (no token needed).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API")))]
pub async fn openapi_json(Extension(doc): Extension<Arc<Document>>) -> Json<Document> {
    Json(doc.as_ref().clone())
}
