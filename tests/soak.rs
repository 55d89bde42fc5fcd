//! Soak: many headless tours back to back in one process. Every tour starts a lab, runs
//! every step of the book and drops the lab; afterwards the test process must hold no more
//! descriptors, children or zombies than it did after a warm-up tour, and its resident
//! memory may grow only by a small slack.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use daemonlab::lab::STEPS;

use common::{assert_all_gone, start_lab};

/// The two soak tests share the subreaper and /proc figures of this process; they must
/// not overlap.
static SEQUENTIAL: Mutex<()> = Mutex::new(());

/// Resident memory may grow by this much over the whole soak (allocator caches, lazily
/// grown thread-local buffers).
const RSS_SLACK_KIB: u64 = 2 * 1024;

/// What the test process holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    fds: usize,
    children: usize,
    zombies: usize,
    rss_kib: u64,
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
        // The directory handle read_dir itself holds is one of the entries.
        .saturating_sub(1)
}

/// (live children, zombie children) of this process, from /proc/*/stat.
fn children() -> (usize, usize) {
    let me = std::process::id() as i32;
    let (mut live, mut zombies) = (0, 0);
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // Gone meanwhile.
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid != me {
            continue;
        }
        if state == "Z" {
            zombies += 1;
        } else {
            live += 1;
        }
    }
    (live, zombies)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn figures() -> Figures {
    let (children, zombies) = children();
    Figures {
        fds: open_fds(),
        children,
        zombies,
        rss_kib: rss_kib(),
    }
}

/// Figures once the lab's background threads have had a moment to let go of what they
/// hold: polls until nothing exceeds `limit` (or a deadline passes) and returns the last.
fn settled(limit: Option<Figures>) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = figures();
        let within = limit.is_none_or(|l| {
            now.fds <= l.fds && now.children <= l.children && now.zombies <= l.zombies
        });
        if within || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One headless tour: every step in the book's order, then the lab is dropped and every
/// process it showed must be gone.
fn tour() {
    let mut lab = start_lab();
    let mut seen: BTreeSet<i32> = BTreeSet::new();
    seen.insert(lab.session_pid());
    seen.insert(lab.subject_pid());
    for step in STEPS {
        let outcome = lab
            .run(step.id)
            .unwrap_or_else(|e| panic!("step {:?} fails: {e}", step.id));
        seen.insert(outcome.process.pid);
        if let Some(forked) = outcome.forked {
            seen.insert(forked.parent);
            seen.insert(forked.child);
        }
    }
    seen.insert(lab.subject_pid());
    drop(lab);
    let seen: Vec<i32> = seen.into_iter().collect();
    assert_all_gone(&seen);
}

fn soak(tours: usize) {
    let _one_at_a_time = SEQUENTIAL.lock().unwrap_or_else(|e| e.into_inner());

    // Warm-up: the first tour makes one-off allocations (lazy statics, thread pools).
    tour();
    let before = settled(None);

    let started = Instant::now();
    for i in 0..tours {
        tour();
        if (i + 1) % 50 == 0 {
            eprintln!("soak: {} / {tours} tours, {:?}", i + 1, figures());
        }
    }
    let elapsed = started.elapsed();
    let after = settled(Some(before));

    eprintln!(
        "soak: {tours} tours in {:.2} s ({:.3} s per tour)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / tours as f64
    );
    eprintln!(
        "soak: fds      before {:>6}  after {:>6}",
        before.fds, after.fds
    );
    eprintln!(
        "soak: children before {:>6}  after {:>6}",
        before.children, after.children
    );
    eprintln!(
        "soak: zombies  before {:>6}  after {:>6}",
        before.zombies, after.zombies
    );
    eprintln!(
        "soak: VmRSS    before {:>6} kB  after {:>6} kB  (growth {} kB, slack {RSS_SLACK_KIB} kB)",
        before.rss_kib,
        after.rss_kib,
        after.rss_kib as i64 - before.rss_kib as i64
    );

    assert!(
        after.fds <= before.fds,
        "descriptors leak: {} before, {} after {tours} tours",
        before.fds,
        after.fds
    );
    assert!(
        after.children <= before.children,
        "children left: {} before, {} after {tours} tours",
        before.children,
        after.children
    );
    assert!(
        after.zombies <= before.zombies,
        "zombies left: {} before, {} after {tours} tours",
        before.zombies,
        after.zombies
    );
    assert!(
        after.rss_kib <= before.rss_kib + RSS_SLACK_KIB,
        "resident memory grew by {} kB over {tours} tours (slack {RSS_SLACK_KIB} kB)",
        after.rss_kib - before.rss_kib
    );
}

#[test]
fn twenty_tours_leak_nothing() {
    soak(20);
}

#[test]
#[ignore = "soak: 500 tours, run with --ignored"]
fn five_hundred_tours_leak_nothing() {
    soak(500);
}
