//! The explorer started in a pty with a private TMPDIR and a log file, for the tests of
//! its exit paths and of floods: what it started, and what it left behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portable_pty::CommandBuilder;

use super::pty::PtyApp;

/// The number after `label` on the screen, e.g. `subject 1234`.
pub fn number_after(text: &str, label: &str) -> Option<i32> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

pub struct Explorer {
    pub pty: PtyApp,
    /// The private TMPDIR: the lab's runtime directory is made inside it.
    pub tmp: tempfile::TempDir,
    pub log: PathBuf,
    /// The explorer itself (not a wrapper shell around it).
    pub pid: i32,
    pub subject: i32,
    pub stand_in: i32,
}

/// How to start it.
pub struct Start<'a> {
    pub rows: u16,
    pub cols: u16,
    /// A `sh -c` script run with the explorer's path as `$0` and its arguments after it
    /// (`"$0" "$@"` runs it); `None` starts the explorer directly.
    pub wrapper: Option<&'a str>,
    pub args: &'a [&'a str],
    /// Wait for the first snapshot (needs a screen big enough to show it).
    pub wait_for_lab: bool,
}

impl Default for Start<'_> {
    fn default() -> Self {
        Start {
            rows: 40,
            cols: 120,
            wrapper: None,
            args: &[],
            wait_for_lab: true,
        }
    }
}

impl Explorer {
    pub fn start(how: Start) -> Explorer {
        super::become_subreaper();
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("daemonlab.log");
        let exe = super::exe();
        let mut command = match how.wrapper {
            Some(script) => {
                let mut c = CommandBuilder::new("sh");
                c.args(["-c", script]);
                c.arg(&exe);
                c
            }
            None => CommandBuilder::new(&exe),
        };
        command.args(["--log", log.to_str().unwrap()]);
        command.args(how.args);
        command.env("TERM", "xterm-256color");
        command.env("TMPDIR", tmp.path());
        command.env_remove("NO_COLOR");
        let mut pty = PtyApp::spawn(command, how.rows, how.cols);
        let child = pty.child.process_id().unwrap() as i32;
        let pid = match how.wrapper {
            Some(_) => wait_for_explorer(child, &exe),
            None => child,
        };
        let (mut subject, mut stand_in) = (0, 0);
        if how.wait_for_lab {
            let first = pty.wait("the first snapshot", |t| {
                number_after(t, "subject ").is_some_and(|pid| t.contains(&format!("PID {pid} ")))
            });
            subject = number_after(&first, "subject ").unwrap();
            stand_in = number_after(&first, "stand-in ").unwrap();
        }
        Explorer {
            pty,
            tmp,
            log,
            pid,
            subject,
            stand_in,
        }
    }

    /// The lab's syslog socket: the `log` socket in the runtime directory under TMPDIR.
    pub fn syslog_socket(&self) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(path) = find_named(self.tmp.path(), "log") {
                return path;
            }
            assert!(Instant::now() < deadline, "no syslog socket under TMPDIR");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What the lab left in the private TMPDIR `tmp` (the log file aside).
pub fn leftovers(tmp: &Path, log: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != log)
        .collect()
}

/// The explorer started by the wrapper shell `shell`: the shell itself once it has
/// exec'd it, or the shell's first child.
fn wait_for_explorer(shell: i32, exe: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::fs::read_link(format!("/proc/{shell}/exe")).is_ok_and(|e| e == exe) {
            return shell;
        }
        let list = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_default();
        if let Some(pid) = list.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "{shell} started no explorer");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn find_named(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Some(found) = find_named(&path, name)
        {
            return Some(found);
        }
    }
    None
}

/// Peak resident set (VmHWM) of `pid` in KiB, if it is still there.
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU time (user + system, in clock ticks) `pid` has used so far.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
