//! The schemas dingsync serves, written once.
//!
//! Only attributes the service carries are published: third-party suites (scim2-tester) write a
//! random value into every published writable attribute and expect to read the same value back,
//! so publishing an attribute is a promise to store it faithfully. Attributes the server would
//! compute (`members.display`, `manager.displayName`) are deliberately left out: an IdP may still
//! send them, and they are kept as sent.

use super::attribute::{AttrType, Attribute, Returned, Schema, Uniqueness};

pub const USER_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA_ID: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const DINGSYNC_GROUP_SCHEMA_ID: &str = "urn:dingsync:params:scim:schemas:extension:2.0:Group";
pub const SERVICE_PROVIDER_CONFIG_SCHEMA_ID: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// `id`, `externalId` and `meta`: attributes of every resource (RFC 7643 §3.1), not listed in
/// any schema's `attributes` but resolvable in filters, paths and projections.
pub const COMMON_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("id", "Unique identifier assigned by the service provider.")
        .case_exact()
        .read_only()
        .returned(Returned::Always)
        .unique(Uniqueness::Server),
    Attribute::string(
        "externalId",
        "Identifier of the resource in the provisioning client.",
    )
    .case_exact(),
    Attribute::complex("meta", "Resource metadata.", META_SUBS).read_only(),
];

const META_SUBS: &[Attribute] = &[
    Attribute::string("resourceType", "The name of the resource type.")
        .case_exact()
        .read_only(),
    Attribute::new(
        "created",
        AttrType::DateTime,
        "When the resource was added.",
    )
    .read_only(),
    Attribute::new(
        "lastModified",
        AttrType::DateTime,
        "When the resource last changed.",
    )
    .read_only(),
    Attribute::reference("location", "The URI of the resource.", &["uri"]).read_only(),
    Attribute::string(
        "version",
        "The weak entity tag of the resource's current state.",
    )
    .case_exact()
    .read_only(),
];

const NAME_SUBS: &[Attribute] = &[
    Attribute::string(
        "formatted",
        "The full name, as displayed; becomes the DingTalk name.",
    ),
    Attribute::string("familyName", "The family name."),
    Attribute::string("givenName", "The given name."),
];

const EMAIL_SUBS: &[Attribute] = &[
    Attribute::string("value", "The e-mail address.").unique(Uniqueness::Server),
    Attribute::string("type", "The kind of address.").canonical(&["work", "home", "other"]),
    Attribute::boolean("primary", "Whether this is the preferred address."),
];

const PHONE_SUBS: &[Attribute] = &[
    Attribute::string(
        "value",
        "The phone number; a mobile number is unique in the directory.",
    ),
    Attribute::string(
        "type",
        "The kind of number; `mobile` becomes the DingTalk mobile.",
    )
    .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    Attribute::boolean("primary", "Whether this is the preferred number."),
];

const USER_GROUP_SUBS: &[Attribute] = &[
    Attribute::string("value", "The id of the Group.")
        .case_exact()
        .read_only(),
    Attribute::reference("$ref", "The URI of the Group.", &["Group"]).read_only(),
    Attribute::string("display", "The Group's displayName.").read_only(),
    Attribute::string("type", "Direct or indirect membership.")
        .canonical(&["direct", "indirect"])
        .read_only(),
];

pub const USER_SCHEMA: Schema = Schema {
    id: USER_SCHEMA_ID,
    name: "User",
    description: "A person in the directory; pushed to DingTalk Contacts.",
    attributes: &[
        Attribute::string(
            "userName",
            "Unique identifier of the user in the client, often an e-mail address.",
        )
        .required()
        .unique(Uniqueness::Server),
        Attribute::complex("name", "The components of the user's name.", NAME_SUBS),
        Attribute::string("displayName", "The name displayed to end users."),
        Attribute::string(
            "nickName",
            "A casual name; kept, and carried into the DingTalk extension if configured.",
        ),
        Attribute::string(
            "userType",
            "The kind of employment (Contractor, Employee, ...); kept, mappable to the extension.",
        ),
        Attribute::string(
            "preferredLanguage",
            "The preferred language; kept, mappable to the extension.",
        ),
        Attribute::string("locale", "The locale; kept, mappable to the extension."),
        Attribute::string(
            "timezone",
            "The time zone; kept, mappable to the extension.",
        ),
        Attribute::string("title", "The user's job title; becomes the DingTalk title."),
        Attribute::boolean(
            "active",
            "false: the person has left (deleted or marked as left in DingTalk).",
        ),
        Attribute::complex("emails", "E-mail addresses.", EMAIL_SUBS).multi(),
        Attribute::complex("phoneNumbers", "Phone numbers.", PHONE_SUBS).multi(),
        Attribute::complex("groups", "The Groups the user belongs to.", USER_GROUP_SUBS)
            .multi()
            .read_only(),
    ],
};

const MANAGER_SUBS: &[Attribute] = &[
    Attribute::string("value", "The id of the manager's User.").case_exact(),
    Attribute::reference("$ref", "The URI of the manager's User.", &["User"]),
];

pub const ENTERPRISE_USER_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA_ID,
    name: "EnterpriseUser",
    description: "Enterprise User extension (RFC 7643 §4.3).",
    attributes: &[
        Attribute::string(
            "employeeNumber",
            "The employee number; becomes the DingTalk job number.",
        ),
        Attribute::string(
            "costCenter",
            "The cost center; carried into the DingTalk extension (key `costCenter` by default).",
        ),
        Attribute::string(
            "organization",
            "The organization's name; carried into the DingTalk extension by default.",
        ),
        Attribute::string(
            "division",
            "The division; carried into the DingTalk extension (key `division` by default).",
        ),
        Attribute::string(
            "department",
            "A department name or path such as `Sales/East`, resolved to a DingTalk department.",
        ),
        Attribute::complex("manager", "The user's manager.", MANAGER_SUBS),
    ],
};

const MEMBER_SUBS: &[Attribute] = &[
    Attribute::string("value", "The id of the member User or Group.")
        .case_exact()
        .immutable(),
    Attribute::reference("$ref", "The URI of the member.", &["User", "Group"]).immutable(),
    Attribute::string("type", "The kind of member.")
        .canonical(&["User", "Group"])
        .immutable(),
];

pub const GROUP_SCHEMA: Schema = Schema {
    id: GROUP_SCHEMA_ID,
    name: "Group",
    description: "A department (or a role, when configured so) in the directory.",
    attributes: &[
        Attribute::string("displayName", "The group's name.").required(),
        Attribute::complex("members", "The group's members.", MEMBER_SUBS).multi(),
    ],
};

const PARENT_SUBS: &[Attribute] = &[
    Attribute::string("value", "The id of the parent Group.").case_exact(),
    Attribute::reference("$ref", "The URI of the parent Group.", &["Group"]),
];

pub const DINGSYNC_GROUP_SCHEMA: Schema = Schema {
    id: DINGSYNC_GROUP_SCHEMA_ID,
    name: "DingsyncGroup",
    description: "dingsync's Group extension: where a department sits in the tree.",
    attributes: &[Attribute::complex(
        "parent",
        "The parent department's Group; absent for a department under the configured root.",
        PARENT_SUBS,
    )],
};

const fn ro(a: Attribute) -> Attribute {
    a.read_only()
}

const SUPPORTED: &[Attribute] = &[ro(Attribute::boolean(
    "supported",
    "Whether the operation is supported.",
)
.required())];

const FILTER_SUBS: &[Attribute] = &[
    ro(Attribute::boolean("supported", "Whether filtering is supported.").required()),
    ro(Attribute::new(
        "maxResults",
        AttrType::Integer,
        "The most resources a query returns.",
    )
    .required()),
];

const BULK_SUBS: &[Attribute] = &[
    ro(Attribute::boolean("supported", "Whether bulk is supported.").required()),
    ro(Attribute::new(
        "maxOperations",
        AttrType::Integer,
        "The most operations in one request.",
    )
    .required()),
    ro(Attribute::new(
        "maxPayloadSize",
        AttrType::Integer,
        "The largest payload in bytes.",
    )
    .required()),
];

const AUTH_SUBS: &[Attribute] = &[
    ro(Attribute::string("type", "The scheme's kind, e.g. oauthbearertoken.").required()),
    ro(Attribute::string("name", "The scheme's name.").required()),
    ro(Attribute::string("description", "How the scheme works.").required()),
    ro(Attribute::boolean(
        "primary",
        "Whether this is the preferred scheme.",
    )),
];

pub const SERVICE_PROVIDER_CONFIG_SCHEMA: Schema = Schema {
    id: SERVICE_PROVIDER_CONFIG_SCHEMA_ID,
    name: "ServiceProviderConfig",
    description: "The service provider's configuration.",
    attributes: &[
        ro(Attribute::reference(
            "documentationUri",
            "Where the service is documented.",
            &["external"],
        )),
        ro(Attribute::complex("patch", "PATCH support.", SUPPORTED).required()),
        ro(Attribute::complex("bulk", "Bulk support.", BULK_SUBS).required()),
        ro(Attribute::complex("filter", "Filter support.", FILTER_SUBS).required()),
        ro(Attribute::complex("changePassword", "Password change support.", SUPPORTED).required()),
        ro(Attribute::complex("sort", "Sorting support.", SUPPORTED).required()),
        ro(Attribute::complex("etag", "ETag support.", SUPPORTED).required()),
        ro(Attribute::complex(
            "authenticationSchemes",
            "Supported authentication schemes.",
            AUTH_SUBS,
        )
        .multi()
        .required()),
    ],
};

const EXTENSION_SUBS: &[Attribute] = &[
    ro(Attribute::reference("schema", "The extension's schema URN.", &["uri"]).required()),
    ro(Attribute::boolean("required", "Whether the extension is required.").required()),
];

pub const RESOURCE_TYPE_SCHEMA: Schema = Schema {
    id: RESOURCE_TYPE_SCHEMA_ID,
    name: "ResourceType",
    description: "A resource type the service provider serves.",
    attributes: &[
        ro(Attribute::string("id", "The resource type's id.")),
        ro(Attribute::string("name", "The resource type's name.").required()),
        ro(Attribute::string(
            "description",
            "What the resource type is.",
        )),
        ro(Attribute::reference(
            "endpoint",
            "The endpoint, relative to the base URL.",
            &["uri"],
        )
        .required()),
        ro(Attribute::reference("schema", "The core schema's URN.", &["uri"]).required()),
        ro(
            Attribute::complex("schemaExtensions", "The schema extensions.", EXTENSION_SUBS)
                .multi(),
        ),
    ],
};

const SCHEMA_ATTRIBUTE_SUBS: &[Attribute] = &[
    ro(Attribute::string("name", "The attribute's name.").required()),
    ro(Attribute::string("type", "The attribute's data type.").required()),
    ro(Attribute::boolean("multiValued", "Whether the attribute is multi-valued.").required()),
    ro(Attribute::string("description", "What the attribute is.")),
    ro(Attribute::boolean(
        "required",
        "Whether the attribute is required.",
    )),
    ro(Attribute::string("canonicalValues", "Suggested values.").multi()),
    ro(Attribute::boolean(
        "caseExact",
        "Whether comparisons are case-sensitive.",
    )),
    ro(Attribute::string(
        "mutability",
        "Whether and when the attribute may be written.",
    )),
    ro(Attribute::string(
        "returned",
        "When the attribute is returned.",
    )),
    ro(Attribute::string(
        "uniqueness",
        "How unique the values are.",
    )),
    ro(Attribute::string("referenceTypes", "What a reference may point to.").multi()),
];

pub const SCHEMA_SCHEMA: Schema = Schema {
    id: SCHEMA_SCHEMA_ID,
    name: "Schema",
    description: "A schema the service provider serves.",
    attributes: &[
        ro(Attribute::string("id", "The schema's URN.").required()),
        ro(Attribute::string("name", "The schema's name.")),
        ro(Attribute::string("description", "What the schema is.")),
        ro(Attribute::complex(
            "attributes",
            "The schema's attributes.",
            SCHEMA_ATTRIBUTE_SUBS,
        )
        .multi()
        .required()),
    ],
};

/// Every schema `/Schemas` lists: the resource schemas, their extensions, then the three
/// discovery schemas (scim2-tester requires those three to be listed).
pub const ALL_SCHEMAS: &[&Schema] = &[
    &USER_SCHEMA,
    &ENTERPRISE_USER_SCHEMA,
    &GROUP_SCHEMA,
    &DINGSYNC_GROUP_SCHEMA,
    &SERVICE_PROVIDER_CONFIG_SCHEMA,
    &RESOURCE_TYPE_SCHEMA,
    &SCHEMA_SCHEMA,
];
