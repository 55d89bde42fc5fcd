//! daemonlab: step a live process through the daemonization rules of APUE chapter 13
//! and show, after every step, what the kernel says about it.
//!
//! The core (`lab`, `probe`, `syslog`, `report`) never touches the terminal UI; the TUI and
//! the headless reports are two views of the same steps and snapshots.

pub mod audit;
pub mod cli;
pub mod hangup;
pub mod janitor;
pub mod lab;
pub mod lessons;
pub mod locks;
pub mod man;
pub mod probe;
pub mod process;
pub mod report;
pub mod service;
pub mod syslog;
pub mod trace;
pub mod ui;
