//! Rate slots on both backends: capacity, self-expiry of an unreleased hold, release only by
//! the holder, waits measured on the database clock, and concurrent takers never exceeding the
//! capacity.

// The cases are plain async functions called by generated #[test]s, which clippy does not
// recognise as test code; an unwrap failing here is a failing test, as intended.
#![allow(clippy::unwrap_used)]

mod cases {
    use std::time::Duration;

    use directory_store::{SlotTake, Store};

    const MINUTE: Duration = Duration::from_secs(60);

    fn taken(t: SlotTake) -> i64 {
        match t {
            SlotTake::Taken(slots) if slots.len() == 1 => slots[0],
            other => panic!("expected one slot, got {other:?}"),
        }
    }

    pub async fn capacity_release_and_cooldown(store: Store) {
        store.slots_ensure("/api", 3).await.unwrap();
        // Ensuring again keeps the state and adds nothing.
        store.slots_ensure("/api", 3).await.unwrap();
        let mut slots = Vec::new();
        for holder in ["a", "b", "c"] {
            slots.push(taken(
                store.slot_take("/api", 3, holder, MINUTE, 1).await.unwrap(),
            ));
        }
        slots.sort_unstable();
        assert_eq!(slots, [0, 1, 2]);
        match store.slot_take("/api", 3, "d", MINUTE, 1).await.unwrap() {
            SlotTake::Busy {
                cooling: None,
                held: Some(held),
            } => assert!(held > Duration::from_secs(50) && held <= MINUTE, "{held:?}"),
            other => panic!("expected all held, got {other:?}"),
        }
        // Another name has its own slots.
        store.slots_ensure("/other", 1).await.unwrap();
        taken(store.slot_take("/other", 1, "x", MINUTE, 1).await.unwrap());

        // Only the holder releases; the slot then cools down for the given time.
        let a_slot = slots[0];
        let first = store.slot_take("/api", 3, "d", MINUTE, 1).await.unwrap();
        assert!(matches!(first, SlotTake::Busy { .. }));
        assert!(
            !store
                .slot_release("/api", a_slot, "not-the-holder", Duration::ZERO)
                .await
                .unwrap()
        );
        let mut released = false;
        for (slot, holder) in [(0, "a"), (1, "a"), (2, "a")] {
            if store
                .slot_release("/api", slot, holder, Duration::from_secs(30))
                .await
                .unwrap()
            {
                released = true;
                break;
            }
        }
        assert!(released, "a's slot is released by a");
        match store.slot_take("/api", 3, "d", MINUTE, 1).await.unwrap() {
            SlotTake::Busy {
                cooling: Some(cooling),
                ..
            } => assert!(
                cooling > Duration::from_secs(25) && cooling <= Duration::from_secs(31),
                "{cooling:?}"
            ),
            other => panic!("expected a cooling slot, got {other:?}"),
        }
    }

    pub async fn a_zero_cooldown_frees_at_once_and_capacity_limits_slots(store: Store) {
        store.slots_ensure("/api", 3).await.unwrap();
        let slot = taken(store.slot_take("/api", 1, "a", MINUTE, 1).await.unwrap());
        assert_eq!(slot, 0, "capacity 1 uses slot 0 only");
        assert!(matches!(
            store.slot_take("/api", 1, "b", MINUTE, 1).await.unwrap(),
            SlotTake::Busy { .. }
        ));
        assert!(
            store
                .slot_release("/api", 0, "a", Duration::ZERO)
                .await
                .unwrap()
        );
        // The release stamps now + 1 ms (rounding up); once that passed the slot is free.
        let mut got = None;
        for _ in 0..1000 {
            match store.slot_take("/api", 1, "b", MINUTE, 1).await.unwrap() {
                SlotTake::Taken(s) => {
                    got = Some(s);
                    break;
                }
                SlotTake::Busy { cooling, .. } => {
                    assert!(cooling.unwrap() <= Duration::from_millis(2), "{cooling:?}");
                    tokio::task::yield_now().await;
                }
            }
        }
        assert_eq!(got, Some(vec![0]));
    }

    pub async fn an_unreleased_hold_expires_by_itself(store: Store) {
        store.slots_ensure("/api", 1).await.unwrap();
        // A holder that died: its hold ran out (zero here) without a release.
        taken(
            store
                .slot_take("/api", 1, "dead", Duration::ZERO, 1)
                .await
                .unwrap(),
        );
        let mut got = false;
        for _ in 0..1000 {
            if let SlotTake::Taken(_) = store
                .slot_take("/api", 1, "alive", MINUTE, 1)
                .await
                .unwrap()
            {
                got = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(got, "the expired hold was taken over");
        // The late release of the dead holder does not free the new holder's slot.
        assert!(
            !store
                .slot_release("/api", 0, "dead", Duration::ZERO)
                .await
                .unwrap()
        );
        assert!(matches!(
            store
                .slot_take("/api", 1, "third", MINUTE, 1)
                .await
                .unwrap(),
            SlotTake::Busy { held: Some(_), .. }
        ));
    }

    pub async fn concurrent_takers_never_exceed_the_capacity(store: Store) {
        store.slots_ensure("/api", 5).await.unwrap();
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .slot_take("/api", 5, &format!("h{i}"), MINUTE, 2)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut slots = Vec::new();
        for t in tasks {
            if let SlotTake::Taken(s) = t.await.unwrap() {
                slots.extend(s);
            }
        }
        slots.sort_unstable();
        assert_eq!(slots, [0, 1, 2, 3, 4]);
    }

    pub async fn a_batch_takes_distinct_free_slots_up_to_the_capacity(store: Store) {
        store.slots_ensure("/api", 5).await.unwrap();
        let first = store.slot_take("/api", 5, "a", MINUTE, 3).await.unwrap();
        assert_eq!(first, SlotTake::Taken(vec![0, 1, 2]));
        // Only two are left, whatever the batch asks for.
        let second = store.slot_take("/api", 5, "b", MINUTE, 4).await.unwrap();
        assert_eq!(second, SlotTake::Taken(vec![3, 4]));
        assert!(matches!(
            store.slot_take("/api", 5, "c", MINUTE, 2).await.unwrap(),
            SlotTake::Busy { held: Some(_), .. }
        ));
        // Each slot of a batch is released on its own.
        assert!(store.slot_release("/api", 1, "a", MINUTE).await.unwrap());
        assert!(!store.slot_release("/api", 1, "a", MINUTE).await.unwrap());
    }

    pub async fn the_database_clock_is_unix_milliseconds(store: Store) {
        let db = store.db_now_ms().await.unwrap();
        let host = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        // Same machine in tests: the two clocks agree closely.
        assert!((db - host).abs() < 5_000, "db {db} host {host}");
    }
}

conformance!(
    capacity_release_and_cooldown,
    a_zero_cooldown_frees_at_once_and_capacity_limits_slots,
    an_unreleased_hold_expires_by_itself,
    concurrent_takers_never_exceed_the_capacity,
    a_batch_takes_distinct_free_slots_up_to_the_capacity,
    the_database_clock_is_unix_milliseconds,
);
