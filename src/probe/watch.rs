//! One process followed from snapshot to snapshot, its /proc files kept open.
//!
//! Most of what a snapshot costs is not the reading but the opening: every open below
//! /proc/PID looks its name up anew, and for a descriptor's fdinfo file that lookup is
//! several times the read. A file of /proc that stays open is formatted afresh by the
//! kernel each time it is read from its start (these are seq_files), so the lab, which
//! takes a snapshot of the same subject after every step, and `trace` keep them open
//! and read them again. What it shows is as current as a fresh open: an fdinfo file
//! looks its descriptor up by number at every read, and says ENOENT once that number is
//! closed.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::read::{
    LinkBuf, NumberName, ProcDir, Scratch, open_listable, open_read, relist_numbers,
};
use super::{
    FdEntry, Pid, ProbeError, ProcSnapshot, ProcStat, assemble, comm_path, comm_text, fds,
    link_text, parse_stat, snapshot, status,
};

/// At most this many fdinfo files are kept open: a lab subject has a handful of
/// descriptors. A larger table is read the one-off way, shared among the cores.
const KEPT_INFOS: usize = 64;

/// A process whose /proc files stay open between snapshots.
///
/// Exists for the lab, which shows its subject after every step, and for `trace`, which
/// looks at a traced process at every event of a rule: [`Watch::snapshot`] gives what
/// [`snapshot`] gives, at about half the syscalls (`cargo bench --bench probe`,
/// snapshot_watched against snapshot_child). The files pin the process as the
/// directory fd does: once it is gone, reads fail with ESRCH rather than show whoever
/// has its PID next.
pub struct Watch {
    dir: ProcDir,
    stat: File,
    status: File,
    /// The fd directory, listed again from its start each time; `None` while refused.
    fd_dir: Option<OwnedFd>,
    /// Open fdinfo files by descriptor number, sorted.
    infos: Vec<(i32, File)>,
    /// The parent's comm file, and which PID it belongs to.
    parent: Option<(Pid, File)>,
    scratch: Scratch,
    link: LinkBuf,
    listed: Vec<i32>,
}

impl Watch {
    /// Open `pid`'s stat and status, and its fd directory when readable.
    pub fn open(pid: Pid) -> Result<Watch, ProbeError> {
        let dir = ProcDir::open(pid)?;
        let stat = dir.open_file(c"stat")?;
        let status = dir.open_file(c"status")?;
        Ok(Watch {
            fd_dir: open_fd_dir(&dir),
            dir,
            stat,
            status,
            infos: Vec::new(),
            parent: None,
            scratch: Scratch::new(),
            link: LinkBuf::new(),
            listed: Vec::new(),
        })
    }

    /// The PID followed.
    pub fn pid(&self) -> Pid {
        self.dir.pid
    }

    /// Its stat line alone: the cheap poll.
    pub fn stat(&mut self) -> Result<ProcStat, ProbeError> {
        let bytes = self.dir.reread(&self.stat, "stat", &mut self.scratch)?;
        parse_stat(self.dir.pid, bytes)
    }

    /// The process as the kernel has it now: the same fields, the same way degraded,
    /// as [`snapshot`].
    pub fn snapshot(&mut self, birth_parent: Option<Pid>) -> Result<ProcSnapshot, ProbeError> {
        if self.dir.own_fd().is_some() {
            // Our own table would show the kept files; the one-off way leaves its own out.
            return snapshot(self.dir.pid, birth_parent);
        }
        let stat = self.stat()?;
        let bytes = self.dir.reread(&self.status, "status", &mut self.scratch)?;
        let status = status::parse_status(self.dir.pid, bytes)?;
        let links = [link_text(&self.dir, b"cwd"), link_text(&self.dir, b"root")];
        let fds = self.fds(status.fd_size);
        let parent_comm = self.parent_comm(stat.ppid);
        Ok(assemble(
            stat,
            status,
            links,
            fds,
            parent_comm,
            birth_parent,
        ))
    }

    /// The descriptor table, sorted; `None` when it cannot be read.
    fn fds(&mut self, fd_size: Option<usize>) -> Option<Vec<FdEntry>> {
        if self.fd_dir.is_none() {
            self.fd_dir = open_fd_dir(&self.dir);
        }
        let fd_dir = self.fd_dir.as_ref()?;
        self.listed.clear();
        if relist_numbers(fd_dir.as_fd(), &mut self.listed).is_err() {
            self.fd_dir = None;
            return None;
        }
        if self.listed.len() > KEPT_INFOS {
            self.infos.clear();
            return fds::read_fds(&self.dir, fd_size);
        }
        self.listed.sort_unstable();
        let mut kept = std::mem::take(&mut self.infos).into_iter().peekable();
        let mut name = NumberName::new();
        let mut entries = Vec::with_capacity(self.listed.len());
        for &fd in &self.listed {
            // Files of numbers no longer listed are closed as they are passed.
            while kept.next_if(|(n, _)| *n < fd).is_some() {}
            let kept_info = kept.next_if(|(n, _)| *n == fd).map(|(_, file)| file);
            let target = match self.link.read(fd_dir.as_fd(), name.of(fd, b"")) {
                Ok(target) => String::from_utf8_lossy(target).into_owned(),
                // Closed since the listing: left out, as the one-off way does.
                Err(Errno::ENOENT) => continue,
                Err(_) => return None,
            };
            let info = match kept_info {
                Some(file) => file,
                None => match open_read(self.dir.as_fd(), name.path(b"fdinfo/", fd, b"")) {
                    Ok(file) => file,
                    Err(Errno::ENOENT) => continue,
                    Err(_) => return None,
                },
            };
            match self.scratch.reread(&info) {
                Ok(text) => entries.push(fds::entry(fd, target, text)),
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(_) => return None,
            }
            self.infos.push((fd, info));
        }
        Some(entries)
    }

    /// The command name of `ppid`, from its comm file kept open while it stays the parent.
    fn parent_comm(&mut self, ppid: Pid) -> Option<String> {
        if let Some((pid, file)) = &self.parent
            && *pid == ppid
            && let Ok(bytes) = self.scratch.reread(file)
        {
            return Some(comm_text(bytes));
        }
        // A new parent, or the old one gone (ESRCH): open it again by path.
        self.parent = None;
        let path = std::ffi::CString::new(comm_path(ppid)?).ok()?;
        let file = open_path(&path)?;
        let text = comm_text(self.scratch.reread(&file).ok()?);
        self.parent = Some((ppid, file));
        Some(text)
    }
}

/// The fd directory of `dir`, open for listing; `None` when refused or gone.
fn open_fd_dir(dir: &ProcDir) -> Option<OwnedFd> {
    open_listable(dir.as_fd(), c"fd").ok()
}

/// Open a file by absolute path, for reading again.
fn open_path(path: &CStr) -> Option<File> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ok()
        .map(File::from)
}
