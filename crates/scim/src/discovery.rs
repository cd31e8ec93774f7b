//! The discovery documents (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes`, `Schemas`.
//!
//! All three are rendered from [`crate::schema`] and [`ServiceConfig`], the same values the
//! filter, PATCH and paging code run on, so they cannot claim more or less than the service does:
//! filter yes (with `maxResults`), PATCH yes, bulk no, sort no, ETag yes, changePassword no.

use serde_json::{Value, json};

use crate::error::ScimError;
use crate::list::list_response;
use crate::schema::{
    Catalog, RESOURCE_TYPE_SCHEMA_ID, ResourceType, SCHEMA_SCHEMA_ID,
    SERVICE_PROVIDER_CONFIG_SCHEMA_ID, Schema,
};

/// What the service decides about its SCIM endpoint.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The absolute base URL clients use, e.g. `https://dingsync.example.com/scim/v2`.
    pub base_url: String,
    /// The most resources one query returns (`filter.maxResults`; `count` is cut to it).
    pub max_results: usize,
    /// Where the IdP guide lives, published as `documentationUri`.
    pub documentation_uri: Option<String>,
    /// The resource types and schemas served (with the configured extensions).
    pub catalog: Catalog,
}

impl ServiceConfig {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim_end_matches('/'))
    }
}

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(cfg: &ServiceConfig) -> Value {
    let mut doc = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA_ID],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": cfg.max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token from dingsync's [scim] tokens, in the Authorization header.",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": cfg.url("/ServiceProviderConfig")
        }
    });
    if let (Some(uri), Some(obj)) = (&cfg.documentation_uri, doc.as_object_mut()) {
        obj.insert("documentationUri".into(), json!(uri));
    }
    doc
}

fn resource_type_json(cfg: &ServiceConfig, rt: &ResourceType) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|s| json!({"schema": s.id, "required": false}))
        .collect();
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA_ID],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "schemaExtensions": extensions,
        "meta": {"resourceType": "ResourceType", "location": cfg.url(&format!("/ResourceTypes/{}", rt.name))}
    })
}

/// `GET /ResourceTypes`.
pub fn resource_types(cfg: &ServiceConfig) -> Value {
    let all: Vec<Value> = cfg
        .catalog
        .resource_types()
        .iter()
        .map(|rt| resource_type_json(cfg, rt))
        .collect();
    let n = all.len();
    list_response(all, n, 1)
}

/// `GET /ResourceTypes/{name}`; 404 for an unknown name.
pub fn resource_type(cfg: &ServiceConfig, name: &str) -> Result<Value, ScimError> {
    cfg.catalog
        .resource_type(name)
        .map(|rt| resource_type_json(cfg, rt))
        .ok_or_else(|| ScimError::not_found(format!("no resource type '{name}'")))
}

fn schema_json(cfg: &ServiceConfig, s: &Schema) -> Value {
    let attributes: Vec<Value> = s.attributes.iter().map(|a| a.to_json()).collect();
    json!({
        "schemas": [SCHEMA_SCHEMA_ID],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": cfg.url(&format!("/Schemas/{}", s.id))}
    })
}

/// `GET /Schemas`.
pub fn schemas(cfg: &ServiceConfig) -> Value {
    let all: Vec<Value> = cfg
        .catalog
        .schemas()
        .iter()
        .map(|s| schema_json(cfg, s))
        .collect();
    let n = all.len();
    list_response(all, n, 1)
}

/// `GET /Schemas/{id}`; 404 for an unknown URN.
pub fn schema(cfg: &ServiceConfig, id: &str) -> Result<Value, ScimError> {
    cfg.catalog
        .schemas()
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| schema_json(cfg, s))
        .ok_or_else(|| ScimError::not_found(format!("no schema '{id}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ServiceConfig {
        ServiceConfig {
            base_url: "https://h/scim/v2/".into(),
            max_results: 200,
            documentation_uri: None,
            catalog: Catalog::standard(),
        }
    }

    #[test]
    fn service_provider_config_is_truthful() {
        let d = service_provider_config(&cfg());
        assert_eq!(d["patch"]["supported"], true);
        assert_eq!(d["bulk"]["supported"], false);
        assert_eq!(d["filter"], json!({"supported": true, "maxResults": 200}));
        assert_eq!(d["sort"]["supported"], false);
        assert_eq!(d["etag"]["supported"], true);
        assert_eq!(d["changePassword"]["supported"], false);
        assert_eq!(
            d["meta"]["location"],
            "https://h/scim/v2/ServiceProviderConfig"
        );
    }

    #[test]
    fn resource_types_name_their_schemas_and_extensions() {
        let d = resource_types(&cfg());
        assert_eq!(d["totalResults"], 2);
        let user = &d["Resources"][0];
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
        let group = resource_type(&cfg(), "Group").unwrap();
        assert_eq!(
            group["schemaExtensions"][0]["schema"],
            "urn:dingsync:params:scim:schemas:extension:2.0:Group"
        );
        assert_eq!(resource_type(&cfg(), "Nope").unwrap_err().status, 404);
    }

    #[test]
    fn schemas_list_resources_extensions_and_the_three_discovery_schemas() {
        let d = schemas(&cfg());
        let names: Vec<&str> = d["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        for want in [
            "User",
            "EnterpriseUser",
            "Group",
            "DingsyncGroup",
            "ServiceProviderConfig",
            "ResourceType",
            "Schema",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let user = schema(&cfg(), "urn:ietf:params:scim:schemas:core:2.0:User").unwrap();
        let user_name = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "userName")
            .unwrap();
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["uniqueness"], "server");
        let parent = schema(
            &cfg(),
            "urn:dingsync:params:scim:schemas:extension:2.0:Group",
        )
        .unwrap();
        assert_eq!(parent["attributes"][0]["name"], "parent");
        assert_eq!(
            parent["attributes"][0]["subAttributes"][1]["referenceTypes"],
            json!(["Group"])
        );
        assert_eq!(schema(&cfg(), "urn:x").unwrap_err().status, 404);
    }

    #[test]
    fn published_case_exactness_is_what_filters_use() {
        // One description drives both: externalId is caseExact in the schema, and a filter on it
        // is case-sensitive; userName is not, and its filter folds case.
        let user = schema(&cfg(), "urn:ietf:params:scim:schemas:core:2.0:User").unwrap();
        let user_name = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "userName")
            .unwrap();
        assert_eq!(user_name["caseExact"], false);
        let r = json!({"userName": "Bob", "externalId": "X"});
        let f = |t: &str| {
            crate::filter::matches(
                &crate::filter::parse_filter(t).unwrap(),
                &r,
                &crate::schema::USER,
            )
            .unwrap()
        };
        assert!(f(r#"userName eq "bob""#));
        assert!(!f(r#"externalId eq "x""#));
    }
}
