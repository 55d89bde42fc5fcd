//! Helpers for the tests that inspect real daemons through the built binary: start them
//! with a clean descriptor table, find their processes, end only what the test started,
//! and assert on `daemonlab inspect PID --format json`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Whether `binary` is installed, saying loudly why the case is skipped when not.
pub fn installed(case: &str, binary: &str) -> bool {
    if Path::new(binary).exists() {
        return true;
    }
    eprintln!("SKIPPED {case}: {binary} is not installed");
    false
}

/// Whether we are root, saying loudly why the case is skipped when not.
pub fn root(case: &str, why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {case}: needs root ({why})");
    false
}

/// A command for a daemon that starts with only 0, 1 and 2 open, as from a login shell.
/// This machine hands every process extra descriptors (fd 10, fd 251) and CI machines do
/// not; without this, what a daemon leaks depends on who ran the test.
pub fn daemon(binary: &str) -> Command {
    let mut cmd = Command::new(binary);
    // SAFETY: close_range(2) is async-signal-safe. CLOSE_RANGE_CLOEXEC marks the
    // descriptors instead of closing them, so std's own exec-error pipe still works and
    // exec closes the rest.
    unsafe {
        cmd.pre_exec(|| {
            let rc = libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd
}

/// A free TCP port on 127.0.0.1 (released again before the daemon binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PID in a pid file, once the file holds one.
pub fn wait_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim_end_matches(['\n', '\0']).trim().parse::<i32>()
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no pid file at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `pid`'s children, by scanning /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&p| ppid_of(p) == Some(pid))
        .collect();
    out.sort();
    out
}

/// `pid` and all its descendants, parents first.
pub fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let more = children(out[i]);
        out.extend(more);
        i += 1;
    }
    out
}

pub fn alive(pid: i32) -> bool {
    // A zombie of ours would not be here: these are init's children once daemonized.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// A daemon we started: on drop, SIGTERM to it and its descendants, SIGKILL to whatever
/// is left after a grace, then the files it was told to use are removed (the temp dir
/// goes with its own guard).
pub struct Started {
    pub pid: i32,
    /// Files outside our temp dir to put back: (path, what it held before, if anything).
    pub restore: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl Started {
    pub fn new(pid: i32) -> Started {
        Started {
            pid,
            restore: Vec::new(),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        let pids = tree(self.pid);
        for &p in &pids {
            let _ = kill(nix::unistd::Pid::from_raw(p), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for &p in pids.iter().filter(|&&p| alive(p)) {
            let _ = kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
        }
        for (path, before) in &self.restore {
            match before {
                Some(bytes) => {
                    let _ = std::fs::write(path, bytes);
                }
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// `daemonlab inspect PID --format json`, through the built binary.
pub fn inspect(pid: i32) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args(["inspect", &pid.to_string(), "--format", "json"])
        .output()
        .expect("daemonlab runs");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 3)),
        "inspect {pid} exited {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// The status and detail of check `id`.
pub fn check<'a>(audit: &'a Value, id: &str) -> (&'a str, &'a str) {
    let c = audit["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {audit:#}"));
    (c["status"].as_str().unwrap(), c["detail"].as_str().unwrap())
}

pub fn assert_check(audit: &Value, id: &str, status: &str, contains: &[&str]) {
    let (got, detail) = check(audit, id);
    assert_eq!(got, status, "{id}: {detail}");
    for word in contains {
        assert!(
            detail.contains(word),
            "{id} should mention {word:?}: {detail}"
        );
    }
}

pub fn assert_role(audit: &Value, role: &str, main_pid: i32) {
    assert_eq!(audit["role"], role, "{audit:#}");
    assert_eq!(audit["main_pid"], main_pid, "{audit:#}");
}

pub fn assert_pidfile(audit: &Value, path: &Path, locked_by: Option<i32>) {
    let file = &audit["pidfile"];
    assert_eq!(file["path"], path.to_str().unwrap(), "{audit:#}");
    assert_eq!(file["locked_by"], serde_json::json!(locked_by), "{audit:#}");
}

/// Every check's detail, for asserting that no check says something.
pub fn details(audit: &Value) -> String {
    audit["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}: {}\n", c["id"], c["detail"]))
        .collect()
}

/// The PIDs whose command line, words joined by spaces, is exactly `command`.
pub fn pids_running(command: &str) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|b| {
                let words: Vec<String> = b
                    .split(|&c| c == 0)
                    .filter(|w| !w.is_empty())
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                words.join(" ") == command
            })
        })
        .filter(|&p| alive(p))
        .collect();
    out.sort();
    out
}

/// Wait until `found` gives a PID, for up to ten seconds.
pub fn wait_for(what: &str, mut found: impl FnMut() -> Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = found() {
            return pid;
        }
        assert!(Instant::now() < deadline, "no {what} after 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An nginx configuration in `dir` with `workers` worker processes, listening on
/// 127.0.0.1:`port`, every temporary and log path inside `dir`. Returns its path.
pub fn nginx_conf(dir: &Path, workers: u32, port: u16) -> PathBuf {
    let d = dir.to_str().unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes {workers};\nevents {{ worker_connections 64; }}\nhttp {{\n access_log {d}/access.log;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n server {{ listen 127.0.0.1:{port}; }}\n}}\n"
        ),
    )
    .unwrap();
    conf
}
