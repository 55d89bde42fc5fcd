//! `daemonlab inspect` on real Debian daemons, started here the way their init scripts
//! start them but with private configuration, pid and log paths and high ports wherever
//! the daemon allows it. The oracle is software nobody here wrote: what nginx, sshd,
//! rsyslogd, dbus-daemon, cron and atd do when they daemonize.
//!
//! Each case skips loudly when its binary is absent, when it needs root and we are not root, or when the daemon is already running
//! with a fixed pid file we must not fight over. Each case ends only what it started: the
//! PID its pid file (or `--print-pid`) gave, and that process's descendants.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Whether `binary` is installed, saying loudly why the case is skipped when not.
fn installed(case: &str, binary: &str) -> bool {
    if Path::new(binary).exists() {
        return true;
    }
    eprintln!("SKIPPED {case}: {binary} is not installed");
    false
}

/// Whether we are root, saying loudly why the case is skipped when not.
fn root(case: &str, why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {case}: needs root ({why})");
    false
}

/// A command for a daemon that starts with only 0, 1 and 2 open, as from a login shell.
/// This machine hands every process extra descriptors (fd 10, fd 251) and CI machines do
/// not; without this, what a daemon leaks depends on who ran the test.
fn daemon(binary: &str) -> Command {
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
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PID in a pid file, once the file holds one.
fn wait_pid_file(path: &Path) -> i32 {
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

fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `pid`'s children, by scanning /proc.
fn children(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&p| ppid_of(p) == Some(pid))
        .collect();
    out.sort();
    out
}

/// `pid` and all its descendants, parents first.
fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let more = children(out[i]);
        out.extend(more);
        i += 1;
    }
    out
}

fn alive(pid: i32) -> bool {
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
struct Started {
    pid: i32,
    /// Files outside our temp dir to put back: (path, what it held before, if anything).
    restore: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl Started {
    fn new(pid: i32) -> Started {
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
fn inspect(pid: i32) -> Value {
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
fn check<'a>(audit: &'a Value, id: &str) -> (&'a str, &'a str) {
    let c = audit["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {audit:#}"));
    (c["status"].as_str().unwrap(), c["detail"].as_str().unwrap())
}

fn assert_check(audit: &Value, id: &str, status: &str, contains: &[&str]) {
    let (got, detail) = check(audit, id);
    assert_eq!(got, status, "{id}: {detail}");
    for word in contains {
        assert!(
            detail.contains(word),
            "{id} should mention {word:?}: {detail}"
        );
    }
}

fn assert_role(audit: &Value, role: &str, main_pid: i32) {
    assert_eq!(audit["role"], role, "{audit:#}");
    assert_eq!(audit["main_pid"], main_pid, "{audit:#}");
}

fn assert_pidfile(audit: &Value, path: &Path, locked_by: Option<i32>) {
    let file = &audit["pidfile"];
    assert_eq!(file["path"], path.to_str().unwrap(), "{audit:#}");
    assert_eq!(file["locked_by"], serde_json::json!(locked_by), "{audit:#}");
}

#[test]
fn nginx_master_and_workers() {
    const CASE: &str = "nginx_master_and_workers";
    if !installed(CASE, "/usr/sbin/nginx") || !root(CASE, "nginx's workers switch user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2;\nevents {{ worker_connections 64; }}\nhttp {{\n access_log {d}/access.log;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n server {{ listen 127.0.0.1:{port}; }}\n}}\n"
        ),
    )
    .unwrap();
    let pidfile = dir.path().join("nginx.pid");
    let errlog = dir.path().join("error.log");
    let status = daemon("/usr/sbin/nginx")
        .arg("-c")
        .arg(&conf)
        .args(["-p", d, "-g"])
        .arg(format!(
            "pid {}; error_log {};",
            pidfile.display(),
            errlog.display()
        ))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "nginx: {status}");
    let master = wait_pid_file(&pidfile);
    let _stop = Started::new(master);
    let deadline = Instant::now() + Duration::from_secs(5);
    while children(master).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let audit = inspect(master);
    assert_role(&audit, "daemon", master);
    // Named with -g 'pid …;' and not locked: the bound port is the guard, and both say so.
    assert_pidfile(&audit, &pidfile, None);
    assert_check(
        &audit,
        "pidfile_lock",
        "pass",
        &["not locked", &format!("127.0.0.1:{port}"), "EADDRINUSE"],
    );
    // One fork and setsid(), no second fork.
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    // error_log goes on fd 2 on purpose.
    assert_check(&audit, "stdio", "warn", &[errlog.to_str().unwrap()]);
    assert_check(&audit, "syslog", "pass", &["its own log file"]);
    // Listeners only, all kept open on purpose: nothing leaks.
    assert_check(
        &audit,
        "open_fds",
        "pass",
        &["none leaks", "as listeners", &format!("127.0.0.1:{port}")],
    );
    let worker = children(master)[0];
    let audit = inspect(worker);
    assert_role(&audit, "worker", master);
    assert_pidfile(&audit, &pidfile, None);
    assert_check(&audit, "session", "pass", &["a worker in session"]);
    for id in ["pidfile_lock", "sighup", "syslog"] {
        assert_check(
            &audit,
            id,
            "pass",
            &["skipped", &format!("inspect {master}")],
        );
    }
}

/// A host key, a config naming no pid file, and sshd on a high port of 127.0.0.1.
fn start_sshd(dir: &Path, port: u16, extra: &[&str]) -> (i32, PathBuf) {
    let key = dir.join("host_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen: {status}");
    let config = dir.join("sshd_config");
    std::fs::write(&config, "UsePAM no\nListenAddress 127.0.0.1\n").unwrap();
    let pidfile = dir.join("sshd.pid");
    let mut cmd = daemon("/usr/sbin/sshd");
    cmd.arg("-f")
        .arg(&config)
        .arg("-h")
        .arg(&key)
        .arg("-p")
        .arg(port.to_string())
        .arg("-o")
        .arg(format!("PidFile={}", pidfile.display()));
    for e in extra {
        cmd.args(["-o", e]);
    }
    let status = cmd.stdin(Stdio::null()).status().unwrap();
    assert!(status.success(), "sshd: {status}");
    (wait_pid_file(&pidfile), pidfile)
}

#[test]
fn sshd_listener_pid_file_and_per_message_syslog() {
    const CASE: &str = "sshd_listener_pid_file_and_per_message_syslog";
    if !installed(CASE, "/usr/sbin/sshd")
        || !installed(CASE, "/usr/bin/ssh-keygen")
        || !root(
            CASE,
            "sshd refuses to start as another user with privilege separation",
        )
    {
        return;
    }
    // The privilege separation directory, made as Debian's init script and tmpfiles.d make
    // it at boot (an empty root-owned 0755 directory); it stays, as it would after a boot.
    if !Path::new("/run/sshd").is_dir()
        && let Err(e) = std::fs::DirBuilder::new().mode(0o755).create("/run/sshd")
    {
        eprintln!(
            "SKIPPED {CASE}: /run/sshd (its privilege separation directory) is missing and cannot be made: {e}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (pid, pidfile) = start_sshd(dir.path(), port, &[]);
    let _stop = Started::new(pid);
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    assert_pidfile(&audit, &pidfile, None);
    assert_check(
        &audit,
        "pidfile_lock",
        "pass",
        &["not locked", &format!("127.0.0.1:{port}")],
    );
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(&audit, "stdio", "pass", &["0 → /dev/null"]);
    assert_check(&audit, "syslog", "pass", &["each message", "closelog()"]);
}

#[test]
fn rsyslogd_with_a_private_socket() {
    const CASE: &str = "rsyslogd_with_a_private_socket";
    if !installed(CASE, "/usr/sbin/rsyslogd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log");
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{d}\")\nmodule(load=\"imuxsock\" SysSock.Name=\"{s}\")\n*.* {d}/messages\n",
            d = dir.path().display(),
            s = sock.display()
        ),
    )
    .unwrap();
    let pidfile = dir.path().join("rsyslogd.pid");
    let status = daemon("/usr/sbin/rsyslogd")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "rsyslogd: {status}");
    let pid = wait_pid_file(&pidfile);
    let _stop = Started::new(pid);
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    // Named with -i: found, though the option is rsyslogd's own spelling.
    assert_pidfile(&audit, &pidfile, None);
    assert_check(&audit, "pidfile_lock", "warn", &["not locked"]);
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(
        &audit,
        "syslog",
        "pass",
        &["log receiver itself", sock.to_str().unwrap()],
    );
    // rsyslogd keeps an input thread per module: a TID is audited as its process.
    let tid = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&t| t != pid);
    if let Some(tid) = tid {
        let audit = inspect(tid);
        assert_role(&audit, "thread", pid);
        assert_check(&audit, "thread", "pass", &[&format!("pid {pid}")]);
    }
}

#[test]
fn dbus_session_bus_forked_with_print_pid() {
    const CASE: &str = "dbus_session_bus_forked_with_print_pid";
    if !installed(CASE, "/usr/bin/dbus-daemon") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("bus");
    let printed = dir.path().join("printed");
    let status = daemon("/usr/bin/dbus-daemon")
        .args(["--session", "--fork", "--print-pid"])
        .arg(format!("--address=unix:path={}", bus.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&printed).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "dbus-daemon: {status}");
    let pid = wait_pid_file(&printed);
    let _stop = Started::new(pid);
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    assert!(audit["pidfile"].is_null(), "{audit:#}");
    // A second bus at the same path fails to bind it.
    assert_check(&audit, "pidfile_lock", "pass", &[bus.to_str().unwrap()]);
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(&audit, "stdio", "pass", &["0 → /dev/null"]);
}

/// A daemon with a fixed pid file in /run: started only when no instance runs, and the
/// file put back as it was.
fn start_fixed(case: &str, binary: &str, pidfile: &str) -> Option<Started> {
    if !installed(case, binary) || !root(case, "its pid file is in /run") {
        return None;
    }
    let path = PathBuf::from(pidfile);
    let before = std::fs::read(&path).ok();
    let running = before
        .as_deref()
        .and_then(|b| String::from_utf8_lossy(b).trim().parse::<i32>().ok())
        .filter(|&p| alive(p))
        .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
        .is_some_and(|exe| exe == Path::new(binary));
    if running {
        eprintln!("SKIPPED {case}: {binary} already runs ({pidfile}); not fighting it");
        return None;
    }
    // A stale file is replaced by the daemon; wait for our PID, not the stale one.
    let _ = std::fs::remove_file(&path);
    let status = daemon(binary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    if !status.success() {
        if let Some(b) = &before {
            let _ = std::fs::write(&path, b);
        }
        panic!("{binary}: {status}");
    }
    let mut started = Started::new(wait_pid_file(&path));
    started.restore.push((path, before));
    Some(started)
}

#[test]
fn cron_holds_a_locked_pid_file_in_run() {
    let Some(cron) = start_fixed("cron", "/usr/sbin/cron", "/run/crond.pid") else {
        return;
    };
    let pid = cron.pid;
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    assert_pidfile(&audit, Path::new("/run/crond.pid"), Some(pid));
    assert_check(&audit, "pidfile_lock", "pass", &["lock on its pid file"]);
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(&audit, "cwd", "warn", &["/var/spool/cron"]);
}

#[test]
fn atd_brackets_root_with_seteuid() {
    let Some(atd) = start_fixed("atd", "/usr/sbin/atd", "/run/atd.pid") else {
        return;
    };
    let pid = atd.pid;
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    assert_pidfile(&audit, Path::new("/run/atd.pid"), Some(pid));
    assert_check(&audit, "pidfile_lock", "pass", &["lock on its pid file"]);
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(&audit, "credentials", "pass", &["deliberate seteuid()"]);
}

#[test]
fn supervisord_and_its_program() {
    const CASE: &str = "supervisord_and_its_program";
    let Ok(out) = Command::new("supervisord").arg("--version").output() else {
        eprintln!("SKIPPED {CASE}: supervisord is not installed (pip install supervisor)");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = dir.path().join("supervisord.conf");
    let pidfile = dir.path().join("supervisord.pid");
    std::fs::write(
        &conf,
        format!(
            "[supervisord]\npidfile={d}/supervisord.pid\nlogfile={d}/supervisord.log\nchildlogdir={d}\n[unix_http_server]\nfile={d}/sup.sock\n[program:nap]\ncommand=/bin/sleep 600\n"
        ),
    )
    .unwrap();
    let status = daemon("supervisord")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "supervisord: {status}");
    let pid = wait_pid_file(&pidfile);
    let _stop = Started::new(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while children(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    // Named by pidfile= in the file given with -c.
    assert_pidfile(&audit, &pidfile, None);
    let program = *children(pid)
        .first()
        .expect("supervisord starts its program");
    let audit = inspect(program);
    assert_role(&audit, "service", program);
    assert_check(
        &audit,
        "session",
        "pass",
        &["its service manager supervisord"],
    );
    assert_check(&audit, "stdio", "pass", &["shared with supervisord"]);
}
