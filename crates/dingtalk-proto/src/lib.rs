//! dingtalk-proto (skeleton; see ARCHITECTURE.md)
