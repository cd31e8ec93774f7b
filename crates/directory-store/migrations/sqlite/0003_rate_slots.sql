-- Named counting semaphores whose permits stay busy for a while after release (see
-- src/slots.rs): `name` is what is limited (a DingTalk API path for the shared rate budget),
-- `slot` numbers its permits 0..capacity. A slot is free when `busy_until_ms` (the database
-- server's clock, Unix ms) has passed; `holder` is set while a permit is out and cleared on
-- release, so a late release by a holder whose permit expired cannot free someone else's slot.
CREATE TABLE rate_slots (
    name          TEXT   NOT NULL,
    slot          INTEGER NOT NULL,
    busy_until_ms INTEGER NOT NULL,
    holder        TEXT,
    PRIMARY KEY (name, slot)
);
CREATE INDEX rate_slots_free ON rate_slots (name, busy_until_ms);
