//! sync-engine (skeleton; see ARCHITECTURE.md)
