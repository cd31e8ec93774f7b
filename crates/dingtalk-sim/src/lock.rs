//! Poison-tolerant locking, used by every module that holds a `std::sync::Mutex`.
//!
//! Its own leaf module (not part of `state`) so the pure state types below `state` (the two
//! channels' hubs) can lock their own mutexes without importing the floor above them.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the simulator's state
/// stays consistent because every operation validates before it mutates).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
