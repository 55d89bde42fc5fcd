//! The `ps -axj` table against the kernel (via nix) and against procps's own `ps`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daemonlab::probe::Pid;
use daemonlab::probe::ps::{self, PsRow};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{self, getpgrp, getppid};

fn our_pid() -> Pid {
    std::process::id() as Pid
}

fn table() -> Vec<PsRow> {
    ps::read_table().expect("read the process table")
}

fn row_of(rows: &[PsRow], pid: Pid) -> &PsRow {
    rows.iter()
        .find(|r| r.pid == pid)
        .unwrap_or_else(|| panic!("PID {pid} is not in the table"))
}

/// Whether an external tool can be run at all; tests that need it say loudly when not.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: `{tool}` is not installed; this comparison did not run");
    }
    found
}

/// A `sleep 600` child, killed and reaped even when the test panics.
struct Sleeper(Child);

impl Sleeper {
    /// A `sleep 600` whose exec has finished: spawn() returns once the child exists, and
    /// for a moment after the new program's name is set its arguments are not yet there
    /// (cmdline reads empty, and ps shows `[sleep]` too).
    fn spawn() -> Self {
        let sleeper = Sleeper(
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sleep"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read(format!("/proc/{}/cmdline", sleeper.pid())).unwrap_or_default()
            != b"sleep\x00600\x00"
        {
            assert!(std::time::Instant::now() < deadline, "sleep never ran");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        sleeper
    }

    fn pid(&self) -> Pid {
        self.0.id() as Pid
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn our_own_row_has_the_ids_the_kernel_reports() {
    let rows = table();
    let me = row_of(&rows, our_pid());
    assert_eq!(me.ppid, getppid().as_raw());
    assert_eq!(me.pgid, getpgrp().as_raw());
    assert_eq!(me.sid, unistd::getsid(None).unwrap().as_raw());
    assert!(!me.kernel_thread);
    assert_eq!(me.uid, unistd::geteuid().as_raw());
    assert!(me.command.contains("ps-"), "{}", me.command);
    // /proc/PID/stat shows the main thread, which the harness may have put to sleep while
    // this test runs on another thread: running or sleeping, never stopped or a zombie.
    assert!(me.stat.starts_with(['R', 'S', 'D']), "{}", me.stat);
    assert!(
        me.stat.contains('l'),
        "the harness is multi-threaded: {}",
        me.stat
    );
    if me.tty.is_some() {
        assert!(
            !me.daemon_like,
            "a process with a terminal is never daemon-like"
        );
    } else {
        eprintln!(
            "note: no controlling terminal here, so daemon_like={}",
            me.daemon_like
        );
    }
}

#[test]
fn rows_are_in_pid_order_and_unique() {
    let rows = table();
    assert!(rows.windows(2).all(|w| w[0].pid < w[1].pid));
}

#[test]
fn kernel_threads_are_detected() {
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() != "kthreadd" {
        eprintln!("SKIPPED: PID 2 is not kthreadd in this PID namespace ({comm:?})");
        return;
    }
    let rows = table();
    let kthreadd = row_of(&rows, 2);
    assert!(kthreadd.kernel_thread);
    assert_eq!(kthreadd.command, "[kthreadd]");
    let children: Vec<&PsRow> = rows.iter().filter(|r| r.ppid == 2).collect();
    assert!(!children.is_empty(), "kthreadd has no children?");
    for child in children {
        assert!(child.kernel_thread, "{child:?}");
        assert!(!child.daemon_like, "{child:?}");
        assert!(child.command.starts_with('['), "{child:?}");
    }
    assert!(!row_of(&rows, our_pid()).kernel_thread);
}

#[test]
fn rows_match_procps() {
    if !have("ps") {
        return;
    }
    let sleeper = Sleeper::spawn();
    let rows = table();
    for pid in [our_pid(), 1, sleeper.pid()] {
        let out = Command::new("ps")
            .args(["-o", "pid=,ppid=,pgid=,sid=,tty=,tpgid=", "-p"])
            .arg(pid.to_string())
            .output()
            .expect("run ps");
        assert!(out.status.success(), "ps -p {pid} failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let theirs: Vec<&str> = text.split_whitespace().collect();
        let row = row_of(&rows, pid);
        let ours = [
            row.pid.to_string(),
            row.ppid.to_string(),
            row.pgid.to_string(),
            row.sid.to_string(),
            row.tty.clone().unwrap_or_else(|| "?".into()),
            row.tpgid.to_string(),
        ];
        assert_eq!(theirs, ours, "PID {pid}");
    }
    let sleep_row = row_of(&rows, sleeper.pid());
    assert_eq!(sleep_row.command, "sleep 600");
    assert_eq!(sleep_row.ppid, our_pid());
    assert_eq!(sleep_row.time, "0:00");
}

/// A process started by `setsid -f`, found by its unique argument and killed on drop
/// (it is init's child, so init reaps it).
struct Detached {
    arg: String,
    pid: Option<Pid>,
}

impl Detached {
    fn find(&mut self) -> Option<PsRow> {
        let wanted = format!("sleep {}", self.arg);
        let row = table().into_iter().find(|r| r.command == wanted)?;
        self.pid = Some(row.pid);
        Some(row)
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if self.pid.is_none() {
            let _ = self.find();
        }
        if let Some(pid) = self.pid {
            let _ = kill(unistd::Pid::from_raw(pid), Signal::SIGKILL);
            // Its reaper is init, not us: give it a moment so no zombie outlives the test.
            let deadline = Instant::now() + Duration::from_secs(2);
            while std::path::Path::new(&format!("/proc/{pid}")).exists()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[test]
fn setsid_sleep_is_daemon_like() {
    if !have("setsid") {
        return;
    }
    // A unique duration so the row can be told apart from any other sleep.
    let arg = format!("30.{}", our_pid());
    let mut detached = Detached {
        arg: arg.clone(),
        pid: None,
    };
    let status = Command::new("setsid")
        .args(["-f", "sleep", &arg])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run setsid");
    assert!(status.success());

    // setsid -f returns once it has forked; wait until the child has exec'd sleep.
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = loop {
        match detached.find() {
            Some(row) if row.sid == row.pid => break row,
            _ if Instant::now() > deadline => panic!("the setsid'd sleep never appeared"),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    assert_eq!(row.tty, None);
    assert_eq!(row.tpgid, -1);
    assert!(row.stat.contains('s'), "{row:?}");
    assert!(!row.kernel_thread);
    assert!(row.daemon_like, "{row:?}");
    let daemons = ps::daemons_only(table());
    assert!(daemons.iter().any(|r| r.pid == row.pid));
    assert!(daemons.iter().all(|r| r.daemon_like && !r.kernel_thread));
}

#[test]
fn json_is_an_array_of_rows_with_every_key() {
    let rows = table();
    let json: serde_json::Value = serde_json::from_str(&ps::json_table(&rows)).unwrap();
    let array = json.as_array().expect("a JSON array");
    assert_eq!(array.len(), rows.len());
    let keys = [
        "pid",
        "ppid",
        "pgid",
        "sid",
        "tty",
        "tpgid",
        "stat",
        "uid",
        "time",
        "command",
        "kernel_thread",
        "daemon_like",
        "comm",
        "role",
        "main_pid",
    ];
    for object in array {
        let object = object.as_object().expect("each row is an object");
        let mut found: Vec<&str> = object.keys().map(String::as_str).collect();
        found.sort_unstable();
        let mut wanted = keys.to_vec();
        wanted.sort_unstable();
        assert_eq!(found, wanted);
    }
    let me = array
        .iter()
        .find(|o| o["pid"] == serde_json::json!(our_pid()))
        .unwrap();
    assert!(me["tty"].is_null() || me["tty"].is_string());
    assert!(me["kernel_thread"].is_boolean());
}

#[test]
fn text_table_has_the_ps_axj_header_and_one_line_per_row() {
    let rows = table();
    let text = ps::text_table(&rows);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "PPID", "PID", "PGID", "SID", "TTY", "TPGID", "STAT", "UID", "TIME", "COMMAND"
        ]
    );
    assert!(
        header.starts_with(" PPID   PID  PGID   SID TTY"),
        "{header:?}"
    );
    assert_eq!(lines.count(), rows.len());
    // Right-aligned PIDs end where the header's "PID" ends.
    let pid_end = header.find("  PGID").unwrap();
    let me = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(&our_pid().to_string()))
        .expect("our own line");
    assert!(me[..pid_end].ends_with(&our_pid().to_string()), "{me:?}");
}

#[test]
fn tree_holds_every_row_once_with_children_deeper() {
    let rows = table();
    let tree = ps::tree(&rows);
    assert_eq!(tree.len(), rows.len());
    let mut pids: Vec<Pid> = tree.iter().map(|(_, r)| r.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), rows.len());
    // Our parent comes before us, one level up.
    let at = |pid: Pid| tree.iter().position(|(_, r)| r.pid == pid);
    let me = at(our_pid()).unwrap();
    if let Some(parent) = at(getppid().as_raw()) {
        assert!(parent < me);
        assert_eq!(tree[parent].0 + 1, tree[me].0);
    }
}

#[test]
fn processes_that_exit_mid_read_are_skipped_not_errors() {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = Command::new("true").status();
            }
        });
        let result = std::panic::catch_unwind(|| {
            for _ in 0..30 {
                ps::read_table().expect("a churning process table is still readable");
            }
        });
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

/// `inspect` reads only the rows a role depends on (parents, session and group leaders,
/// transitively). Every process on the machine must get the role and main PID the whole
/// table gives it; a row that changed between the two reads (a process that exited or
/// was adopted meanwhile) makes that comparison void, so it is left out.
#[test]
fn related_rows_give_every_process_the_role_the_whole_table_gives() {
    let whole = table();
    let mut compared = 0;
    for row in &whole {
        let related = ps::read_related(&[row.pid]).unwrap();
        // Gone since the whole table was read (its related rows are then none at all).
        let unchanged = related.iter().any(|r| r.pid == row.pid)
            && related.iter().all(|r| {
                whole.iter().any(|w| {
                    (w.pid, w.ppid, w.sid, w.pgid, &w.comm, w.tty.is_some())
                        == (r.pid, r.ppid, r.sid, r.pgid, &r.comm, r.tty.is_some())
                        && w.stat.starts_with('Z') == r.stat.starts_with('Z')
                })
            });
        if !unchanged {
            continue;
        }
        let mine = row_of(&related, row.pid);
        assert_eq!(
            (mine.role, mine.main_pid),
            (row.role, row.main_pid),
            "role of {} ({}) from {} related rows",
            row.pid,
            row.comm,
            related.len()
        );
        // What the role looked at is there: the parent, the session and group leaders.
        for id in [row.ppid, row.sid, row.pgid] {
            if id > 0 && whole.iter().any(|w| w.pid == id) {
                assert!(related.iter().any(|r| r.pid == id), "{id} for {}", row.pid);
            }
        }
        compared += 1;
    }
    assert_few_void(compared, whole.len());
}

/// `inspect` reads its process's related rows first and adds the holders of its pipes
/// later: the two reads together must give what one read of both gives, rows and roles.
#[test]
fn related_rows_read_in_two_goes_match_one_read() {
    let whole = table();
    let mut compared = 0;
    for (i, row) in whole.iter().enumerate() {
        let other = whole[(i + whole.len() / 2) % whole.len()].pid;
        let first = ps::read_related(&[row.pid]).unwrap();
        let first_pids: Vec<i32> = first.iter().map(|r| r.pid).collect();
        let in_two = ps::read_more_related(first, &[row.pid, other]).unwrap();
        let in_one = ps::read_related(&[row.pid, other]).unwrap();
        let key = |rows: &[PsRow]| -> Vec<_> {
            rows.iter()
                .map(|r| {
                    (
                        r.pid,
                        r.ppid,
                        r.sid,
                        r.pgid,
                        r.role,
                        r.main_pid,
                        r.daemon_like,
                    )
                })
                .collect()
        };
        let moved = |rows: &[PsRow]| {
            !rows.iter().all(|r| {
                whole
                    .iter()
                    .any(|w| (w.pid, w.ppid, w.sid, w.pgid) == (r.pid, r.ppid, r.sid, r.pgid))
            })
        };
        // Reaped since: /proc has no entry for it any more.
        let gone = |rows: &[PsRow]| {
            rows.iter()
                .any(|r| !std::path::Path::new(&format!("/proc/{}", r.pid)).exists())
        };
        // A process that started, exited or moved between the reads voids the comparison.
        if moved(&in_two) || moved(&in_one) || gone(&in_two) || gone(&in_one) {
            continue;
        }
        assert_eq!(key(&in_two), key(&in_one), "{} then {other}", row.pid);
        assert!(
            first_pids
                .iter()
                .all(|p| in_two.iter().any(|r| r.pid == *p))
        );
        assert!(
            in_two.windows(2).all(|w| w[0].pid < w[1].pid),
            "sorted, each once"
        );
        compared += 1;
    }
    assert_few_void(compared, whole.len());
}

/// At most a tenth of `total` comparisons void, or two: a PID namespace of four
/// processes has the test's own short-lived children among them.
fn assert_few_void(compared: usize, total: usize) {
    assert!(
        compared + (total / 10).max(2) >= total,
        "{compared} of {total}"
    );
}
