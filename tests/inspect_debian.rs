//! `daemonlab inspect` on real Debian daemons, started here the way their init scripts
//! start them but with private configuration, pid and log paths and high ports wherever
//! the daemon allows it. The oracle is software nobody here wrote: what nginx, sshd,
//! rsyslogd, dbus-daemon, cron and atd do when they daemonize.
//!
//! Each case skips loudly when its binary is absent, when it needs root and we are not root, or when the daemon is already running
//! with a fixed pid file we must not fight over. Each case ends only what it started: the
//! PID its pid file (or `--print-pid`) gave, and that process's descendants.

mod common;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::inspect::*;

#[test]
fn nginx_master_and_workers() {
    const CASE: &str = "nginx_master_and_workers";
    if !installed(CASE, "/usr/sbin/nginx") || !root(CASE, "nginx's workers switch user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let port = free_port();
    let conf = nginx_conf(dir.path(), 2, port);
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

/// Whether sshd can be started here, saying loudly why not.
fn sshd_can_start(case: &str) -> bool {
    if !installed(case, "/usr/sbin/sshd")
        || !installed(case, "/usr/bin/ssh-keygen")
        || !root(
            case,
            "sshd refuses to start as another user with privilege separation",
        )
    {
        return false;
    }
    // The privilege separation directory, made as Debian's init script and tmpfiles.d make
    // it at boot (an empty root-owned 0755 directory); it stays, as it would after a boot.
    if !Path::new("/run/sshd").is_dir()
        && let Err(e) = std::fs::DirBuilder::new().mode(0o755).create("/run/sshd")
    {
        eprintln!(
            "SKIPPED {case}: /run/sshd (its privilege separation directory) is missing and cannot be made: {e}"
        );
        return false;
    }
    true
}

#[test]
fn sshd_per_connection_child_is_a_worker_of_the_listener() {
    const CASE: &str = "sshd_per_connection_child_is_a_worker_of_the_listener";
    if !sshd_can_start(CASE) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (listener, pidfile) = start_sshd(dir.path(), port, &[]);
    let _stop = Started::new(listener);
    // A client that connects and says nothing: sshd forks the connection's child and
    // waits for the client's version line (LoginGraceTime is far off).
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let child = wait_for("sshd's per-connection child", || {
        children(listener).first().copied()
    });
    // Between fork and its re-exec (sshd -R) the child is half set up; once re-executed
    // it names itself "[accepted]" and waits for the client.
    wait_for("the child's re-exec", || {
        std::fs::read(format!("/proc/{child}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("[accepted]"))
            .then_some(child)
    });
    // Named "[accepted]", it can still be moving its descriptors into place for its
    // re-exec (once, under a full `cargo test`, an audit saw the startup pipe at fd 4
    // and at fd 5 a socket that its tables no longer listed, instead of the settled
    // pipe at 3 and client at 4). The audit is of the child waiting for the client:
    // once its descriptors stay the same for 200 ms.
    wait_for("the child's descriptors to settle", || {
        let before = fd_links(child);
        std::thread::sleep(Duration::from_millis(200));
        (fd_links(child) == before).then_some(child)
    });
    let audit = inspect(child);
    assert_role(&audit, "worker", listener);
    // A worker's pid file is its daemon's.
    assert_pidfile(&audit, &pidfile, None);
    assert_check(
        &audit,
        "parent",
        "pass",
        &[&format!("its daemon sshd (pid {listener})")],
    );
    // The child called setsid() itself: a worker with a session of its own, said so.
    assert_check(
        &audit,
        "session",
        "warn",
        &[
            "a worker that leads its own session",
            &format!("pid {listener}"),
        ],
    );
    let (_, session) = check(&audit, "session");
    assert!(!session.contains("second fork"), "{session}");
    // Its startup pipe to the listener is a channel, not a leak.
    assert_check(&audit, "open_fds", "pass", &["none leaks"]);
    for id in ["pidfile_lock", "sighup", "syslog"] {
        assert_check(
            &audit,
            id,
            "pass",
            &["skipped", &format!("inspect {listener}")],
        );
    }
    assert_check(&audit, "stdio", "pass", &["0 → /dev/null"]);
}

#[test]
fn sshd_listener_pid_file_and_per_message_syslog() {
    const CASE: &str = "sshd_listener_pid_file_and_per_message_syslog";
    if !sshd_can_start(CASE) {
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

/// Run `then` (sh) in a new private mount namespace with its own /run (mounted first and
/// with -n, so mount(8) keeps no bookkeeping in the machine's /run/mount) and its own /dev
/// (the few device nodes a daemon needs, bind-mounted from ours), under `dir`. busybox
/// syslogd always binds /dev/log (removing what is there) and writes /run/syslogd.pid,
/// and glibc's syslog(3) always connects to /dev/log: other tests own the machine's.
/// Whether it ran; a loud skip when namespaces are not allowed here.
fn in_private_dev_and_run(case: &str, dir: &Path, then: &str) -> bool {
    let d = dir.display();
    let script = format!(
        "mount -n -t tmpfs tmpfs /run && mkdir {d}/dev && mount -t tmpfs -o mode=755 tmpfs {d}/dev && \
         for n in null zero urandom random full; do touch {d}/dev/$n && mount --bind /dev/$n {d}/dev/$n || exit 1; done && \
         mount --rbind {d}/dev /dev && {then}"
    );
    let status = daemon("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    if !status.success() {
        eprintln!("SKIPPED {case}: no private mount namespace here (unshare: {status})");
    }
    status.success()
}

/// A glibc syslog(3) client: Python's syslog module is glibc's openlog() and syslog().
/// It connects at once (LOG_NDELAY), logs "first", and logs "again" on SIGUSR1.
const SYSLOG_CLIENT: &str = "import syslog, signal, time
syslog.openlog('dlclient', syslog.LOG_NDELAY | syslog.LOG_PID)
syslog.syslog('first')
signal.signal(signal.SIGUSR1, lambda *a: syslog.syslog('again'))
while True:
    time.sleep(60)
";

#[test]
fn a_syslog_client_whose_syslogd_restarted_reconnects_at_its_next_message() {
    const CASE: &str = "a_syslog_client_whose_syslogd_restarted_reconnects_at_its_next_message";
    if !installed(CASE, "/usr/bin/busybox")
        || !installed(CASE, "/usr/bin/unshare")
        || !installed(CASE, "/usr/bin/nsenter")
        || !installed(CASE, "/usr/bin/python3")
        || !root(CASE, "a private mount namespace for its /dev/log")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first_log = dir.path().join("messages");
    let client_file = dir.path().join("client.py");
    std::fs::write(&client_file, SYSLOG_CLIENT).unwrap();
    let client_pid = dir.path().join("client");
    let then = format!(
        "busybox syslogd -O {} && (/usr/bin/python3 {} >/dev/null 2>&1 & echo $! > {})",
        first_log.display(),
        client_file.display(),
        client_pid.display()
    );
    if !in_private_dev_and_run(CASE, dir.path(), &then) {
        return;
    }
    let syslogd_command = format!("busybox syslogd -O {}", first_log.display());
    let syslogd = wait_for("busybox syslogd", || {
        pids_running(&syslogd_command).first().copied()
    });
    let _stop_syslogd = Started::new(syslogd);
    let client = wait_pid_file(&client_pid);
    let _stop_client = Started::new(client);
    let logged = |file: &Path, word: &str| {
        wait_for(&format!("{word:?} in {}", file.display()), || {
            std::fs::read_to_string(file)
                .is_ok_and(|t| t.contains(&format!("dlclient[{client}]: {word}")))
                .then_some(client)
        })
    };
    logged(&first_log, "first");
    assert_check(
        &inspect(client),
        "syslog",
        "pass",
        &["connected to the log socket /dev/log"],
    );
    // syslogd stops: its socket file stays behind, with nothing bound to it.
    drop(_stop_syslogd);
    let audit = inspect(client);
    assert_check(
        &audit,
        "syslog",
        "pass",
        &["peer has closed", "stale", "drops it"],
    );
    // A new syslogd binds /dev/log again (in the client's namespace).
    let second_log = dir.path().join("messages2");
    let status = daemon("/usr/bin/nsenter")
        .arg(format!("--mount=/proc/{client}/ns/mnt"))
        .args(["busybox", "syslogd", "-O"])
        .arg(&second_log)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "nsenter busybox syslogd: {status}");
    let again_command = format!("busybox syslogd -O {}", second_log.display());
    let syslogd2 = wait_for("the second busybox syslogd", || {
        pids_running(&again_command).first().copied()
    });
    let _stop_syslogd2 = Started::new(syslogd2);
    wait_for("its /dev/log", || {
        std::fs::read_to_string(&second_log)
            .is_ok_and(|t| t.contains("syslogd started"))
            .then_some(syslogd2)
    });
    assert_check(
        &inspect(client),
        "syslog",
        "pass",
        &["peer has closed", "bound at /dev/log again", "reconnects"],
    );
    // The claim, checked: its next message reaches the new syslogd through a new
    // connection.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    logged(&second_log, "again");
    assert_check(
        &inspect(client),
        "syslog",
        "pass",
        &["connected to the log socket /dev/log"],
    );
}

#[test]
fn busybox_syslogd_in_a_private_mount_namespace() {
    const CASE: &str = "busybox_syslogd_in_a_private_mount_namespace";
    if !installed(CASE, "/usr/bin/busybox")
        || !installed(CASE, "/usr/bin/unshare")
        || !root(CASE, "a private mount namespace for its /dev/log and /run")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages");
    let run = format!("exec busybox syslogd -O {}", messages.display());
    if !in_private_dev_and_run(CASE, dir.path(), &run) {
        return;
    }
    let command = format!("busybox syslogd -O {}", messages.display());
    let pid = wait_for("busybox syslogd", || {
        pids_running(&command).first().copied()
    });
    let _stop = Started::new(pid);
    // Our receiver: a message sent to its /dev/log (reached through its root) arrives.
    let dev_log = format!("/proc/{pid}/root/dev/log");
    wait_for("its /dev/log", || {
        Path::new(&dev_log).exists().then_some(pid)
    });
    let sent = Command::new("logger")
        .args(["-u", &dev_log, "daemonlab-busybox-probe"])
        .status();
    if sent.is_ok_and(|s| s.success()) {
        wait_for("the message in its log file", || {
            std::fs::read_to_string(&messages)
                .is_ok_and(|t| t.contains("daemonlab-busybox-probe"))
                .then_some(pid)
        });
    }
    let audit = inspect(pid);
    // Its comm is "busybox", but it runs the syslogd applet: not a shell.
    assert_role(&audit, "daemon", pid);
    // /run/syslogd.pid, named after the applet, in its own /run; not locked, and a
    // second busybox syslogd neither checks it nor minds the socket (it removes it).
    assert_pidfile(&audit, Path::new("/run/syslogd.pid"), None);
    assert_eq!(audit["pidfile"]["content"], format!("{pid}\n"), "{audit:#}");
    assert_check(
        &audit,
        "pidfile_lock",
        "warn",
        &["not locked", "its own mount namespace"],
    );
    // One fork and setsid().
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(
        &audit,
        "syslog",
        "pass",
        &["log receiver itself", "/dev/log"],
    );
    // It keeps its receiving socket on fd 0 and its log file open without close-on-exec.
    assert_check(
        &audit,
        "stdio",
        "pass",
        &["0 → Unix datagram socket bound to /dev/log"],
    );
    assert_check(&audit, "open_fds", "warn", &[messages.to_str().unwrap()]);
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

/// A session bus at `bus`, forked with --print-pid: its PID.
fn start_dbus(dir: &Path, bus: &Path, name: &str) -> i32 {
    let printed = dir.join(name);
    let status = daemon("/usr/bin/dbus-daemon")
        .args(["--session", "--fork", "--print-pid"])
        .arg(format!("--address=unix:path={}", bus.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&printed).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "dbus-daemon: {status}");
    wait_pid_file(&printed)
}

#[test]
fn dbus_session_bus_forked_with_print_pid() {
    const CASE: &str = "dbus_session_bus_forked_with_print_pid";
    if !installed(CASE, "/usr/bin/dbus-daemon") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("bus");
    let pid = start_dbus(dir.path(), &bus, "printed");
    let _stop = Started::new(pid);
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    assert!(audit["pidfile"].is_null(), "{audit:#}");
    // The bus's listening socket is named, but it is no guard: dbus-daemon removes a
    // socket file it finds before it binds.
    assert_check(
        &audit,
        "pidfile_lock",
        "warn",
        &[bus.to_str().unwrap(), "takes the path over"],
    );
    assert_check(&audit, "session", "warn", &["leads its own session"]);
    assert_check(&audit, "stdio", "pass", &["0 → /dev/null"]);
    // Right after start it has logged nothing: no log socket yet is no fault.
    assert_check(&audit, "syslog", "pass", &["first message"]);
    // The oracle: a second bus at the same address starts, and the first one's path now
    // leads to the second.
    let second = start_dbus(dir.path(), &bus, "printed2");
    let _stop2 = Started::new(second);
    assert!(second != pid && alive(second) && alive(pid));
    let audit = inspect(pid);
    assert_check(
        &audit,
        "pidfile_lock",
        "warn",
        &["now names another file", "stops no second instance"],
    );
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
    // No log socket right after start: glibc's syslog(3) connects lazily; no fault.
    assert_check(&audit, "syslog", "pass", &["first message", "no fault"]);
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
    assert_check(&audit, "syslog", "pass", &["first message", "no fault"]);
}

/// supervisord started with a configuration given by a path relative to its working
/// directory, as `cd DIR && supervisord -c supervisord.conf` does; `programs` are the
/// `[program:x]` sections. Its PID, or `None` (and a loud skip) without supervisord.
fn start_supervisord(case: &str, dir: &Path, programs: &str) -> Option<i32> {
    let Ok(out) = Command::new("supervisord").arg("--version").output() else {
        eprintln!("SKIPPED {case}: supervisord is not installed (pip install supervisor)");
        return None;
    };
    assert!(out.status.success());
    let d = dir.display();
    std::fs::write(
        dir.join("supervisord.conf"),
        format!(
            "[supervisord]\npidfile={d}/supervisord.pid\nlogfile={d}/supervisord.log\nchildlogdir={d}\n[unix_http_server]\nfile={d}/sup.sock\n{programs}"
        ),
    )
    .unwrap();
    let status = daemon("supervisord")
        .args(["-c", "supervisord.conf"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "supervisord: {status}");
    Some(wait_pid_file(&dir.join("supervisord.pid")))
}

#[test]
fn supervisord_and_its_program() {
    const CASE: &str = "supervisord_and_its_program";
    let dir = tempfile::tempdir().unwrap();
    let Some(pid) = start_supervisord(CASE, dir.path(), "[program:nap]\ncommand=/bin/sleep 600\n")
    else {
        return;
    };
    let _stop = Started::new(pid);
    let program = wait_for("program of supervisord", || children(pid).first().copied());
    let pidfile = dir.path().join("supervisord.pid");
    let sock = dir.path().join("sup.sock");
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    // Named by pidfile= in the file given with -c, relative to supervisord's cwd.
    assert_pidfile(&audit, &pidfile, None);
    // Its control socket is the guard, named for what it is, at the path supervisord
    // renamed it to.
    assert_check(
        &audit,
        "pidfile_lock",
        "pass",
        &[
            &format!("Unix stream listening on {}", sock.display()),
            "control socket",
            "supervisorctl",
            "refuses to start",
        ],
    );
    let (_, syslog) = check(&audit, "syslog");
    assert!(
        syslog.contains("control socket") && !syslog.contains("connected to"),
        "{syslog}"
    );
    let (_, fds) = check(&audit, "open_fds");
    assert!(!fds.contains("lack close-on-exec"), "{fds}");
    // Python opened /dev/null into 0, 1 and 2 with O_CLOEXEC: harmless for its own
    // output, but a program it execs without setting up stdio starts with them closed.
    assert_check(
        &audit,
        "stdio",
        "warn",
        &["O_CLOEXEC", "starts with 0, 1 and 2 closed"],
    );
    // The oracle: a second supervisord with the same configuration refuses to start.
    let second = daemon("supervisord")
        .args(["-c", "supervisord.conf"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second supervisord started");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("Another program is already listening")
            || String::from_utf8_lossy(&second.stderr)
                .contains("Another program is already listening"),
        "{second:?}"
    );
    let audit = inspect(program);
    assert_role(&audit, "service", program);
    assert!(audit["pidfile"].is_null(), "{audit:#}");
    assert_check(
        &audit,
        "session",
        "pass",
        &["its service manager supervisord"],
    );
    assert_check(&audit, "stdio", "pass", &["shared with supervisord"]);
    // The manager is the single-instance guard and collects its output.
    assert_check(&audit, "pidfile_lock", "pass", &["manager supervisord"]);
    assert_check(
        &audit,
        "syslog",
        "pass",
        &["stdout and stderr go to supervisord"],
    );
    // /proc shows nothing of a subreaper: supervisord is never called one.
    let all = details(&audit);
    assert!(!all.contains("subreaper"), "{all}");
}

#[test]
fn nginx_with_daemon_off_under_supervisord() {
    const CASE: &str = "nginx_with_daemon_off_under_supervisord";
    if !installed(CASE, "/usr/sbin/nginx") || !root(CASE, "nginx's workers switch user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let port = free_port();
    let conf = nginx_conf(dir.path(), 1, port);
    let pidfile = dir.path().join("nginx.pid");
    // `daemon off;`: nginx stays in the foreground, as a supervisor wants it.
    let program = format!(
        "[program:web]\ncommand=/usr/sbin/nginx -c {} -p {d} -g \"daemon off; pid {}; error_log {d}/error.log;\"\n",
        conf.display(),
        pidfile.display()
    );
    let Some(sup) = start_supervisord(CASE, dir.path(), &program) else {
        return;
    };
    let _stop = Started::new(sup);
    let master = wait_pid_file(&pidfile);
    assert_eq!(ppid_of(master), Some(sup), "nginx is supervisord's child");
    let worker = wait_for("nginx worker", || children(master).first().copied());
    let audit = inspect(master);
    assert_role(&audit, "service", master);
    assert_pidfile(&audit, &pidfile, None);
    assert_check(
        &audit,
        "session",
        "pass",
        &["its service manager supervisord"],
    );
    assert_check(
        &audit,
        "pidfile_lock",
        "pass",
        &[&format!("127.0.0.1:{port}"), "EADDRINUSE"],
    );
    assert_check(
        &audit,
        "open_fds",
        "pass",
        &["as listeners", &format!("127.0.0.1:{port}")],
    );
    let audit = inspect(worker);
    assert_role(&audit, "worker", master);
    for id in ["pidfile_lock", "sighup", "syslog"] {
        assert_check(
            &audit,
            id,
            "pass",
            &["skipped", &format!("inspect {master}")],
        );
    }
}

/// Every descriptor of `pid` and where it points, in fd order.
fn fd_links(pid: i32) -> Vec<(String, PathBuf)> {
    let mut links: Vec<(String, PathBuf)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    Some((
                        e.file_name().into_string().ok()?,
                        std::fs::read_link(e.path()).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    links.sort();
    links
}
