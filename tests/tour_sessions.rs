//! `daemonlab tour --pause --format json`, one Enter per step: while the tour waits, every
//! step's `sessions` list is checked against /proc, read here with a parser of our own.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use common::{assert_all_gone, exe};

/// The fields of /proc/PID/stat this test needs.
#[derive(Debug, Clone, Copy)]
struct Stat {
    pid: i32,
    state: char,
    ppid: i32,
    pgid: i32,
    sid: i32,
    tty_nr: i32,
    tpgid: i32,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    let state = rest.trim_start().chars().next()?;
    let f: Vec<i32> = rest
        .split_whitespace()
        .skip(1)
        .take(6)
        .map(|x| x.parse().unwrap())
        .collect();
    Some(Stat {
        pid,
        state,
        ppid: f[0],
        pgid: f[1],
        sid: f[2],
        tty_nr: f[3],
        tpgid: f[4],
    })
}

fn all_processes() -> Vec<Stat> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(stat)
        .collect()
}

/// Unix98 pty slaves only: the lab's terminal is one.
fn pts_name(tty_nr: i32) -> Option<String> {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    (136..=143)
        .contains(&major)
        .then(|| format!("pts/{}", (major - 136) * 256 + minor))
}

fn int(v: &Value) -> i32 {
    v.as_i64().unwrap_or_else(|| panic!("not a number: {v}")) as i32
}

/// Check one step's `sessions` against the process table as it is now.
fn check_against_proc(record: &Value, stand_in: i32) {
    let step = record["step"].as_str().unwrap();
    let sessions = record["sessions"].as_array().expect("a sessions list");
    let table = all_processes();
    let subject = int(&record["process"]["pid"]);
    let shown: Vec<i32> = sessions.iter().map(|s| int(&s["sid"])).collect();
    for lab_pid in [stand_in, subject] {
        let st = stat(lab_pid).unwrap_or_else(|| panic!("{step}: {lab_pid} is gone"));
        assert!(
            shown.contains(&st.sid),
            "{step}: the session of {lab_pid} ({}) is missing from {shown:?}",
            st.sid
        );
    }
    for s in sessions {
        let sid = int(&s["sid"]);
        let in_session: Vec<&Stat> = table.iter().filter(|p| p.sid == sid).collect();
        let expected: BTreeSet<(i32, i32)> = in_session.iter().map(|p| (p.pgid, p.pid)).collect();
        let groups = s["groups"].as_array().unwrap();
        let drawn: BTreeSet<(i32, i32)> = groups
            .iter()
            .flat_map(|g| {
                let pgid = int(&g["pgid"]);
                g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |m| (pgid, int(&m["pid"])))
            })
            .collect();
        assert_eq!(drawn, expected, "{step}: members of session {sid}");
        assert_eq!(int(&s["leader_pid"]), sid);
        // A zombie holds its IDs but neither its terminal nor the title of leader.
        let live: Vec<&Stat> = in_session
            .iter()
            .copied()
            .filter(|p| p.state != 'Z')
            .collect();
        assert_eq!(
            s["leader_alive"].as_bool().unwrap(),
            live.iter().any(|p| p.pid == sid),
            "{step}: leader of {sid}"
        );
        let holder = live
            .iter()
            .find(|p| p.pid == sid)
            .or_else(|| live.iter().find(|p| p.tty_nr != 0));
        let tty = holder.and_then(|p| pts_name(p.tty_nr));
        assert_eq!(s["tty"].as_str(), tty.as_deref(), "{step}: tty of {sid}");
        let foreground = holder.filter(|p| p.tty_nr != 0).map(|p| p.tpgid);
        assert_eq!(
            s["foreground_pgid"].as_i64().map(|v| v as i32),
            foreground,
            "{step}: foreground group of {sid}"
        );
        for g in groups {
            let pgid = int(&g["pgid"]);
            let orphaned = !in_session.iter().filter(|p| p.pgid == pgid).any(|m| {
                table
                    .iter()
                    .find(|p| p.pid == m.ppid)
                    .is_some_and(|parent| parent.sid == sid && parent.pgid != pgid)
            });
            assert_eq!(
                g["orphaned"].as_bool().unwrap(),
                orphaned,
                "{step}: orphaned flag of group {pgid}"
            );
        }
        for gone in s["gone"].as_array().into_iter().flatten() {
            let pid = int(&gone["pid"]);
            assert!(stat(pid).is_none(), "{step}: {pid} is said to be gone");
        }
    }
}

#[test]
fn every_steps_session_picture_is_what_proc_says() {
    common::become_subreaper();
    let mut child = Command::new(exe())
        // --subreaper: the lab reaps what it orphans before it looks, so no zombie lingers.
        .args(["tour", "--pause", "--format", "json", "--subreaper"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut records = Vec::new();
    let mut seen = Vec::new();
    let mut stand_in = 0;
    for i in 0..11 {
        if i > 0 {
            writeln!(child.stdin.as_mut().unwrap()).unwrap();
        }
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let record: Value = serde_json::from_str(&line).unwrap();
        if i == 0 {
            stand_in = int(&record["process"]["ppid"]);
            seen.push(stand_in);
        }
        seen.push(int(&record["process"]["pid"]));
        // The tour now waits for Enter: the step's processes hold still.
        check_against_proc(&record, stand_in);
        records.push(record);
    }
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());

    // What the chapter's figures show, step by step.
    let sessions = |i: usize| records[i]["sessions"].as_array().unwrap().clone();
    let group_of = |s: &Value, pgid: i32| {
        s["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| int(&g["pgid"]) == pgid)
            .cloned()
            .unwrap_or_else(|| panic!("no group {pgid} in {s}"))
    };
    let first = int(&records[0]["process"]["pid"]);
    let s0 = &sessions(0)[0];
    assert_eq!(int(&s0["sid"]), stand_in);
    assert_eq!(int(&s0["foreground_pgid"]), first, "a foreground job");
    assert_eq!(group_of(s0, first)["orphaned"], false);
    let s3 = &sessions(3)[0];
    assert_eq!(group_of(s3, first)["orphaned"], true, "its parent exited");
    assert_eq!(int(&s3["gone"][0]["pid"]), first);
    let child3 = int(&records[3]["process"]["pid"]);
    assert_eq!(sessions(4).len(), 2, "setsid made a second session");
    assert!(sessions(4)[1]["tty"].is_null());
    assert_eq!(int(&sessions(4)[1]["sid"]), child3);
    assert_eq!(sessions(6)[1]["leader_alive"], false);
    assert_eq!(int(&sessions(6)[1]["gone"][0]["pid"]), child3);
    assert_all_gone(&seen);
}
