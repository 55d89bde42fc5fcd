//! Single-instance daemons (APUE 13.5): pid-file locks, contenders, /proc/locks.
