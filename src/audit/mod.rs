//! "Is this PID a well-formed daemon?" — the checklist, for any process.
