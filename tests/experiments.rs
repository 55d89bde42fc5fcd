//! "What if you skip this rule?": each experiment on fresh labs, with the kernel's
//! evidence asserted, and nothing left behind.

mod common;

use daemonlab::lab::LabOptions;
use daemonlab::lab::experiments::{self, Experiment, ExperimentReport};

use common::{become_subreaper, exe};

/// Run one experiment on labs that make this test process the subreaper, and return its
/// report with every PID it mentions checked gone afterwards.
fn run(experiment: Experiment) -> ExperimentReport {
    become_subreaper();
    let options = LabOptions {
        subreaper: true,
        ..LabOptions::with_exe(exe())
    };
    let report = experiments::run(experiment, &options)
        .unwrap_or_else(|e| panic!("{}: {e}", experiment.name()));
    for line in &report.evidence {
        eprintln!("{}: {line}", experiment.name());
    }
    common::assert_all_gone(&pids_in(&report));
    report
}

/// Every "pid N", "daemon N", "helper N", "member N" the evidence names.
fn pids_in(report: &ExperimentReport) -> Vec<i32> {
    let mut pids = Vec::new();
    for line in &report.evidence {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            if matches!(
                pair[0],
                "pid" | "daemon" | "helper" | "member" | "grandchild" | "leader" | "job"
            ) && let Ok(pid) = pair[1].trim_end_matches([':', ',', ';']).parse::<i32>()
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The evidence line that contains every one of `words`.
fn line<'a>(report: &'a ExperimentReport, words: &[&str]) -> &'a str {
    report
        .evidence
        .iter()
        .find(|l| words.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no evidence line with {words:?} in {:#?}", report.evidence))
}

#[test]
fn no_setsid_the_hangup_reaches_the_job_only_while_the_shell_still_tracks_it() {
    let report = run(Experiment::NoSetsid);
    assert!(report.observed, "{:#?}", report.evidence);
    let case = |name: &str| {
        report
            .cases
            .iter()
            .find(|c| c.case == name)
            .unwrap_or_else(|| panic!("no {name} case in {:#?}", report.cases))
    };
    // Still the job: the stand-in signalled its group, and it died of it.
    assert_eq!(case("job").outcome, "killed");
    assert_eq!(case("job").signal.as_deref(), Some("SIGHUP"));
    assert!(
        line(
            &report,
            &["job:", "still in its table", "SIGHUP and SIGCONT to group"]
        )
        .contains("129")
    );
    // Forked away: reaped and forgotten, so not signalled; alive without a terminal, its
    // descriptors on the dead terminal read EOF and fail writes with EIO.
    assert_eq!(case("forked").outcome, "alive");
    assert_eq!(case("forked").tty_after, None);
    line(
        &report,
        &["forked:", "had ended and been reaped", "signalled no one"],
    );
    let forked = &case("forked").evidence;
    assert!(forked.contains("orphaned group"), "{forked}");
    assert!(
        forked.contains("read(0): EOF") && forked.contains("write(1): EIO"),
        "{forked}"
    );
    assert_eq!(case("setsid").outcome, "alive");
}

#[test]
fn no_second_fork_a_session_leader_reacquires_a_terminal() {
    let report = run(Experiment::NoSecondFork);
    assert!(report.observed, "{:#?}", report.evidence);
    assert!(line(&report, &["it is now our controlling terminal"]).contains("O_RDWR"));
    assert!(line(&report, &["did not become our controlling terminal"]).contains("O_RDWR"));
}

#[test]
fn sighup_not_ignored_kills_the_grandchild_and_orphaned_groups_get_hup_and_cont() {
    let report = run(Experiment::SighupNotIgnored);
    assert!(report.observed, "{:#?}", report.evidence);
    assert!(line(&report, &["SIGHUP default", "grandchild"]).contains("killed by SIGHUP"));
    assert!(line(&report, &["SIGHUP ignored", "grandchild lives"]).contains("tty none"));
    assert!(line(&report, &["forked member"]).contains("state T"));
    let orphan = line(&report, &["handlers (each blocking the other) ran"]);
    assert!(orphan.contains("ran: SIGHUP then SIGCONT"), "{orphan}");
}

#[test]
fn no_chdir_keeps_a_mount_busy() {
    let report = run(Experiment::NoChdir);
    if report
        .evidence
        .iter()
        .any(|l| l.contains("could not mount"))
    {
        eprintln!("SKIPPED: mounting a tmpfs is not permitted here; cwd evidence only");
        assert!(line(&report, &["without chdir", "/cwd ->"]).contains("/mnt"));
        return;
    }
    assert!(report.observed, "{:#?}", report.evidence);
    assert!(line(&report, &["umount", "EBUSY"]).contains("busy"));
    assert!(line(&report, &["after chdir"]).ends_with("-> /"));
    assert!(line(&report, &["umount", "succeeded"]).contains("mnt"));
}

#[test]
fn no_close_fds_leaves_the_inherited_descriptor_open() {
    let report = run(Experiment::NoCloseFds);
    assert!(report.observed, "{:#?}", report.evidence);
    assert!(line(&report, &["step 8 skipped"]).contains("inherited.txt"));
    assert!(!line(&report, &["after step 8"]).contains("inherited.txt"));
}

#[test]
fn no_dev_null_a_stray_print_lands_in_a_data_file() {
    let report = run(Experiment::NoDevNull);
    assert!(report.observed, "{:#?}", report.evidence);
    assert!(line(&report, &["data.db"]).ends_with("= fd 0"));
    assert!(line(&report, &["records.txt", "step 9 skipped"]).ends_with("= fd 1"));
    assert!(line(&report, &["reads", "back"]).contains("a stray printf from the daemon"));
    assert!(line(&report, &["with step 9", "file holds"]).ends_with("\"\""));
}

#[test]
fn no_umask_the_inherited_mask_strips_mode_bits() {
    let report = run(Experiment::NoUmask);
    if line(&report, &["inherited umask"]).contains("0000") {
        eprintln!("SKIPPED: this test runs with umask 0000, so there is nothing to strip");
        return;
    }
    assert!(report.observed, "{:#?}", report.evidence);
    let after = line(&report, &["after umask(0)"]);
    assert!(
        after.contains("stat mode 0666") && after.contains("stat mode 0777"),
        "{after}"
    );
    assert!(!line(&report, &["without umask(0)"]).contains("stat mode 0666"));
}

#[test]
fn sighup_reread_is_logged_in_both_styles() {
    let report = run(Experiment::SighupReread);
    assert!(report.observed, "{:#?}", report.evidence);
    for style in ["sigwait thread", "handlers"] {
        assert!(line(&report, &[style, "syslog got"]).contains("greeting=bonjour"));
        assert!(line(&report, &[style, "after SIGTERM"]).contains("the daemon exited"));
    }
    assert!(
        line(&report, &["sigwait thread", "/status"]).contains("blocked [\"SIGHUP\", \"SIGTERM\"]")
    );
    assert!(line(&report, &["handlers", "/status"]).contains("SIGHUP Caught"));
}

#[test]
fn close_on_exec_keeps_descriptors_out_of_helpers() {
    let report = run(Experiment::CloseOnExec);
    if report.evidence.iter().any(|l| l.starts_with("SKIPPED")) {
        eprintln!("SKIPPED: no sleep program to exec");
        return;
    }
    assert!(report.observed, "{:#?}", report.evidence);
    let without = line(&report, &["without FD_CLOEXEC", "/fd:"]);
    let with = line(&report, &["with FD_CLOEXEC", "/fd:"]);
    assert!(
        without.contains("daemon.pid") && without.contains("socket:"),
        "{without}"
    );
    assert!(
        !with.contains("daemon.pid") && !with.contains("socket:"),
        "{with}"
    );
}

#[test]
fn every_experiment_has_a_kebab_name_and_a_title() {
    for experiment in Experiment::ALL {
        assert_eq!(
            serde_json::to_string(&experiment).unwrap(),
            format!("\"{}\"", experiment.name())
        );
        assert!(!experiment.title().is_empty());
    }
}

#[test]
fn chroot_before_syslog_loses_a_lazy_client_but_not_an_open_socket() {
    let report = run(Experiment::ChrootSyslog);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED chroot-syslog's evidence: chroot(2) needs root");
        assert!(line(&report, &["was refused", "CAP_SYS_CHROOT"]).contains("chroot"));
        return;
    }
    assert!(report.observed, "{:#?}", report.evidence);
    assert!(line(&report, &["without LOG_NDELAY", "receiver got"]).contains("got 0 message"));
    assert!(
        line(&report, &["LOG_NDELAY) before chroot", "receiver got"]).contains("got 1 message")
    );
    assert!(line(&report, &["without LOG_NDELAY", "/root ->"]).contains("jail"));
}

#[test]
fn getlogin_after_daemonizing_answers_only_from_the_login_uid() {
    let report = run(Experiment::Getlogin);
    assert!(report.observed, "{:#?}", report.evidence);
    let uid = std::fs::read_to_string("/proc/self/loginuid").unwrap_or_default();
    let after = line(&report, &["fd 0 -> /dev/null", "getlogin()"]);
    if uid.trim() == "4294967295" {
        assert!(after.contains("NULL"), "{after}");
    } else {
        assert!(after.contains("returned \""), "{after}");
    }
}
