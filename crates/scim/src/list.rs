//! Query results: `startIndex`/`count` paging (RFC 7644 §3.4.2.4) and the `ListResponse`
//! message (§3.4.2).

use serde_json::{Value, json};

use crate::error::ScimError;

/// The `ListResponse` message schema URN.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A page of results: which resources of the filtered, ordered whole to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based index of the first result (RFC 7644 §3.4.2.4).
    pub start_index: usize,
    /// How many results at most; already clamped to the service's `maxResults`.
    pub count: usize,
}

impl Page {
    /// Reads the query parameters. Per §3.4.2.4: a `startIndex` below 1 means 1; a negative
    /// `count` means 0 (only `totalResults` is wanted); a `count` above `max_results` is cut to
    /// it (and `maxResults` is what `ServiceProviderConfig` publishes); no `count` means
    /// `default_count` (also cut to `max_results`). Non-integers are `invalidValue` naming the
    /// parameter.
    pub fn from_params(
        start_index: Option<&str>,
        count: Option<&str>,
        default_count: usize,
        max_results: usize,
    ) -> Result<Page, ScimError> {
        let start = match start_index {
            None => 1,
            Some(s) => parse_int("startIndex", s)?.max(1),
        };
        let count = match count {
            None => default_count,
            Some(s) => usize::try_from(parse_int("count", s)?.max(0)).unwrap_or(usize::MAX),
        };
        Ok(Page {
            start_index: usize::try_from(start).unwrap_or(usize::MAX),
            count: count.min(max_results),
        })
    }

    /// The 0-based offset of the first result.
    pub fn offset(&self) -> usize {
        self.start_index.saturating_sub(1)
    }

    /// The page's part of `items` (all matching resources, in order).
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.offset().min(items.len());
        let end = start.saturating_add(self.count).min(items.len());
        &items[start..end]
    }
}

fn parse_int(name: &str, s: &str) -> Result<i64, ScimError> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("'{name}' must be an integer, got '{s}'")))
}

/// A `ListResponse` holding `resources` (this page's), with `totalResults` of the whole query.
pub fn list_response(resources: Vec<Value>, total_results: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(start: Option<&str>, count: Option<&str>) -> Page {
        Page::from_params(start, count, 100, 200).unwrap()
    }

    #[test]
    fn clamps_per_the_rfc() {
        assert_eq!(
            page(None, None),
            Page {
                start_index: 1,
                count: 100
            }
        );
        assert_eq!(
            page(Some("0"), Some("-5")),
            Page {
                start_index: 1,
                count: 0
            }
        );
        assert_eq!(
            page(Some("-3"), Some("5000")),
            Page {
                start_index: 1,
                count: 200
            }
        );
        assert_eq!(page(Some("11"), Some("10")).offset(), 10);
    }

    #[test]
    fn slices_within_bounds() {
        let items: Vec<u32> = (1..=25).collect();
        assert_eq!(
            page(Some("21"), Some("10")).slice(&items),
            &[21, 22, 23, 24, 25]
        );
        assert_eq!(page(Some("26"), Some("10")).slice(&items), &[] as &[u32]);
        assert_eq!(page(Some("1"), Some("0")).slice(&items), &[] as &[u32]);
        assert_eq!(
            page(Some("999999999999"), None).slice(&items),
            &[] as &[u32]
        );
    }

    #[test]
    fn non_integers_name_the_parameter() {
        let e = Page::from_params(Some("x"), None, 1, 1).unwrap_err();
        assert!(e.detail.contains("'startIndex'"), "{}", e.detail);
        let e = Page::from_params(None, Some("1.5"), 1, 1).unwrap_err();
        assert!(e.detail.contains("'count'"), "{}", e.detail);
    }

    #[test]
    fn list_response_counts_the_page() {
        let body = list_response(vec![json!({"id": "a"})], 7, 3);
        assert_eq!(body["totalResults"], 7);
        assert_eq!(body["itemsPerPage"], 1);
        assert_eq!(body["startIndex"], 3);
        assert_eq!(list_response(vec![], 0, 1)["Resources"], json!([]));
    }
}
