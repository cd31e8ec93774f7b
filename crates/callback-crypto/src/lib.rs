//! callback-crypto (skeleton; see ARCHITECTURE.md)
