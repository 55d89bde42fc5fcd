//! What changed between two snapshots: the heart of "watch the kernel's view after each step".

use super::ProcSnapshot;

impl ProcSnapshot {
    /// Names of the fields that differ from `before`, as serialized, in declaration order.
    ///
    /// Exists so the UI can highlight, and the reports can list, exactly what a
    /// daemonization step changed (e.g. `setsid()` -> "sid", "tty", "tpgid",
    /// "session_leader", "group_leader"). Derived fields are folded into the field they
    /// follow: `tty_nr` into "tty", `state_name` into "state", `parent_comm` into "ppid".
    pub fn changed_fields(&self, before: &ProcSnapshot) -> Vec<&'static str> {
        // Destructure so that adding a field to ProcSnapshot fails to compile here until
        // someone decides how it is diffed.
        let ProcSnapshot {
            pid,
            ppid,
            pgid,
            sid,
            tty,
            tty_nr,
            tpgid,
            state,
            state_name,
            comm,
            umask,
            cwd,
            root,
            fds,
            sighup,
            signals,
            session_leader,
            group_leader,
            parent_comm,
            adopted_by,
        } = self;
        let checks = [
            ("pid", *pid != before.pid),
            (
                "ppid",
                *ppid != before.ppid || *parent_comm != before.parent_comm,
            ),
            ("pgid", *pgid != before.pgid),
            ("sid", *sid != before.sid),
            ("tty", *tty != before.tty || *tty_nr != before.tty_nr),
            ("tpgid", *tpgid != before.tpgid),
            (
                "state",
                *state != before.state || *state_name != before.state_name,
            ),
            ("comm", *comm != before.comm),
            ("umask", *umask != before.umask),
            ("cwd", *cwd != before.cwd),
            ("root", *root != before.root),
            ("fds", *fds != before.fds),
            ("sighup", *sighup != before.sighup),
            ("signals", *signals != before.signals),
            ("session_leader", *session_leader != before.session_leader),
            ("group_leader", *group_leader != before.group_leader),
            ("adopted_by", *adopted_by != before.adopted_by),
        ];
        checks
            .into_iter()
            .filter_map(|(name, changed)| changed.then_some(name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Adopter, Disposition, FdEntry, SignalSets};
    use super::*;

    /// A process as it looks right after `./a.out` at a shell prompt.
    fn job_in_terminal() -> ProcSnapshot {
        ProcSnapshot {
            pid: 200,
            ppid: 100,
            pgid: 200,
            sid: 100,
            tty: Some("pts/3".into()),
            tty_nr: 34819,
            tpgid: 200,
            state: 'S',
            state_name: "sleeping",
            comm: "subject".into(),
            umask: Some(0o022),
            cwd: Some("/home/me".into()),
            root: Some("/".into()),
            fds: Some(vec![
                FdEntry {
                    fd: 0,
                    target: "/dev/pts/3".into(),
                    cloexec: false,
                    lock_lines: None,
                },
                FdEntry {
                    fd: 9,
                    target: "socket:[1234]".into(),
                    cloexec: false,
                    lock_lines: None,
                },
            ]),
            sighup: Disposition::Default,
            signals: SignalSets::default(),
            session_leader: false,
            group_leader: true,
            parent_comm: Some("__session".into()),
            adopted_by: None,
        }
    }

    #[test]
    fn identical_snapshots_have_no_changes() {
        let a = job_in_terminal();
        assert_eq!(a.changed_fields(&a.clone()), Vec::<&str>::new());
    }

    #[test]
    fn fork_then_setsid() {
        let before = job_in_terminal();
        let mut after = before.clone();
        after.pid = 201;
        after.ppid = 1;
        after.parent_comm = Some("systemd".into());
        after.adopted_by = Some(Adopter {
            pid: 1,
            comm: "systemd".into(),
        });
        after.pgid = 201;
        after.sid = 201;
        after.tty = None;
        after.tty_nr = 0;
        after.tpgid = -1;
        after.session_leader = true;
        assert_eq!(
            after.changed_fields(&before),
            [
                "pid",
                "ppid",
                "pgid",
                "sid",
                "tty",
                "tpgid",
                "session_leader",
                "adopted_by"
            ]
        );
    }

    #[test]
    fn umask_chdir_close_and_ignore_sighup() {
        let before = job_in_terminal();
        let mut after = before.clone();
        after.umask = Some(0);
        after.cwd = Some("/".into());
        after.fds.as_mut().unwrap().remove(0);
        after.sighup = Disposition::Ignored;
        after.signals.ignored.push("SIGHUP".into());
        assert_eq!(
            after.changed_fields(&before),
            ["umask", "cwd", "fds", "sighup", "signals"]
        );
    }

    #[test]
    fn derived_fields_report_under_their_source() {
        let before = job_in_terminal();

        let mut renamed_parent = before.clone();
        renamed_parent.parent_comm = Some("bash".into());
        assert_eq!(renamed_parent.changed_fields(&before), ["ppid"]);

        let mut other_tty = before.clone();
        other_tty.tty_nr += 1;
        assert_eq!(other_tty.changed_fields(&before), ["tty"]);

        let mut zombie = before.clone();
        zombie.state = 'Z';
        zombie.state_name = "zombie";
        assert_eq!(zombie.changed_fields(&before), ["state"]);
    }

    #[test]
    fn cloexec_flip_counts_as_an_fd_change() {
        let before = job_in_terminal();
        let mut after = before.clone();
        after.fds.as_mut().unwrap()[1].cloexec = true;
        assert_eq!(after.changed_fields(&before), ["fds"]);
    }
}
