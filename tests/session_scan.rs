//! The session scan reads only the processes that can be in the sessions it draws (parent
//! chains and children lists, not the whole machine): held here to procps's `ps`, which
//! reads every process, and to the scan by definition (`scan_everything`), on a C
//! program's session full of orphans, and on every step of a lab that is not a subreaper
//! (tests/session_picture.rs runs the steps with the lab as one: that makes the whole
//! test process a subreaper, so it needs a test binary of its own).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use daemonlab::probe::sessions::{Interest, scan, scan_everything};

use common::sessions::{
    Pid, assert_as_ps_lists, every_step_is_drawn_as_ps_lists, picture_members, ps_table,
};

fn sesstree() -> Option<&'static std::path::Path> {
    static BUILT: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| common::cc::build("sesstree", include_str!("c/sesstree.c")))
        .as_deref()
}

/// A running tests/c/sesstree.c and the PIDs it printed, by role. Dropping it closes
/// its stdin, which ends every process of it, and waits for R, which reaps the rest.
struct Tree {
    child: Child,
    stdin: Option<ChildStdin>,
    roles: BTreeMap<String, Pid>,
}

impl Tree {
    fn start(exe: &std::path::Path, mode: &str) -> Tree {
        let mut child = Command::new(exe)
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sesstree starts");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut roles = BTreeMap::new();
        let all = ["R", "P", "A", "T", "Z", "B", "C1", "C2", "D", "ready"];
        while !all.iter().all(|r| roles.contains_key(*r)) {
            let line = lines.next().expect("sesstree prints every role").unwrap();
            let (role, pid) = line.split_once(' ').unwrap();
            roles.insert(role.to_string(), pid.parse().unwrap());
        }
        let tree = Tree {
            child,
            stdin,
            roles,
        };
        // The zombie and the two exits are done, and everyone else waits for its stdin,
        // once their rows say so.
        let gone =
            |role: &str| !std::path::Path::new(&format!("/proc/{}", tree.pid(role))).exists();
        let waiting = |role: &str| {
            daemonlab::probe::read_stat(tree.pid(role)).is_ok_and(|st| st.state == 'S')
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(!common::running(tree.pid("Z"))
            && gone("B")
            && gone("C1")
            && ["R", "P", "A", "T", "C2", "D"].into_iter().all(waiting))
        {
            assert!(
                Instant::now() < deadline,
                "sesstree did not settle: {:?}",
                tree.roles
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        tree
    }

    fn pid(&self, role: &str) -> Pid {
        self.roles[role]
    }

    fn all(&self) -> Vec<Pid> {
        self.roles.values().copied().collect()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn a_session_of_orphans_is_drawn_whole(mode: &str) {
    let Some(exe) = sesstree() else { return };
    let tree = Tree::start(exe, mode);
    let (a, d) = (tree.pid("A"), tree.pid("D"));
    let adopter = if mode == "parent" {
        tree.pid("P")
    } else {
        tree.pid("R")
    };
    let interest = [
        Interest {
            pid: a,
            birth_parent: Some(tree.pid("P")),
        },
        Interest {
            pid: d,
            birth_parent: Some(tree.pid("C1")),
        },
    ];
    let pictures = scan(&interest, &[]).unwrap();
    assert_eq!(pictures, scan_everything(&interest, &[]).unwrap());
    assert_eq!(pictures.len(), 1, "A's session holds both: {pictures:#?}");
    let members = picture_members(&pictures, a);
    let expected: BTreeSet<(Pid, Pid, Pid, char)> = [
        (a, tree.pid("P"), a, 'S'),
        (tree.pid("T"), a, a, 'S'),
        (tree.pid("Z"), a, a, 'Z'),
        (tree.pid("C2"), adopter, tree.pid("B"), 'S'),
        (d, adopter, tree.pid("B"), 'S'),
    ]
    .into();
    assert_eq!(members, expected, "{pictures:#?}");
    assert_eq!(pictures[0].adopter.as_ref().map(|x| x.pid), Some(adopter));
    if let Some(ps) = ps_table() {
        assert_as_ps_lists(&pictures, &ps);
    }

    // T killed: a zombie now (A never waits), which the next picture shows as such.
    // SAFETY: kill(2) of a PID this test started (T, a child of its sesstree's A).
    assert_eq!(unsafe { libc::kill(tree.pid("T"), libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::running(tree.pid("T")) {
        assert!(Instant::now() < deadline, "T did not die");
        std::thread::sleep(Duration::from_millis(5));
    }
    let next = scan(&interest, &pictures).unwrap();
    assert_eq!(next, scan_everything(&interest, &pictures).unwrap());
    assert!(
        picture_members(&next, a).contains(&(tree.pid("T"), a, a, 'Z')),
        "{next:#?}"
    );
    let pids = tree.all();
    drop(tree);
    common::assert_all_gone(&pids);
}

#[test]
fn orphans_adopted_by_the_parent_of_the_session_leader_are_drawn() {
    a_session_of_orphans_is_drawn_whole("parent");
}

#[test]
fn orphans_adopted_further_up_the_chain_are_drawn() {
    a_session_of_orphans_is_drawn_whole("grand");
}

#[test]
fn every_lab_step_is_drawn_as_ps_lists_it() {
    every_step_is_drawn_as_ps_lists(false);
}
