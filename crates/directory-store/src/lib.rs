//! directory-store (skeleton; see ARCHITECTURE.md)
