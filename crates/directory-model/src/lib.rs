//! directory-model (skeleton; see ARCHITECTURE.md)
