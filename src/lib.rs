//! daemonlab: step a live process through the daemonization rules of APUE chapter 13
//! and show, after every step, what the kernel says about it.

pub mod probe;
