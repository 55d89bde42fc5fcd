//! Properties over arbitrary input for every parser the public API exposes: none of them
//! panics, whatever it is given, and the ones with an exact contract keep it.
//!
//! Not repeated here: syslog `parse::parse` (tests/syslog_proptest.rs) and plain
//! "any text" / "lock-shaped text" runs of `proc_locks::parse` (its unit tests). Each
//! parser also has a long run of a million inputs, ignored by default:
//! `cargo test --release --test proptests_parsers -- --ignored NAME`.

use std::io::BufRead;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use daemonlab::audit::parse_pid;
use daemonlab::lab::protocol::{Reply, Request, receive};
use daemonlab::lessons::{Lesson, LessonSet};
use daemonlab::locks::LockEntry;
use daemonlab::locks::proc_locks;
use daemonlab::probe::{format_umask, mask_names, parse_stat, tty_name};

/// Inputs for the long, ignored runs.
const FUZZ_CASES: u32 = 1_000_000;

fn fuzz_config() -> ProptestConfig {
    ProptestConfig {
        cases: FUZZ_CASES,
        // A million passing cases would otherwise be re-checked against the regression
        // file on every run for nothing; failures still shrink and are reported.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn pid_max() -> i128 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("read /proc/sys/kernel/pid_max")
        .trim()
        .parse()
        .expect("pid_max is a number")
}

// ---------------------------------------------------------------------------------------
// Strategies: arbitrary input, and input shaped enough to reach the deeper branches.

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// Pieces of a /proc/PID/stat line, in any order and number.
fn stat_like() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"(".to_vec()),
        Just(b")".to_vec()),
        Just(b" ".to_vec()),
        Just(b"-".to_vec()),
        Just(b"42".to_vec()),
        Just(b"2147483647".to_vec()),
        Just(b"2147483648".to_vec()),
        Just(b"-2147483648".to_vec()),
        Just(b"-2147483649".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just(b"S".to_vec()),
        Just(b"Z".to_vec()),
        Just(b"daemonlab".to_vec()),
        Just(b"\n".to_vec()),
        Just(vec![0xff, 0xfe]),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(pieces, 0..24).prop_map(|p| p.concat())
}

/// Tokens /proc/locks lines are made of, plus near misses, joined by spaces: whole lines
/// of plausible fields in implausible orders.
fn lock_lines() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("1:".to_owned()),
        Just("18446744073709551615:".to_owned()),
        Just("18446744073709551616:".to_owned()),
        Just(":".to_owned()),
        Just("->".to_owned()),
        Just("POSIX".to_owned()),
        Just("FLOCK".to_owned()),
        Just("OFDLCK".to_owned()),
        Just("LEASE".to_owned()),
        Just("ADVISORY".to_owned()),
        Just("MANDATORY".to_owned()),
        Just("BREAKER".to_owned()),
        Just("READ".to_owned()),
        Just("WRITE".to_owned()),
        Just("UNLCK".to_owned()),
        Just("-1".to_owned()),
        Just("4242".to_owned()),
        Just("2147483648".to_owned()),
        Just("fd:01:1310722".to_owned()),
        Just("00:00:0".to_owned()),
        Just("ffffffff:ffffffff:18446744073709551615".to_owned()),
        Just("100000000:0:1".to_owned()),
        Just("fd:01".to_owned()),
        Just("fd:01:2:3".to_owned()),
        Just("<none>".to_owned()),
        Just("0".to_owned()),
        Just("EOF".to_owned()),
        Just("eof".to_owned()),
        Just("\t".to_owned()),
        "[0-9a-f:]{0,12}",
        "\\PC{0,6}",
    ];
    let line = proptest::collection::vec(token, 0..12).prop_map(|t| t.join(" "));
    proptest::collection::vec(line, 0..6).prop_map(|l| l.join("\n"))
}

/// A lock entry that the kernel could print: fields without spaces, class not `->`.
fn lock_entry() -> impl Strategy<Value = LockEntry> {
    let word = "[A-Z_]{1,10}".prop_filter("not the waiter arrow", |w| w != "->");
    (
        (
            any::<u64>(),
            any::<bool>(),
            word.clone(),
            word.clone(),
            word,
        ),
        (
            any::<i32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<Option<u64>>(),
        ),
    )
        .prop_map(
            |((id, waiter, class, mode, access), (pid, major, minor, inode, start, end))| {
                LockEntry {
                    id,
                    waiter,
                    class,
                    mode,
                    access,
                    pid,
                    major,
                    minor,
                    inode,
                    start,
                    end,
                }
            },
        )
}

/// Lesson-shaped text: front matter fences, TOML lines good and bad, Markdown bits.
fn lesson_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("+++\n".to_owned()),
        Just("+++".to_owned()),
        Just("---\n".to_owned()),
        Just("id = \"fork\"\n".to_owned()),
        Just("id = \"\"\n".to_owned()),
        Just("id = 3\n".to_owned()),
        Just("title = \"Fork\"\n".to_owned()),
        Just("section = \"13.3\"\n".to_owned()),
        Just("step = \"fork\"\n".to_owned()),
        Just("step = \"no-such-step\"\n".to_owned()),
        Just("colour = \"red\"\n".to_owned()),
        Just("id = \"a\"\nid = \"b\"\n".to_owned()),
        Just("[table]\n".to_owned()),
        Just("key = [\n".to_owned()),
        Just("\"\"\"\n".to_owned()),
        Just("# Heading\n".to_owned()),
        Just("####### seven\n".to_owned()),
        Just("```\n".to_owned()),
        Just("    code\n".to_owned()),
        Just("- item\n".to_owned()),
        Just("1. item\n".to_owned()),
        Just("> quote\n".to_owned()),
        Just("*emph* **strong** `code` [link](x)\n".to_owned()),
        Just("|a|b|\n|-|-|\n".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("é".to_owned()),
        "\\PC{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

/// A PID as a user might type it: surrounding blanks, a sign, leading zeros.
fn typed_number() -> impl Strategy<Value = (i128, String)> {
    let value = prop_oneof![
        any::<i64>().prop_map(i128::from),
        (-2i128..=70_000),
        (4_194_290i128..=4_194_310),
        // This machine's boundary, whatever its pid_max (it is per PID namespace).
        (pid_max() - 2..=pid_max() + 2),
        Just(i128::from(i32::MAX)),
        Just(i128::from(i32::MAX) + 1),
        Just(i128::from(i32::MIN)),
    ];
    (
        value,
        "[ \t\n]{0,2}",
        any::<bool>(),
        0usize..3,
        "[ \t\n]{0,2}",
    )
        .prop_map(|(value, before, plus, zeros, after)| {
            let sign = if value < 0 {
                "-"
            } else if plus {
                "+"
            } else {
                ""
            };
            let zeros = "0".repeat(zeros);
            let text = format!("{before}{sign}{zeros}{}{after}", value.unsigned_abs());
            (value, text)
        })
}

/// JSON lines a little like the control protocol's, and not.
fn control_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"\"type\":".to_vec()),
        Just(b"\"Hello\"".to_vec()),
        Just(b"\"Done\"".to_vec()),
        Just(b"\"Failed\"".to_vec()),
        Just(b"\"Step\"".to_vec()),
        Just(b"\"Exit\"".to_vec()),
        Just(b"\"step\":\"fork\"".to_vec()),
        Just(b"\"ids\":{\"pid\":1,\"ppid\":0,\"pgid\":1,\"sid\":1}".to_vec()),
        Just(b"\"errno\":null".to_vec()),
        Just(b"\"message\":\"x\"".to_vec()),
        Just(b"\"mask\":255".to_vec()),
        Just(b"\"mask\":256".to_vec()),
        Just(b"1e999".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"\\ud800\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![0xff]),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

// ---------------------------------------------------------------------------------------
// The checks, shared by the short runs and the long ones.

fn check_parse_stat(bytes: &[u8]) {
    let _ = parse_stat(1, bytes);
}

fn check_tty_name(tty_nr: i32) -> Result<(), TestCaseError> {
    let name = tty_name(tty_nr);
    prop_assert_eq!(name.is_none(), tty_nr == 0);
    if let Some(name) = name {
        prop_assert!(!name.is_empty());
    }
    Ok(())
}

fn check_mask_names(mask: u64) -> Result<(), TestCaseError> {
    let names = mask_names(mask);
    prop_assert_eq!(names.len(), mask.count_ones() as usize);
    prop_assert!(names.iter().all(|n| n.starts_with("SIG")), "{:?}", names);
    Ok(())
}

fn check_proc_locks(text: &str) -> Result<(), TestCaseError> {
    let entries = proc_locks::parse(text);
    prop_assert!(entries.len() <= text.lines().count());
    Ok(())
}

fn check_lessons(text: &str) {
    let _ = Lesson::parse("fuzz.md", text);
    let _ = LessonSet::from_sources(&[("a.md", text), ("b.md", text)]);
}

fn check_parse_pid(text: &str, pid_max: i128) -> Result<(), TestCaseError> {
    // The contract: the positive whole numbers below pid_max (the kernel hands out
    // 1 .. pid_max − 1; pid_max itself is never a PID), blanks around allowed.
    let expected = text
        .trim()
        .parse::<i128>()
        .ok()
        .filter(|v| (1..pid_max).contains(v));
    match parse_pid(text) {
        Ok(pid) => prop_assert_eq!(Some(i128::from(pid)), expected, "{:?}", text),
        Err(_) => prop_assert_eq!(expected, None, "{:?}", text),
    }
    Ok(())
}

fn check_receive(bytes: &[u8]) {
    // Every message in the stream, for both directions, until end of file or an error.
    let mut input: &[u8] = bytes;
    while let Ok(Some(_)) = receive::<Reply>(&mut input) {}
    let mut input: &[u8] = bytes;
    while let Ok(Some(_)) = receive::<Request>(&mut input) {}
    // A stream that ends in the middle of a line still returns.
    let mut reader = std::io::BufReader::with_capacity(7, bytes);
    let _ = reader.fill_buf();
    let _ = receive::<Reply>(&mut reader);
}

// ---------------------------------------------------------------------------------------
// Short runs: part of every `cargo test`.

proptest! {
    #[test]
    fn parse_stat_never_panics_on_arbitrary_bytes(bytes in bytes()) {
        check_parse_stat(&bytes);
    }

    #[test]
    fn parse_stat_never_panics_on_stat_like_bytes(bytes in stat_like()) {
        check_parse_stat(&bytes);
    }

    #[test]
    fn parse_stat_reads_back_what_the_kernel_prints(
        pid in any::<i32>(),
        comm in any::<String>(),
        state in proptest::char::range('A', 'z').prop_filter("a letter", char::is_ascii_alphabetic),
        ids in any::<[i32; 5]>(),
    ) {
        let [ppid, pgid, sid, tty_nr, tpgid] = ids;
        let line = format!("{pid} ({comm}) {state} {ppid} {pgid} {sid} {tty_nr} {tpgid} 0 0 0\n");
        let stat = parse_stat(pid, line.as_bytes()).expect("a well-formed stat line");
        prop_assert_eq!(stat.pid, pid);
        prop_assert_eq!(&stat.comm, &comm);
        prop_assert_eq!(stat.state, state);
        prop_assert_eq!((stat.ppid, stat.pgid, stat.sid, stat.tty_nr, stat.tpgid), (ppid, pgid, sid, tty_nr, tpgid));
    }

    #[test]
    fn tty_name_is_none_exactly_without_a_terminal(tty_nr in any::<i32>()) {
        check_tty_name(tty_nr)?;
    }

    #[test]
    fn mask_names_names_every_set_bit(mask in any::<u64>()) {
        check_mask_names(mask)?;
    }

    #[test]
    fn format_umask_is_octal(mask in any::<u32>()) {
        let text = format_umask(mask);
        prop_assert!(text.len() >= 4);
        prop_assert_eq!(u32::from_str_radix(&text, 8).ok(), Some(mask));
    }

    #[test]
    fn proc_locks_never_panics_on_token_lines(text in lock_lines()) {
        check_proc_locks(&text)?;
    }

    #[test]
    fn proc_locks_reads_back_its_own_display(entries in proptest::collection::vec(lock_entry(), 0..6)) {
        let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
        prop_assert_eq!(proc_locks::parse(&text), entries);
    }

    #[test]
    fn lessons_never_panic_on_arbitrary_text(text in "\\PC*") {
        check_lessons(&text);
    }

    #[test]
    fn lessons_never_panic_on_lesson_like_text(text in lesson_like()) {
        check_lessons(&text);
    }

    #[test]
    fn parse_pid_accepts_exactly_positive_pids_on_arbitrary_text(text in any::<String>()) {
        check_parse_pid(&text, pid_max())?;
    }

    #[test]
    fn parse_pid_accepts_exactly_positive_pids_below_pid_max((value, text) in typed_number()) {
        let max = pid_max();
        check_parse_pid(&text, max)?;
        prop_assert_eq!(parse_pid(&text).is_ok(), (1..max).contains(&value), "{:?}", text);
    }

    #[test]
    fn receive_never_panics_on_arbitrary_bytes(bytes in bytes()) {
        check_receive(&bytes);
    }

    #[test]
    fn receive_never_panics_on_control_like_bytes(bytes in control_like()) {
        check_receive(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// Long runs: a million inputs per parser, on request.

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_parse_stat(bytes in prop_oneof![bytes(), stat_like()]) {
        check_parse_stat(&bytes);
    }

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_tty_name(tty_nr in any::<i32>()) {
        check_tty_name(tty_nr)?;
    }

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_mask_names(mask in any::<u64>()) {
        check_mask_names(mask)?;
    }

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_proc_locks(text in prop_oneof![lock_lines(), "\\PC*".boxed()]) {
        check_proc_locks(&text)?;
    }

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_lessons(text in prop_oneof![lesson_like(), "\\PC*".boxed()]) {
        check_lessons(&text);
    }

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_parse_pid(text in prop_oneof![any::<String>(), typed_number().prop_map(|(_, t)| t)]) {
        check_parse_pid(&text, pid_max())?;
    }

    #[test]
    #[ignore = "fuzz: 1M inputs"]
    fn fuzz_receive(bytes in prop_oneof![bytes(), control_like()]) {
        check_receive(&bytes);
    }
}
