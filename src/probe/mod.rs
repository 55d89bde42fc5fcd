//! /proc snapshots of one process.
