//! dingtalk-proto (skeleton; see ARCHITECTURE.md)
pub mod events;
