//! Reading messages back from systemd's journal, for system mode on machines where
//! journald owns /dev/log: `journalctl -f -o json` for one identifier, each entry turned
//! back into a syslog line and stored in the lab's receiver, marked with the sender's PID.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::Value;

use super::receiver::{Receiver, Source};
use crate::probe::Pid;

/// True when a `journalctl` binary can be run here.
pub fn available() -> bool {
    Command::new("journalctl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One journal entry (`journalctl -o json`) as a syslog datagram, or `None` when it has no
/// message. PRIORITY and SYSLOG_FACILITY give PRI; SYSLOG_IDENTIFIER and _PID the tag.
pub fn entry_to_datagram(line: &str) -> Option<(Option<Pid>, String)> {
    let entry: Value = serde_json::from_str(line).ok()?;
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    let message = field("MESSAGE")?;
    let severity: u32 = field("PRIORITY").and_then(|p| p.parse().ok()).unwrap_or(6);
    let facility: u32 = field("SYSLOG_FACILITY")
        .and_then(|f| f.parse().ok())
        .unwrap_or(1);
    let pid: Option<Pid> = field("_PID")
        .or(field("SYSLOG_PID"))
        .and_then(|p| p.parse().ok());
    let ident = field("SYSLOG_IDENTIFIER").unwrap_or("journal");
    let tag = match pid {
        Some(pid) => format!("{ident}[{pid}]"),
        None => ident.to_string(),
    };
    Some((
        pid,
        format!("<{}>{tag}: {message}", facility * 8 + severity),
    ))
}

/// Start following the journal for `ident`; entries go into `receiver`. The caller owns
/// (and must end) the returned child.
pub fn follow(ident: &str, receiver: Arc<Receiver>) -> std::io::Result<Child> {
    let mut child = Command::new("journalctl")
        .args([
            "--follow",
            "--output=json",
            "--lines=0",
            "--identifier",
            ident,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("journalctl has no stdout"))?;
    std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((pid, datagram)) = entry_to_datagram(&line) {
                    receiver.inject(Source::Unix, pid, datagram.as_bytes());
                }
            }
        })?;
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_entry_becomes_a_syslog_line() {
        let line = r#"{"MESSAGE":"daemonized","PRIORITY":"6","SYSLOG_FACILITY":"3","SYSLOG_IDENTIFIER":"daemonlab","_PID":"42"}"#;
        assert_eq!(
            entry_to_datagram(line),
            Some((Some(42), "<30>daemonlab[42]: daemonized".to_string()))
        );
        assert_eq!(
            entry_to_datagram(r#"{"PRIORITY":"6"}"#),
            None,
            "no MESSAGE, nothing to show"
        );
        assert_eq!(entry_to_datagram("not json"), None);
    }
}
