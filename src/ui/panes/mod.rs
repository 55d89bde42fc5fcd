//! One file per screen region.

pub mod experiments;
pub mod footer;
pub mod header;
pub mod help;
pub mod history;
pub mod inspect;
pub mod lesson;
pub mod locks;
pub mod process;
pub mod processes;
pub mod steps;
pub mod syslog;
pub mod terminal;
