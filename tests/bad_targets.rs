//! Users' files are never damaged: every wrong thing a `--pidfile` (or a lesson directory)
//! can name is refused with an error that names it, quickly, and left exactly as it was.
//!
//! Each run is the built binary under a time limit, so a hang fails the test instead of
//! hanging it; a process that overruns is killed by its own PID (it is our child).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a refusal may take: it is a few system calls, so anything near this is a hang.
const LIMIT: Duration = Duration::from_secs(10);

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Wait for `child` until `limit`; past it, kill it (our own child, by its PID) and fail.
fn wait_or_fail(child: &mut Child, what: &str, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}: it hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run the binary with `args` (through `sh -c 'umask U; exec …'` when `umask` is given),
/// stdin at /dev/null, and collect what it said.
fn run(args: &[&str], umask: Option<&str>) -> Ran {
    let mut command = match umask {
        None => {
            let mut command = Command::new(common::exe());
            command.args(args);
            command
        }
        Some(umask) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
                .arg(common::exe())
                .args(args);
            command
        }
    };
    collect(
        &mut command,
        &format!("daemonlab {}", args.join(" ")),
        LIMIT,
    )
}

/// Start `command` with stdin at /dev/null, collect its output, and fail the test if it
/// does not end within `limit`.
fn collect(command: &mut Command, what: &str, limit: Duration) -> Ran {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_or_fail(&mut child, what, limit);
    Ran {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Everything about a path that a careless open could change: what it is, its inode, its
/// bytes and modification time, and for a link the link itself.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    kind: String,
    dev_ino: (u64, u64),
    mtime: (i64, i64),
    bytes: Option<Vec<u8>>,
    link: Option<PathBuf>,
    entries: Option<usize>,
}

fn fingerprint(path: &Path) -> Fingerprint {
    let meta = path.symlink_metadata().unwrap();
    let kind = meta.file_type();
    Fingerprint {
        kind: format!("{kind:?}"),
        dev_ino: (meta.dev(), meta.ino()),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        bytes: kind.is_file().then(|| std::fs::read(path).unwrap()),
        link: kind.is_symlink().then(|| std::fs::read_link(path).unwrap()),
        entries: kind
            .is_dir()
            .then(|| std::fs::read_dir(path).unwrap().count()),
    }
}

/// A directory holding one of each bad target, and what each must be called in the error.
struct Targets {
    dir: tempfile::TempDir,
    _socket: std::os::unix::net::UnixListener,
}

const THESIS: &[u8] = b"my thesis\nchapter one, three years of work\n";

impl Targets {
    fn new() -> Targets {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("t.txt"), THESIS).unwrap();
        std::fs::write(p.join("target.txt"), THESIS).unwrap();
        std::os::unix::fs::symlink(p.join("target.txt"), p.join("link.pid")).unwrap();
        // A symlink to a file holding a PID: still refused, the link is the problem.
        std::fs::write(p.join("pid-target"), "1234\n").unwrap();
        std::os::unix::fs::symlink(p.join("pid-target"), p.join("link-to-pid.pid")).unwrap();
        nix::unistd::mkfifo(
            &p.join("fifo.pid"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let socket = std::os::unix::net::UnixListener::bind(p.join("sock.pid")).unwrap();
        std::fs::create_dir(p.join("dir.pid")).unwrap();
        std::fs::write(p.join("binary.pid"), b"\x7fELF\x00\x01").unwrap();
        std::fs::write(p.join("big.pid"), "1".repeat(4096)).unwrap();
        Targets {
            dir,
            _socket: socket,
        }
    }

    /// (file name, words the error must contain)
    fn cases() -> [(&'static str, &'static str); 8] {
        [
            ("t.txt", "holds text, not a process ID"),
            ("link.pid", "symbolic link"),
            ("link-to-pid.pid", "symbolic link"),
            ("fifo.pid", "FIFO"),
            ("sock.pid", "socket"),
            ("dir.pid", "directory"),
            ("binary.pid", "binary data"),
            ("big.pid", "not a process ID (4096 bytes)"),
        ]
    }

    /// Every path in the directory with its fingerprint (the symlinks' targets included).
    fn all(&self) -> Vec<(String, Fingerprint)> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let f = fingerprint(&self.dir.path().join(&n));
                (n, f)
            })
            .collect()
    }
}

fn assert_refused(ran: &Ran, path: &Path, words: &str, command: &str) {
    let shown = path.display().to_string();
    assert!(!ran.status.success(), "{command} {shown}: {}", ran.stdout);
    assert!(
        ran.stderr
            .contains(&format!("cannot use {shown} as a pid file")),
        "{command} {shown}: {}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains(words),
        "{command} {shown}: {}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("--pidfile"),
        "{command} {shown}: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

#[test]
fn locks_hold_refuses_every_bad_target_and_leaves_it_as_it_was() {
    let targets = Targets::new();
    let before = targets.all();
    for (name, words) in Targets::cases() {
        let path = targets.dir.path().join(name);
        let ran = run(
            &["locks", "hold", "--pidfile", path.to_str().unwrap()],
            None,
        );
        assert_refused(&ran, &path, words, "locks hold");
        assert!(ran.stderr.contains("left as it was"), "{}", ran.stderr);
    }
    assert_eq!(targets.all(), before);
}

#[test]
fn locks_race_refuses_every_bad_target_and_leaves_it_as_it_was() {
    let targets = Targets::new();
    let before = targets.all();
    for (name, words) in Targets::cases() {
        let path = targets.dir.path().join(name);
        for kind in ["fcntl", "flock", "ofd"] {
            let ran = run(
                &[
                    "locks",
                    "race",
                    "--contenders",
                    "3",
                    "--kind",
                    kind,
                    "--pidfile",
                    path.to_str().unwrap(),
                ],
                None,
            );
            assert_refused(&ran, &path, words, &format!("locks race --kind {kind}"));
        }
    }
    assert_eq!(targets.all(), before);
}

#[test]
fn a_character_device_is_refused_without_being_opened() {
    for command in ["hold", "race"] {
        let ran = run(&["locks", command, "--pidfile", "/dev/null"], None);
        assert_refused(
            &ran,
            Path::new("/dev/null"),
            "character device",
            &format!("locks {command}"),
        );
    }
}

#[test]
fn proc_paths_are_refused_honestly() {
    for path in [
        "/proc/x.pid",
        "/proc/self/status",
        "/proc/no-such-dir/x.pid",
        "/sys/x.pid",
    ] {
        for command in ["hold", "race"] {
            let ran = run(&["locks", command, "--pidfile", path], None);
            let what = format!("locks {command} --pidfile {path}");
            assert!(!ran.status.success(), "{what}");
            assert!(
                ran.stderr
                    .contains(&format!("cannot use {path} as a pid file")),
                "{what}: {}",
                ran.stderr
            );
            assert!(
                ran.stderr.contains("belongs to the kernel"),
                "{what}: {}",
                ran.stderr
            );
            assert!(
                ran.stderr.contains("--pidfile in a directory you own"),
                "{what}: {}",
                ran.stderr
            );
            assert!(
                !ran.stderr.contains("create its directory"),
                "{what}: {}",
                ran.stderr
            );
        }
    }
    assert!(!Path::new("/proc/x.pid").exists());
}

#[test]
fn nothing_under_proc_is_opened_for_writing() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed, so the opens cannot be watched");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    for path in ["/proc/self/status", "/proc/x.pid"] {
        for command in ["hold", "race"] {
            let ran = run_traced(&trace, &["locks", command, "--pidfile", path]);
            assert!(!ran.status.success());
            let log = std::fs::read_to_string(&trace).unwrap();
            let written: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("open") && l.contains("\"/proc/"))
                .filter(|l| l.contains("O_RDWR") || l.contains("O_WRONLY"))
                .collect();
            assert!(written.is_empty(), "locks {command} {path}: {written:#?}");
        }
    }
}

fn run_traced(trace: &Path, args: &[&str]) -> Ran {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2,creat", "-o"])
        .arg(trace)
        .arg(common::exe())
        .args(args);
    collect(&mut command, "strace daemonlab", LIMIT * 3)
}

/// `locks hold` on `path` until it says it holds the lock; then close its stdin (its
/// lifeline) and expect a clean release. Returns what the file held while it was locked.
fn hold_and_release(path: &Path) -> Vec<u8> {
    let mut child = Command::new(common::exe())
        .args(["locks", "hold", "--pidfile", path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = drain(child.stderr.take().unwrap());
    let (lines, said) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match said.recv_timeout(left) {
            Ok(line) if line.contains("releases it") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "locks hold {} never said it holds the lock: {seen:#?} {}",
                    path.display(),
                    stderr.join().unwrap()
                );
            }
        }
    }
    let content = std::fs::read(path).unwrap();
    drop(child.stdin.take());
    let status = wait_or_fail(&mut child, "locks hold after its stdin closed", LIMIT);
    assert!(status.success(), "{}", stderr.join().unwrap());
    content
}

#[test]
fn empty_and_pid_holding_files_are_accepted() {
    for content in [&b""[..], b"1234\n", b"1234\0", b"4194304"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.pid");
        std::fs::write(&path, content).unwrap();
        let held = hold_and_release(&path);
        let text = String::from_utf8(held).unwrap();
        let pid: u32 = text
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{content:?} -> {text:?}"))
            .parse()
            .unwrap();
        assert!(pid > 0);

        std::fs::write(&path, content).unwrap();
        let ran = run(
            &[
                "locks",
                "race",
                "--contenders",
                "3",
                "--pidfile",
                path.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            ran.status.success(),
            "{content:?}: {}{}",
            ran.stdout,
            ran.stderr
        );
        assert!(ran.stdout.contains("exactly one contender holds the lock"));
    }
}

#[test]
fn contenders_work_under_umask_277_and_777() {
    for umask in ["277", "777"] {
        for kind in ["fcntl", "flock", "ofd"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("race.pid");
            let ran = run(
                &[
                    "locks",
                    "race",
                    "--contenders",
                    "5",
                    "--kind",
                    kind,
                    "--pidfile",
                    path.to_str().unwrap(),
                ],
                Some(umask),
            );
            let what = format!("umask {umask}, {kind}");
            assert!(ran.status.success(), "{what}: {}{}", ran.stdout, ran.stderr);
            assert!(
                ran.stdout.contains("exactly one contender holds the lock"),
                "{what}: {}",
                ran.stdout
            );
            assert!(!ran.stdout.contains("failed"), "{what}: {}", ran.stdout);
            // Root opens a 0400 file for writing anyway, so check the mode itself: the pid
            // file the lab creates is the owner's to write and everyone's to read.
            let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o644, "{what}: mode {mode:o}");
        }
    }
}

#[test]
fn a_fifo_named_like_a_lesson_does_not_hang_lessons_check() {
    let dir = tempfile::tempdir().unwrap();
    let good = "+++\nid = \"fork\"\ntitle = \"A title\"\nsection = \"13.3\"\n+++\n\nText.\n";
    std::fs::write(dir.path().join("13-fork.md"), good).unwrap();
    std::fs::write(dir.path().join("14-broken.md"), "no front matter\n").unwrap();
    let fifo = dir.path().join("x.md");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let before = fingerprint(&fifo);
    let started = Instant::now();
    let ran = run(&["lessons", "check", dir.path().to_str().unwrap()], None);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!ran.status.success());
    assert!(
        ran.stderr.contains("x.md:1: x.md is a FIFO"),
        "{}",
        ran.stderr
    );
    // The other files are still checked.
    assert!(ran.stderr.contains("14-broken.md"), "{}", ran.stderr);
    assert!(ran.stderr.contains("2 problem(s)"), "{}", ran.stderr);
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    assert_eq!(fingerprint(&fifo), before);

    // --lessons reads the same way, before it asks for a terminal.
    let ran = run(&["--lessons", dir.path().to_str().unwrap()], None);
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("x.md is a FIFO"), "{}", ran.stderr);
}
