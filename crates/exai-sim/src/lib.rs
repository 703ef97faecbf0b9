//! The upstream simulator (being written).
