//! dingtalk-client (skeleton; see ARCHITECTURE.md)
