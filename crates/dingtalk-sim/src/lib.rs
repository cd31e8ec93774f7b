//! dingtalk-sim (skeleton; see ARCHITECTURE.md)
