//! Headless `daemonlab locks ...`: the same engine, printed.
