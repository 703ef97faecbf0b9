//! Resilience, one small type per mechanism: a call's single time [`budget::Budget`], owned concurrency
//! permits ([`limits`]), retries with full jitter and a retry budget ([`retry`]), per-model circuit
//! breakers ([`breaker`]) and fallback chains ([`fallback`]). See NOTES.md for the invariants.

pub mod breaker;
pub mod budget;
pub mod fallback;
pub mod limits;
pub mod retry;
