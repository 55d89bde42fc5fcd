//! `daemonlab newstyle`: a small new-style daemon, for `daemonlab service` and the class.
//! It does none of APUE 13.3's rules — no fork, no setsid, no chdir, no umask, no closing
//! or reopening of descriptors — because a new-style daemon's manager has done them
//! (daemon(7)). It says what it finds about itself, then reports its state through
//! sd_notify(3) (the sd-notify crate): READY=1; on SIGHUP RELOADING=1 with
//! MONOTONIC_USEC= … READY=1; on SIGTERM STOPPING=1, and it exits.

use std::io::Write;

use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Run until SIGTERM (or SIGINT); the exit status.
pub fn main() -> i32 {
    let mut out = std::io::stdout();
    let pid = std::process::id() as i32;
    let facts = match crate::probe::snapshot(pid, None) {
        Ok(p) => format!(
            "pid {} ppid {} sid {} pgid {} tty {} cwd {} umask {} — none of it done by me: the manager did it",
            p.pid,
            p.ppid,
            p.sid,
            p.pgid,
            p.tty.as_deref().unwrap_or("none"),
            p.cwd.as_deref().unwrap_or("?"),
            p.umask.map_or("?".to_string(), |m| format!("{m:04o}")),
        ),
        Err(e) => format!("pid {pid} (cannot read /proc: {e})"),
    };
    let _ = writeln!(out, "newstyle: {facts}");
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        eprintln!(
            "newstyle: no NOTIFY_SOCKET, so no service manager is listening — run me as: daemonlab service --type notify-reload -- daemonlab newstyle"
        );
    }
    let listeners: usize = std::env::var("LISTEN_FDS")
        .ok()
        .filter(|_| std::env::var("LISTEN_PID").ok() == Some(pid.to_string()))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if listeners > 0 {
        let _ = writeln!(
            out,
            "newstyle: {listeners} listening socket(s) from the manager at fd 3…"
        );
    }
    // The signals first, so that none arrives before there is a handler for it.
    let mut signals = match signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("newstyle: cannot catch signals: {e}");
            return 1;
        }
    };
    let mut reloads = 0u32;
    let send = |states: &[NotifyState]| {
        if let Err(e) = sd_notify::notify(states) {
            eprintln!("newstyle: sd_notify: {e}");
        }
    };
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
    let _ = writeln!(out, "newstyle: READY=1 sent; SIGHUP reloads, SIGTERM stops");
    let _ = out.flush();
    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                reloads += 1;
                let now = NotifyState::monotonic_usec_now();
                let mut states = vec![NotifyState::Reloading];
                if let Ok(now) = now {
                    states.push(now);
                }
                send(&states);
                let _ = writeln!(
                    out,
                    "newstyle: SIGHUP — re-reading the configuration ({reloads})"
                );
                let status = format!("serving (reloaded {reloads}×)");
                send(&[NotifyState::Ready, NotifyState::Status(&status)]);
            }
            _ => {
                send(&[NotifyState::Stopping]);
                let _ = writeln!(out, "newstyle: stopping");
                return 0;
            }
        }
        let _ = out.flush();
    }
    0
}
