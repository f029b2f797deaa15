-- One garbage collection at a time across every process sharing the database
-- (docs/design/gc.md): the collector holding this row's lease runs, the others skip.
-- The single row (id 1) exists only while a collector holds or held the lease and did
-- not release it; holder names the collector, the times are Unix nanoseconds, and a
-- lease whose expires_at has passed may be taken over.
CREATE TABLE gc_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
