//! Integration tests: real containers, as root, on a busybox-static rootfs built once per run.
//!
//! Every test has its own `--root` and bundle, so tests run in parallel. Run with
//! `cargo test --test integration` as root (scripts/test.sh does).
mod cgroups;
mod checkpoint;
mod cli;
mod common;
mod concurrency;
mod devices;
mod errors;
mod escapes;
mod events;
mod exec;
mod exec_race;
mod fds;
mod hooks;
mod lifecycle;
mod network;
mod recovery;
mod rootless;
mod sandbox;
mod selfexe;
mod setup;
mod spec13;
mod validation;
