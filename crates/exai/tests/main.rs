//! Integration tests: the real `exai` binary over real transports (stdio pipes, HTTP on port 0), driven
//! by rmcp's client and by raw JSON-RPC, plus the command-line surface.

mod alerts;
mod cache;
mod chat;
mod cli;
mod dashboard;
mod dos;
mod faults;
mod files;
mod fleet;
mod git_hardening;
mod http;
mod http_replicas;
mod json_limits;
mod loadtest;
mod metrics;
mod replicas;
mod resilience;
mod shim;
mod stdio;
mod store_secrets;
mod support;
mod tasks;
mod tasks_replicas;
mod web;
mod workflow;
mod ws;
mod ws_replicas;
