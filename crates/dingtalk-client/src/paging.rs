//! Paged listings as streams: users by cursor (pages of 100), role groups and role members by
//! offset (pages of 200 and 100). A stream fetches the next page only when the previous one is
//! consumed, so a slow consumer never runs ahead of the rate budget, and an error ends the stream
//! after the items already yielded. The `*_all` helpers collect a stream.
//!
//! A server that says `has_more` without moving its cursor would page forever; that is reported
//! as a decode error instead.

use dingtalk_proto::{
    DingDeptId, DingRoleId,
    role::{ROLE_LIST_MAX_SIZE, ROLE_SIMPLELIST_MAX_SIZE, RoleGroup, RoleMember},
    user::{User, UserListPage, UserListRequest},
};
use futures::{Stream, TryStreamExt, stream};

use crate::{
    ClientError, DingTalkClient,
    endpoints::paths::{ROLE_LIST, ROLE_SIMPLELIST, USER_LIST},
};

/// A decode error for a page sequence that does not advance.
fn stuck(api: &'static str) -> ClientError {
    ClientError::Decode {
        api,
        source: <serde_json::Error as serde::de::Error>::custom(
            "has_more is true but the page position did not advance",
        ),
    }
}

/// Where an offset-paged listing continues, or `None` when it is done.
fn next_offset(
    api: &'static str,
    offset: i64,
    has_more: bool,
    len: usize,
) -> Result<Option<i64>, ClientError> {
    match (has_more, len) {
        (false, _) => Ok(None),
        (true, 0) => Err(stuck(api)),
        (true, n) => Ok(Some(offset + i64::try_from(n).unwrap_or(i64::MAX))),
    }
}

impl DingTalkClient {
    /// Every page of a department's direct members, in order.
    pub fn user_pages(
        &self,
        dept_id: DingDeptId,
    ) -> impl Stream<Item = Result<UserListPage<User>, ClientError>> + Send + 'static {
        let client = self.clone();
        stream::try_unfold(Some(0_i64), move |cursor| {
            let client = client.clone();
            async move {
                let Some(cursor) = cursor else {
                    return Ok(None);
                };
                let req = UserListRequest {
                    cursor,
                    ..UserListRequest::first_page(dept_id)
                };
                let page = client.user_list_page(&req).await?;
                let next = match (page.has_more, page.next_cursor) {
                    (false, _) => None,
                    (true, Some(next)) if next > cursor => Some(next),
                    (true, _) => return Err(stuck(USER_LIST)),
                };
                Ok(Some((page, next)))
            }
        })
    }

    /// Every direct member of a department, page by page.
    pub fn user_list(
        &self,
        dept_id: DingDeptId,
    ) -> impl Stream<Item = Result<User, ClientError>> + Send + 'static {
        self.user_pages(dept_id)
            .map_ok(|page| stream::iter(page.list.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Collects [`Self::user_list`].
    pub async fn user_list_all(&self, dept_id: DingDeptId) -> Result<Vec<User>, ClientError> {
        self.user_list(dept_id).try_collect().await
    }

    /// Every role group with its roles.
    pub fn role_groups(
        &self,
    ) -> impl Stream<Item = Result<RoleGroup, ClientError>> + Send + 'static {
        let client = self.clone();
        stream::try_unfold(Some(0_i64), move |offset| {
            let client = client.clone();
            async move {
                let Some(offset) = offset else {
                    return Ok(None);
                };
                let page = client.role_list_page(offset, ROLE_LIST_MAX_SIZE).await?;
                let next = next_offset(ROLE_LIST, offset, page.has_more, page.list.len())?;
                Ok(Some((page.list, next)))
            }
        })
        .map_ok(|groups| stream::iter(groups.into_iter().map(Ok)))
        .try_flatten()
    }

    /// Collects [`Self::role_groups`].
    pub async fn role_list_all(&self) -> Result<Vec<RoleGroup>, ClientError> {
        self.role_groups().try_collect().await
    }

    /// Every member of a role.
    pub fn role_members(
        &self,
        role_id: DingRoleId,
    ) -> impl Stream<Item = Result<RoleMember, ClientError>> + Send + 'static {
        let client = self.clone();
        stream::try_unfold(Some(0_i64), move |offset| {
            let client = client.clone();
            async move {
                let Some(offset) = offset else {
                    return Ok(None);
                };
                let page = client
                    .role_members_page(role_id, offset, ROLE_SIMPLELIST_MAX_SIZE)
                    .await?;
                let next = next_offset(ROLE_SIMPLELIST, offset, page.has_more, page.list.len())?;
                Ok(Some((page.list, next)))
            }
        })
        .map_ok(|members| stream::iter(members.into_iter().map(Ok)))
        .try_flatten()
    }

    /// Collects [`Self::role_members`].
    pub async fn role_members_all(
        &self,
        role_id: DingRoleId,
    ) -> Result<Vec<RoleMember>, ClientError> {
        self.role_members(role_id).try_collect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_paging_advances_or_reports_a_stuck_server() {
        assert_eq!(next_offset("/x", 0, true, 200).unwrap(), Some(200));
        assert_eq!(next_offset("/x", 200, false, 13).unwrap(), None);
        assert!(matches!(
            next_offset("/x", 0, true, 0),
            Err(ClientError::Decode { .. })
        ));
    }

    #[test]
    fn streams_are_send_and_static() {
        fn assert_send_static<T: Send + 'static>(_: &T) {}
        let client = DingTalkClient::new(crate::ClientConfig::new("id", "secret")).unwrap();
        assert_send_static(&client.user_list(DingDeptId::ROOT));
        assert_send_static(&client.role_groups());
        assert_send_static(&client.role_members(DingRoleId(1)));
    }
}
