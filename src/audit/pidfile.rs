//! Finding a process's single-instance guard: its pid file, a lock file, a bound address.
//!
//! APUE 13.5's already_running() keeps a pid file *locked* for the daemon's life; many
//! real daemons instead write an unlocked one (and check it, or create it with O_EXCL,
//! at start), or rely on a port only one process can bind. A pid file is found three
//! ways: through a locked descriptor, through the command line (`-p`, `--pidfile`, `-P`,
//! `PidFile`), and in the usual places (/run/NAME.pid, /run/NAME/NAME.pid, /var/run/…)
//! when the file there holds this PID.

use std::path::{Path, PathBuf};

use crate::locks::proc_locks::{self, FileId, LockEntry};

/// A pid file, as the top-level `pidfile` of an audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PidFile {
    /// Where it is (a descriptor's target, or the path found).
    pub path: String,
    /// What it holds, exactly (a trailing newline or NUL kept).
    pub content: String,
    /// The PID holding a lock on it, per /proc/locks or fdinfo; `None` when unlocked.
    pub locked_by: Option<i32>,
}

/// How a pid file or lock file was found, for the check's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FoundBy {
    /// A descriptor of the process with a lock on it.
    LockedFd(i32),
    /// A path on its command line.
    CommandLine,
    /// A path in the configuration file its command line names.
    Configuration,
    /// A conventional path whose content is this PID.
    UsualPlace,
}

/// A guard found, with what is needed to judge it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub file: PidFile,
    pub by: FoundBy,
    /// The lock's kind and access ("POSIX WRITE"), when locked.
    pub lock: Option<String>,
}

/// The number a pid file names, ignoring a trailing newline, NUL or spaces (what
/// `pgrep -F`, `start-stop-daemon` and `$(cat)` all ignore too).
pub(crate) fn named_pid(content: &str) -> Option<i32> {
    content
        .trim_end_matches(['\n', '\0', ' ', '\t', '\r'])
        .trim_start()
        .parse()
        .ok()
}

/// What follows the number, when anything does ("\n", "\0"), for the harmless-suffix note.
pub(crate) fn suffix(content: &str) -> &str {
    let digits_end = content
        .trim_start()
        .find(|c: char| !c.is_ascii_digit())
        .map_or(content.len(), |i| {
            i + (content.len() - content.trim_start().len())
        });
    &content[digits_end..]
}

fn read_text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() > 4096 {
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn lock_on<'a>(path: &Path, locks: &'a [LockEntry]) -> Option<&'a LockEntry> {
    let id = FileId::of_metadata(&std::fs::metadata(path).ok()?);
    locks.iter().find(|l| !l.waiter && id.matches(l))
}

/// Paths a command line names as a pid file: `-p X`, `-P X`, `--pidfile X`,
/// `--pidfile=X`, `--pid-file[=]X`, `-o PidFile=X`, `PidFile=X`.
pub(crate) fn command_line_paths(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = argv.iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let lower = arg.to_ascii_lowercase();
        let value = if matches!(
            arg.as_str(),
            "-p" | "-P" | "--pidfile" | "--pid-file" | "-o"
        ) {
            it.next().cloned()
        } else {
            Some(arg.clone())
        };
        let Some(value) = value else { break };
        let lower_value = value.to_ascii_lowercase();
        let path = if matches!(lower.as_str(), "-p" | "--pidfile" | "--pid-file") {
            Some(value)
        } else if let Some(rest) = ["pidfile=", "--pidfile=", "--pid-file=", "-opidfile="]
            .iter()
            .find_map(|k| {
                lower_value
                    .starts_with(k)
                    .then(|| value[k.len()..].to_owned())
            })
        {
            Some(rest)
        } else if lower_value.starts_with("pidfile ") {
            Some(value["pidfile ".len()..].trim().to_owned())
        } else {
            None
        };
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            out.push(p);
        }
    }
    out
}

/// Paths the command line names less directly, trusted only when the file there holds
/// this PID: rsyslogd's `-i X`, nginx's `-g 'pid X;'`, and the pid file a configuration
/// file given with `-f`/`-c` names (sshd's `PidFile X`, nginx's `pid X;`, supervisord's
/// `pidfile=X`). `open` reads a configuration file as the process sees its path (a
/// relative one is relative to its working directory, not ours).
pub(crate) fn indirect_paths(
    argv: &[String],
    open: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, FoundBy)> {
    let mut out = Vec::new();
    let on_line = |p: String| (p, FoundBy::CommandLine);
    let mut it = argv.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-i" => out.extend(it.next().cloned().map(on_line)),
            // Peeked, not taken: in a rewritten title the next word is `pid` itself.
            "-g" => out.extend(
                it.clone()
                    .next()
                    .map_or(Vec::new(), |g| config_pid_paths(g))
                    .into_iter()
                    .map(on_line),
            ),
            "-f" | "-c" | "--config-file" | "--configuration" => {
                if let Some(text) = it.next().and_then(|c| open(c)) {
                    out.extend(
                        config_pid_paths(&text)
                            .into_iter()
                            .map(|p| (p, FoundBy::Configuration)),
                    );
                }
            }
            // `-g 'pid X;'` once a rewritten title has split it into words.
            "pid" => out.extend(
                it.clone()
                    .next()
                    .filter(|p| p.starts_with('/'))
                    .map(|p| on_line(p.trim_end_matches(';').to_owned())),
            ),
            _ => {}
        }
    }
    out
}

/// The configuration file a command line names with `-c`/`--configuration` (supervisord's
/// spelling), read through `open`.
pub(crate) fn config_text(
    argv: &[String],
    open: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut it = argv.iter().skip(1);
    while let Some(arg) = it.next() {
        if let Some(value) = arg.strip_prefix("--configuration=") {
            return open(value);
        }
        if matches!(arg.as_str(), "-c" | "--configuration") {
            return it.next().and_then(|c| open(c));
        }
    }
    None
}

/// The `file=` of supervisord's `[unix_http_server]` section: the Unix socket where
/// supervisorctl talks to it.
pub(crate) fn supervisord_socket(config: &str) -> Option<String> {
    let mut in_section = false;
    for line in config.lines() {
        let line = line.split([';', '#']).next().unwrap_or("").trim();
        if line.starts_with('[') {
            in_section = line == "[unix_http_server]";
        } else if in_section
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "file"
        {
            return Some(value.trim().to_owned());
        }
    }
    None
}

/// The words of a command line. sshd and nginx rewrite theirs into one title
/// ("sshd: /usr/sbin/sshd -f X [listener] …", "nginx: master process /usr/sbin/nginx -g
/// pid X; …") that still holds the original words, separated by spaces.
pub(crate) fn proctitle_words(argv: Vec<String>) -> Vec<String> {
    match argv.as_slice() {
        [title] if title.contains(' ') => title.split_whitespace().map(String::from).collect(),
        _ => argv,
    }
}

/// A configuration file, when it is small enough to be one.
pub(crate) fn read_config(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    (bytes.len() <= 1 << 20).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// `PidFile X`, `pid X;`, `pidfile = X` in configuration text (one directive per line or
/// per `;`), comments skipped.
fn config_pid_paths(text: &str) -> Vec<String> {
    text.split(['\n', ';'])
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter_map(|line| {
            let (key, value) = line
                .split_once('=')
                .or_else(|| line.split_once(char::is_whitespace))?;
            matches!(key.trim().to_ascii_lowercase().as_str(), "pid" | "pidfile")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|v| v.starts_with('/'))
        .collect()
}

/// The usual places for NAME's pid file.
fn usual_paths(names: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for name in names {
        for dir in ["/run", "/var/run"] {
            out.push(PathBuf::from(format!("{dir}/{name}.pid")));
            out.push(PathBuf::from(format!("{dir}/{name}/{name}.pid")));
        }
    }
    out
}

/// Candidate names: the comm and the executable's name, with and without a final "d"
/// (cron writes crond.pid, syslogd's binary is rsyslogd), and a multi-call binary's
/// applet (`busybox syslogd` writes syslogd.pid).
fn names(pid: i32, comm: &str, argv: &[String]) -> Vec<String> {
    let mut base = vec![comm.to_owned()];
    if let Some(applet) = crate::probe::ps::role::busybox_applet(comm, argv) {
        base.push(applet.to_owned());
    }
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
        && let Some(n) = exe.file_name()
    {
        base.push(
            n.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_owned(),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for n in base {
        let variants = [
            n.clone(),
            format!("{n}d"),
            n.strip_suffix('d').unwrap_or(&n).to_owned(),
            n.strip_prefix('r').unwrap_or(&n).to_owned(),
        ];
        for v in variants {
            if !v.is_empty() && !v.contains('/') && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Look for the pid file of `pid` (whose comm and descriptors are given), and any lock
/// file. `locked_fds` are its descriptors that carry a lock, with their locks.
pub(crate) fn find(
    pid: i32,
    comm: &str,
    locked_fds: &[(crate::probe::FdEntry, Vec<LockEntry>)],
) -> (Option<Found>, Option<Found>) {
    match find_locked(pid, locked_fds) {
        (Some(found), lock_file) => (Some(found), lock_file),
        (None, lock_file) => (search(pid, comm), lock_file),
    }
}

/// The first half of `find`: a locked descriptor that holds a PID (the pid file), and
/// one that holds nothing (a lock file).
pub(crate) fn find_locked(
    pid: i32,
    locked_fds: &[(crate::probe::FdEntry, Vec<LockEntry>)],
) -> (Option<Found>, Option<Found>) {
    let mut lock_file = None;
    // 1. A locked descriptor: the already_running() shape.
    for (fd, locks) in locked_fds {
        let Some(content) = read_text(Path::new(&format!("/proc/{pid}/fd/{}", fd.fd))) else {
            continue;
        };
        let lock = &locks[0];
        let found = Found {
            file: PidFile {
                path: fd.target.clone(),
                content: content.clone(),
                locked_by: Some(pid),
            },
            by: FoundBy::LockedFd(fd.fd),
            lock: Some(format!("{} {}", lock.class, lock.access)),
        };
        if content.trim_matches(['\n', '\0', ' ']).is_empty() {
            lock_file.get_or_insert(found);
        } else {
            return (Some(found), lock_file);
        }
    }
    (None, lock_file)
}

/// The second half of `find`, which needs none of the descriptors: the pid file named on
/// the command line, or one in the usual places that names `pid`.
pub(crate) fn search(pid: i32, comm: &str) -> Option<Found> {
    // Read only if a candidate file exists: each read of /proc/locks takes the kernel's
    // file-lock rwsem for writing, an RCU grace period (milliseconds) on its own.
    let all_locks: std::cell::OnceCell<Vec<LockEntry>> = std::cell::OnceCell::new();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let argv = proctitle_words(argv);
    let resolve = |p: &str| resolve(pid, cwd.as_deref(), p);
    let open = |p: &str| resolve(p).and_then(|(_, seen)| read_config(&seen));
    let make = |shown: &Path, seen: &Path, by: FoundBy| -> Option<Found> {
        let content = read_text(seen)?;
        let lock = lock_on(
            seen,
            all_locks.get_or_init(|| proc_locks::read().unwrap_or_default()),
        );
        Some(Found {
            file: PidFile {
                path: shown.to_string_lossy().into_owned(),
                content,
                locked_by: lock.map(|l| l.pid),
            },
            by,
            lock: lock.map(|l| format!("{} {}", l.class, l.access)),
        })
    };
    // 2. The command line.
    for p in command_line_paths(&argv) {
        let Some((shown, seen)) = resolve(&p) else {
            continue;
        };
        if seen.is_file()
            && let Some(found) = make(&shown, &seen, FoundBy::CommandLine)
        {
            return Some(found);
        }
    }
    // 3. Indirectly named and the usual places, only when the file names this process;
    // last, any pid file in /run that names it (start-stop-daemon --pidfile, a name of
    // the launcher's choosing).
    let indirect = indirect_paths(&argv, &open).into_iter();
    let usual = usual_paths(&names(pid, comm, &argv))
        .into_iter()
        .chain(run_pid_files(pid))
        .map(|p| (p.to_string_lossy().into_owned(), FoundBy::UsualPlace));
    for (path, by) in indirect.chain(usual) {
        let Some((shown, seen)) = resolve(&path) else {
            continue;
        };
        if let Some(found) = make(&shown, &seen, by)
            && named_pid(&found.file.content) == Some(pid)
        {
            return Some(found);
        }
    }
    None
}

/// The control socket of a supervisord, from the configuration its command line names:
/// the `file=` of `[unix_http_server]`, as supervisord sees the path.
pub(crate) fn supervisord_control_socket(pid: i32) -> Option<String> {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()?
        .split(|&c| c == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let open = |p: &str| resolve(pid, cwd.as_deref(), p).and_then(|(_, seen)| read_config(&seen));
    let file = supervisord_socket(&config_text(&argv, &open)?)?;
    let (shown, _) = resolve(pid, cwd.as_deref(), &file)?;
    Some(shown.to_string_lossy().into_owned())
}

/// A path as `pid` names it: absolute as it sees it (a relative one joined to its working
/// directory), and where we read it (through its root, for another mount namespace or a
/// chroot).
fn resolve(pid: i32, cwd: Option<&Path>, path: &str) -> Option<(PathBuf, PathBuf)> {
    let shown = match (Path::new(path).is_absolute(), cwd) {
        (true, _) => PathBuf::from(path),
        (false, Some(cwd)) => cwd.join(path),
        (false, None) => return None,
    };
    let seen = super::sockets::rooted(pid, &shown.to_string_lossy());
    Some((shown, seen))
}

/// Every `*.pid` in /run and one directory below it, as `pid` sees /run.
fn run_pid_files(pid: i32) -> Vec<PathBuf> {
    let root = super::sockets::rooted(pid, "/run");
    let mut out = Vec::new();
    let Ok(top) = std::fs::read_dir(&root) else {
        return out;
    };
    for entry in top.flatten() {
        let name = entry.file_name();
        let shown = Path::new("/run").join(&name);
        match entry.file_type() {
            Ok(t) if t.is_file() && name.to_string_lossy().ends_with(".pid") => out.push(shown),
            Ok(t) if t.is_dir() => {
                for inner in std::fs::read_dir(entry.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let inner_name = inner.file_name();
                    if inner_name.to_string_lossy().ends_with(".pid")
                        && inner.file_type().is_ok_and(|t| t.is_file())
                    {
                        out.push(shown.join(inner_name));
                    }
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    fn paths(found: Vec<(String, FoundBy)>) -> Vec<String> {
        found.into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn command_lines_name_their_pid_files() {
        assert_eq!(
            command_line_paths(&argv("food -p /tmp/a.pid")),
            ["/tmp/a.pid"]
        );
        assert_eq!(command_line_paths(&argv("food --pidfile=/x")), ["/x"]);
        assert_eq!(command_line_paths(&argv("food --pidfile /y -f")), ["/y"]);
        assert_eq!(command_line_paths(&argv("sshd -o PidFile=/z")), ["/z"]);
        assert_eq!(command_line_paths(&argv("food -P /w")), ["/w"]);
        assert!(command_line_paths(&argv("food -f")).is_empty());
        assert!(command_line_paths(&argv("-p")).is_empty());
    }

    #[test]
    fn options_and_configuration_files_name_pid_files_indirectly() {
        assert_eq!(
            paths(indirect_paths(
                &argv("rsyslogd -f /nonexistent -i /tmp/r.pid"),
                &|_| None
            )),
            ["/tmp/r.pid"]
        );
        let nginx = vec![
            "nginx".to_owned(),
            "-g".to_owned(),
            "pid /tmp/n.pid; error_log /tmp/e.log;".to_owned(),
        ];
        assert_eq!(paths(indirect_paths(&nginx, &|_| None)), ["/tmp/n.pid"]);
        assert_eq!(
            config_pid_paths("Port 22\n# PidFile /old\nPidFile /run/x.pid\n"),
            ["/run/x.pid"]
        );
        assert_eq!(
            config_pid_paths("[supervisord]\npidfile = /tmp/s.pid\n"),
            ["/tmp/s.pid"]
        );
        assert!(config_pid_paths("pidfile relative.pid").is_empty());
        let title = proctitle_words(vec![
            "nginx: master process /usr/sbin/nginx -g pid /tmp/n.pid; error_log /e;".into(),
        ]);
        assert_eq!(paths(indirect_paths(&title, &|_| None)), ["/tmp/n.pid"]);
        let title = proctitle_words(vec![
            "sshd: /usr/sbin/sshd -o PidFile=/tmp/s.pid -p 2222 [listener] 0 of 10-100 startups"
                .into(),
        ]);
        assert_eq!(command_line_paths(&title), ["/tmp/s.pid", "2222"]);
    }

    #[test]
    fn a_relative_configuration_file_is_read_as_the_process_sees_it() {
        let open =
            |p: &str| (p == "s.conf").then(|| "[supervisord]\npidfile=/tmp/s.pid\n".to_owned());
        assert_eq!(
            indirect_paths(
                &argv("/usr/bin/python3 /usr/bin/supervisord -c s.conf"),
                &open
            ),
            [("/tmp/s.pid".to_owned(), FoundBy::Configuration)]
        );
        let conf = "[supervisord]\nlogfile=/x\n[unix_http_server]\nfile = /tmp/sup.sock ; the socket\nchmod=0700\n";
        assert_eq!(supervisord_socket(conf).as_deref(), Some("/tmp/sup.sock"));
        assert_eq!(supervisord_socket("[inet_http_server]\nfile=/no\n"), None);
        assert!(config_text(&argv("supervisord --configuration=s.conf"), &open).is_some());
    }

    #[test]
    fn a_trailing_newline_or_nul_still_names_the_pid() {
        assert_eq!(named_pid("123\n"), Some(123));
        assert_eq!(named_pid("123\0"), Some(123));
        assert_eq!(named_pid("123"), Some(123));
        assert_eq!(named_pid("12 3"), None);
        assert_eq!(suffix("123\0"), "\0");
        assert_eq!(suffix("123\n"), "\n");
        assert_eq!(suffix("123"), "");
    }
}
