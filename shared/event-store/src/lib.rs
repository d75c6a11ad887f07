//! The PostgreSQL event store: appends with optimistic concurrency, aggregate loading through
//! snapshots and upcasters, command execution with idempotency keys, gap-free tailing, and the
//! checkpoints of the subscriptions that tail it. It knows PostgreSQL, not HTTP.
//! The position scheme that makes tailing safe is explained in the first migration and in
//! `tail`.

pub mod announce;
mod append;
mod claims;
mod command;
mod error;
mod idempotency;
mod load;
pub mod personal;
mod recorded;
pub mod snapshot;
pub mod subscriptions;
mod tail;
pub mod upcast;

pub use announce::Announcer;
pub use append::{AppendedEvents, NewEvent, append_many, append_to_stream};
pub use claims::UniqueClaim;
pub use command::{
    CommandError, CommandOptions, CommandReply, Executed, backoff, execute_in_tx,
    execute_on_loaded, run_command,
};
pub use error::StoreError;
pub use idempotency::{IdempotencyRequest, StoredResponse, purge_idempotency_keys};
pub use load::{
    Loaded, StoredStream, StreamRequest, load_aggregate, load_first_events, load_streams,
};
pub use recorded::{Metadata, RecordedEvent};
pub use subscriptions::checkpoints;
pub use tail::{
    Batch, EventSelection, PartitionFilter, PartitionKey, begin_appending, count_events_after,
    ensure_positions_move_forward, head_position, read_after, read_batch, read_positions,
    safe_horizon,
};
