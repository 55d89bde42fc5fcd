//! Contenders on the real binary: races, hand-overs, and nothing left behind.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use daemonlab::locks::{ContenderInfo, ContenderState, Contenders, LockKind, LockMode};

const WIRED: &str = "needs the __contender/__pitfall subcommands wired in main";

fn contenders(dir: &Path) -> Contenders {
    Contenders::new(common::exe(), dir.join("race.pid"), None)
}

/// Gone and reaped: no /proc entry at all for a process we started (a zombie would still
/// have one), unless the PID was recycled by someone who is not our child.
fn assert_reaped(pids: &[i32]) {
    let me = std::process::id() as i32;
    for &pid in pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            let ppid: i32 = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0);
            assert_ne!(ppid, me, "contender {pid} is still ours: {stat}");
        }
    }
}

fn count(list: &[ContenderInfo], test: impl Fn(&ContenderState) -> bool) -> usize {
    list.iter().filter(|c| test(&c.state)).count()
}

fn holder_pid(dir: &Path) -> i32 {
    std::fs::read_to_string(dir.join("race.pid"))
        .unwrap()
        .trim_end()
        .parse()
        .unwrap()
}

#[test]

fn exactly_one_of_fifty_wins_in_try_mode_for_each_kind() {
    let _ = WIRED;
    for kind in LockKind::ALL {
        let dir = tempfile::tempdir().unwrap();
        let contenders = contenders(dir.path());
        let pids = contenders.spawn_many(50, kind, LockMode::Try).unwrap();
        assert_eq!(pids.len(), 50);
        assert!(
            contenders.wait_settled(Duration::from_secs(20)),
            "{kind}: not settled"
        );
        let outcomes = contenders.outcomes();
        let winners: Vec<i32> = outcomes
            .iter()
            .filter(|c| c.state == ContenderState::Holding)
            .map(|c| c.pid)
            .collect();
        assert_eq!(winners.len(), 1, "{kind}: {outcomes:?}");
        let refused = count(&outcomes, |s| matches!(s, ContenderState::Refused { .. }));
        assert_eq!(refused, 49, "{kind}: {outcomes:?}");
        // Every loser named the winner: F_GETLK for fcntl, /proc for flock and OFD.
        for c in &outcomes {
            if let ContenderState::Refused { holder } = &c.state {
                assert_eq!(*holder, Some(winners[0]), "{kind}: {c:?}");
            }
        }
        assert_eq!(holder_pid(dir.path()), winners[0]);
        let evidence = contenders.evidence();
        assert_eq!(evidence.table.holders.len(), 1, "{kind}: {evidence:?}");
        assert_eq!(evidence.table.holders[0].class, kind.proc_class());
        assert_eq!(evidence.fd_holders, winners, "{kind}");
        // The refused ones exit 1 and are reaped promptly.
        assert!(
            contenders.wait_for(pids[0], Duration::from_secs(1), |_| true),
            "{kind}"
        );
        let exited = |list: &[ContenderInfo]| {
            count(list, |s| {
                *s == ContenderState::Exited {
                    status: "exit 1".into(),
                }
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while exited(&contenders.list()) < 49 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            exited(&contenders.list()),
            49,
            "{kind}: {:?}",
            contenders.list()
        );
        contenders.stop_all();
        assert_reaped(&pids);
    }
}

#[test]

fn killing_the_holder_hands_the_lock_to_exactly_one_waiter() {
    for kind in LockKind::ALL {
        let dir = tempfile::tempdir().unwrap();
        let contenders = contenders(dir.path());
        let first = contenders.spawn(kind, LockMode::Wait).unwrap();
        assert!(contenders.wait_for(first, Duration::from_secs(10), |s| *s
            == ContenderState::Holding));
        let waiters = contenders.spawn_many(5, kind, LockMode::Wait).unwrap();
        assert!(contenders.wait_settled(Duration::from_secs(10)));
        assert_eq!(
            count(&contenders.list(), |s| *s == ContenderState::Waiting),
            5,
            "{kind}"
        );
        // The kernel lists them as `->` waiters once they are asleep in it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while contenders.evidence().table.waiters.len() < 5 && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(contenders.evidence().table.waiters.len(), 5, "{kind}");

        assert_eq!(contenders.kill_holder(), Some(first));
        assert_eq!(
            contenders.list()[0].state,
            ContenderState::Exited {
                status: "killed by SIGKILL".into()
            }
        );
        let handed = |list: &[ContenderInfo]| count(list, |s| *s == ContenderState::Holding);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while handed(&contenders.list()) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        // Give a wrong second grant a chance to show up before counting.
        std::thread::sleep(Duration::from_millis(100));
        let list = contenders.list();
        assert_eq!(handed(&list), 1, "{kind}: {list:?}");
        assert_eq!(
            count(&list, |s| *s == ContenderState::Waiting),
            4,
            "{kind}: {list:?}"
        );
        let new_holder = list
            .iter()
            .find(|c| c.state == ContenderState::Holding)
            .unwrap()
            .pid;
        assert!(waiters.contains(&new_holder));
        assert_eq!(holder_pid(dir.path()), new_holder);
        contenders.stop_all();
        let mut all = waiters.clone();
        all.push(first);
        assert_reaped(&all);
    }
}

#[test]

fn stop_all_ends_waiters_blocked_in_the_kernel_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let contenders = contenders(dir.path());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    contenders.set_listener(Box::new(move || {
        seen.fetch_add(1, Ordering::Relaxed);
    }));
    let holder = contenders.spawn(LockKind::Fcntl, LockMode::Wait).unwrap();
    assert!(contenders.wait_for(holder, Duration::from_secs(10), |s| *s
        == ContenderState::Holding));
    let waiters = contenders
        .spawn_many(3, LockKind::Fcntl, LockMode::Wait)
        .unwrap();
    assert!(contenders.wait_settled(Duration::from_secs(10)));
    let started = std::time::Instant::now();
    contenders.stop_all();
    // Closing stdin is enough, even for waiters asleep in F_SETLKW: they all exit 0 on
    // their own (a SIGKILL after the grace period would show as "killed by SIGKILL").
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for info in contenders.list() {
        assert_eq!(
            info.state,
            ContenderState::Exited {
                status: "exit 0".into()
            }
        );
    }
    assert!(calls.load(Ordering::Relaxed) >= 8);
    let mut all = waiters;
    all.push(holder);
    assert_reaped(&all);
}

#[test]

fn dropping_the_manager_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pids = {
        let contenders = contenders(dir.path());
        let mut pids = contenders
            .spawn_many(4, LockKind::Flock, LockMode::Wait)
            .unwrap();
        pids.extend(
            contenders
                .spawn_many(4, LockKind::Ofd, LockMode::Try)
                .unwrap(),
        );
        contenders.wait_settled(Duration::from_secs(10));
        pids
    };
    assert_reaped(&pids);
}

#[test]

fn contenders_report_through_syslog() {
    use daemonlab::syslog::receiver::Receiver;
    let dir = tempfile::tempdir().unwrap();
    let socket: PathBuf = dir.path().join("log.sock");
    let receiver = Receiver::bind(&socket, 100).unwrap();
    let contenders = Contenders::new(
        common::exe(),
        dir.path().join("race.pid"),
        Some(socket.clone()),
    );
    let pids = contenders
        .spawn_many(3, LockKind::Fcntl, LockMode::Try)
        .unwrap();
    assert!(contenders.wait_settled(Duration::from_secs(10)));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while receiver.received() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let texts: Vec<String> = receiver.messages().iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("holding the lock on"))
            .count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("refused: already running as pid"))
            .count(),
        2,
        "{texts:?}"
    );
    assert!(texts.iter().all(|t| t.contains("contender[")), "{texts:?}");
    drop(contenders);
    assert_reaped(&pids);
}

#[test]
fn a_binary_without_the_subcommand_fails_cleanly() {
    // `true` ignores its arguments and exits 0 without a word: the contender must end up
    // Failed/Exited, not Starting forever, and be reaped.
    let dir = tempfile::tempdir().unwrap();
    let contenders = Contenders::new(PathBuf::from("/bin/false"), dir.path().join("x.pid"), None);
    let pid = contenders.spawn(LockKind::Fcntl, LockMode::Try).unwrap();
    assert!(contenders.wait_settled(Duration::from_secs(5)));
    assert_eq!(
        contenders.list()[0].state,
        ContenderState::Exited {
            status: "exit 1".into()
        }
    );
    assert!(matches!(
        &contenders.outcomes()[0].state,
        ContenderState::Failed { message } if message.contains("before reporting")
    ));
    drop(contenders);
    assert_reaped(&[pid]);
}

#[test]
fn a_missing_binary_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let contenders = Contenders::new(
        PathBuf::from("/nonexistent/daemonlab"),
        dir.path().join("x.pid"),
        None,
    );
    let error = contenders
        .spawn_many(3, LockKind::Fcntl, LockMode::Try)
        .unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/daemonlab"),
        "{error}"
    );
    assert!(contenders.list().is_empty());
}

/// The environment variable that turns `a_lab_killed_by_sigkill_leaves_no_contender` into
/// the "lab" it kills: a copy of this test binary that starts contenders and waits.
const CHILD_LAB: &str = "DAEMONLAB_LOCKS_TEST_CHILD_LAB";

#[test]
fn a_lab_killed_by_sigkill_leaves_no_contender() {
    if let Some(dir) = std::env::var_os(CHILD_LAB) {
        // The child: one holder and three waiters (blocked in F_SETLKW), then wait to die.
        let contenders = Contenders::new(common::exe(), Path::new(&dir).join("race.pid"), None);
        let mut pids = vec![contenders.spawn(LockKind::Fcntl, LockMode::Wait).unwrap()];
        contenders.wait_settled(Duration::from_secs(10));
        pids.extend(
            contenders
                .spawn_many(3, LockKind::Fcntl, LockMode::Wait)
                .unwrap(),
        );
        contenders.wait_settled(Duration::from_secs(10));
        println!("pids {}", serde_json::to_string(&pids).unwrap());
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    // Orphaned contenders come to us, so we can reap them and see them gone.
    common::become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let mut lab = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_lab_killed_by_sigkill_leaves_no_contender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_LAB, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(lab.stdout.take().unwrap());
    let mut line = String::new();
    let pids: Vec<i32> = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "the child lab ended without listing its contenders"
        );
        // libtest may have printed "test NAME ... " on the same line first.
        if let Some((_, json)) = line.split_once("pids ") {
            break serde_json::from_str(json.trim()).unwrap();
        }
    };
    assert_eq!(pids.len(), 4);
    lab.kill().unwrap();
    lab.wait().unwrap();
    // Every contender sees end-of-file on stdin and leaves at once, waiters included.
    common::assert_all_gone(&pids);
}

/// Parent PID and command line of a process, from /proc.
fn parent_and_cmdline(pid: i32) -> Option<(i32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some((ppid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
}

#[test]
fn contenders_are_forked_by_one_helper_that_goes_with_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let contenders = contenders(dir.path());
    let first = contenders.spawn(LockKind::Ofd, LockMode::Wait).unwrap();
    let more = contenders
        .spawn_many(3, LockKind::Ofd, LockMode::Wait)
        .unwrap();
    assert!(contenders.wait_settled(Duration::from_secs(10)));
    // Every contender is a child of the same helper, which is our child and runs the
    // hidden subcommand: no contender exec'd the binary again.
    let (helper, _) = parent_and_cmdline(first).expect("the holder is alive");
    for &pid in &more {
        let (parent, cmdline) = parent_and_cmdline(pid).expect("a waiter is alive");
        assert_eq!(parent, helper, "{pid}: {cmdline}");
        assert!(cmdline.contains("__spawner"), "{pid}: {cmdline}");
    }
    let (grandparent, cmdline) = parent_and_cmdline(helper).expect("the helper is alive");
    assert_eq!(grandparent, std::process::id() as i32);
    assert!(cmdline.contains("__spawner"), "{cmdline}");
    drop(contenders);
    let mut all = more;
    all.push(first);
    assert_reaped(&all);
    // The helper is gone and reaped too.
    assert!(parent_and_cmdline(helper).is_none_or(|(parent, _)| parent != grandparent));
}
