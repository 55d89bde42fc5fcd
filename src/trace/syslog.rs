//! Where a traced program's syslog(3) messages go, and how the lab gets to see them.
//!
//! The program is not the lab's: it calls libc's syslog(3), which sends to /dev/log. When
//! nothing is there and the lab may create it (root), the lab binds /dev/log itself for the
//! run — a janitor removes it even after kill -9, as in `--syslog system` — so the
//! messages arrive in the Syslog pane. When the system's logger owns /dev/log the lab
//! leaves it alone and reads back what it can (the journal), or says where to look.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;

use crate::janitor::{self, Janitor};
use crate::syslog::receiver::{self, Receiver};

/// The lab's side of a traced program's logging, for as long as the run lasts.
pub struct TraceSyslog {
    pub receiver: Arc<Receiver>,
    /// Where the messages go, in words, for the pane.
    pub note: String,
    /// The socket the pane's `logger -u` hint names.
    pub path: PathBuf,
    /// `journalctl -f`, when the journal owns /dev/log; ended on drop.
    journal: Option<Child>,
    // Dropped last: the receiver removes its socket first, then the janitor has nothing
    // left to undo.
    _dir: Option<tempfile::TempDir>,
    _janitor: Option<Janitor>,
}

impl Drop for TraceSyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.journal.take() {
            // Our own child, not yet reaped: its PID cannot have been reused.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Bind the receiver for a traced program named `ident` (its file name: what openlog
/// uses when given none). `exe` is this binary, re-executed as the janitor.
pub fn bind(exe: &Path, ident: &str) -> std::io::Result<TraceSyslog> {
    bind_at(exe, ident, Path::new("/dev/log"))
}

/// [`bind`] with another path standing for /dev/log (for tests).
pub fn bind_at(exe: &Path, ident: &str, dev_log: &Path) -> std::io::Result<TraceSyslog> {
    let janitor = Janitor::start(exe)?;
    let free = std::fs::symlink_metadata(dev_log).is_err();
    if free {
        let bound = janitor::making(|| {
            janitor.bind_socket(dev_log, || {
                Receiver::bind(dev_log, receiver::DEFAULT_CAPACITY)
            })
        });
        match bound {
            Ok(receiver) => {
                return Ok(TraceSyslog {
                    receiver: Arc::new(receiver),
                    note: format!(
                        "nothing listened at {0}, so the lab bound it for this run (and removes it on exit): \
                         the program's syslog(3) messages arrive here",
                        dev_log.display()
                    ),
                    path: dev_log.to_path_buf(),
                    journal: None,
                    _dir: None,
                    _janitor: Some(janitor),
                });
            }
            Err(e) => {
                let (receiver, path, dir) = private(&janitor)?;
                return Ok(TraceSyslog {
                    receiver: Arc::new(receiver),
                    note: format!(
                        "nothing listens at {} and the lab may not create it here ({e}; root may): \
                         the program's syslog(3) messages are lost, as they would be without daemonlab",
                        dev_log.display()
                    ),
                    path,
                    journal: None,
                    _dir: Some(dir),
                    _janitor: Some(janitor),
                });
            }
        }
    }
    let (receiver, path, dir) = private(&janitor)?;
    let receiver = Arc::new(receiver);
    let (journal, note) = if crate::syslog::journal::available() {
        match crate::syslog::journal::follow(ident, Arc::clone(&receiver)) {
            Ok(child) => (
                Some(child),
                format!(
                    "{} belongs to the system logger; the lab follows `journalctl -f -t {ident}` to show what reached the journal",
                    dev_log.display()
                ),
            ),
            Err(e) => (
                None,
                format!(
                    "{} belongs to the system logger, and journalctl could not start ({e}): look in the system's logs",
                    dev_log.display()
                ),
            ),
        }
    } else {
        (
            None,
            format!(
                "{} belongs to the system logger, which the lab cannot read back here — look in /var/log/syslog or your logger's files",
                dev_log.display()
            ),
        )
    };
    Ok(TraceSyslog {
        receiver,
        note,
        path,
        journal,
        _dir: Some(dir),
        _janitor: Some(janitor),
    })
}

/// A receiver in a private directory of the lab's, watched by the janitor.
fn private(janitor: &Janitor) -> std::io::Result<(Receiver, PathBuf, tempfile::TempDir)> {
    janitor::making(|| {
        let dir = crate::lab::private_runtime_dir(None).map_err(std::io::Error::other)?;
        if let Ok(entry) = janitor::Entry::dir(dir.path()) {
            janitor.add(&entry);
        }
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, receiver::DEFAULT_CAPACITY)?;
        Ok((receiver, path, dir))
    })
}
