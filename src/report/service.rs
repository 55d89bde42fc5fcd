//! `daemonlab service` without a screen: the manager's events as text lines or one JSON
//! object per line, control from standard input (`reload`, `stop`; end of input stops),
//! and SIGINT, SIGTERM or SIGHUP stopping the service in order.

use std::io::{BufRead, Write};
use std::sync::mpsc;

use crate::service::{Control, Event, ServiceError, ServiceOptions, State};

/// Run the service, writing its events to `out`; returns the exit status: 0 ended
/// inactive, 3 failed, 1 could not start.
pub fn run(options: &ServiceOptions, json: bool, out: &mut impl Write) -> u8 {
    let (control, inbox) = mpsc::channel::<Control>();
    let from_stdin = control.clone();
    let _ = std::thread::Builder::new()
        .name("service stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let c = match line.trim() {
                    "reload" => Control::Reload,
                    "stop" => Control::Stop,
                    "" => continue,
                    other => {
                        eprintln!(
                            "daemonlab service: {other:?} is not a command — type reload or stop"
                        );
                        continue;
                    }
                };
                if from_stdin.send(c).is_err() {
                    return;
                }
            }
            // End of input: stop (dropping the sender would too, once every copy is gone).
            let _ = from_stdin.send(Control::Stop);
        });
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]) {
        let on_signal = control.clone();
        let _ = std::thread::Builder::new()
            .name("service signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let _ = on_signal.send(Control::Stop);
                }
            });
    }
    drop(control);
    let mut broken = false;
    let result = crate::service::run(options, inbox, |event| {
        if broken {
            return;
        }
        let text = if json {
            serde_json::to_string(event).unwrap_or_default()
        } else {
            text_line(event)
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            broken = true;
        }
    });
    match result {
        Ok(outcome) => match outcome.state {
            State::Inactive => 0,
            _ => 3,
        },
        Err(e) => {
            say_error(&e, json, out);
            1
        }
    }
}

fn say_error(e: &ServiceError, json: bool, out: &mut impl Write) {
    eprintln!("daemonlab service: {e}");
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({"event": "error", "error": e.to_string()})
        );
    }
}

/// One event as a line for a person.
pub fn text_line(event: &Event) -> String {
    match event {
        Event::Listening { fd, name, address } => {
            format!(
                "listening  {address} bound by the lab, passed as fd {fd} (LISTEN_FDNAMES {name})"
            )
        }
        Event::Prepared {
            pid,
            process,
            environment,
        } => {
            let mut lines = vec![format!(
                "prepared   pid {pid}, before the program's first instruction — the manager's part, read from /proc:"
            )];
            for l in crate::report::process_lines(process, &[], -1, "") {
                lines.push(format!("             {l}"));
            }
            lines.push(format!(
                "             environment: {}",
                environment.join(" ")
            ));
            lines.join("\n")
        }
        Event::State {
            state,
            main_pid,
            status,
            reason,
        } => {
            let main = main_pid.map_or("no main process".to_string(), |p| format!("main pid {p}"));
            let mut line = format!("state      {} ({main})", state.name());
            if let Some(r) = reason {
                line.push_str(&format!(": {r}"));
            }
            if let Some(s) = status {
                line.push_str(&format!(" — status {s:?}"));
            }
            line
        }
        Event::Notify {
            pid,
            accepted,
            fields,
            note,
        } => {
            let from = pid.map_or("?".to_string(), |p| p.to_string());
            let words: Vec<String> = fields
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            let mark = if *accepted { "notify " } else { "REJECTED" };
            format!("{mark}   from pid {from}: {}  ({note})", words.join(" "))
        }
        Event::Log { stream, line } => format!("{stream:<10} {line}"),
        Event::Signal { pid, signal, why } => format!("signal     {signal} to pid {pid}: {why}"),
        Event::Exit { pid, status } => format!("exit       pid {pid} {status}"),
    }
}
