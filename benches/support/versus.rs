//! The syslog bench's same-run comparison: one flood of datagrams from one blocking sender
//! to rsyslogd (imuxsock -> omfile), to `daemonlab syslogd` (stdout to a file), and to the
//! lab's receiver in this process. Every process started here is our own child, ended by
//! its PID on every path (drop included) and killed by the kernel if this bench dies.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemonlab::syslog::receiver::{Receiver, ReceiverOptions};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// The words of the last datagram: once a file ends with them, the whole flood is in.
const END: &str = "flood-end";
/// How long any one run may take before it is called a failure.
const PATIENCE: Duration = Duration::from_secs(60);
const ROUNDS: usize = 3;

/// Flood each contestant `count` times over `ROUNDS` rounds (interleaved, so that a busy
/// neighbour on this machine hurts all of them alike) and print the medians and ratios.
pub fn compare(count: u64) {
    println!(
        "syslog versus rsyslogd: {count} datagrams of ~50 bytes from one blocking sender, \
         median of {ROUNDS} rounds"
    );
    let exe = std::env::var_os("DAEMONLAB_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_daemonlab")));
    let rsyslog = Path::new(RSYSLOGD).exists();
    if !rsyslog {
        println!("  SKIPPED the rsyslogd runs: rsyslogd not installed ({RSYSLOGD} is absent)");
    }
    let mut rates: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        if rsyslog {
            match run_rsyslogd(count) {
                Ok(rate) => rates[0].push(rate),
                Err(e) => println!("  rsyslogd run failed: {e}"),
            }
        }
        match run_syslogd(&exe, count) {
            Ok(rate) => rates[1].push(rate),
            Err(e) => println!("  daemonlab syslogd run failed: {e}"),
        }
        match run_receiver(count) {
            Ok(rate) => rates[2].push(rate),
            Err(e) => println!("  in-process receiver run failed: {e}"),
        }
    }
    let [rsyslog, syslogd, receiver] = rates.map(|mut r| median(&mut r));
    let show = |name: &str, rate: Option<f64>| match rate {
        Some(rate) => println!("  {name:<44} {:>9.0} datagrams/s", rate),
        None => println!("  {name:<44} no successful run"),
    };
    show("rsyslogd (imuxsock -> omfile)", rsyslog);
    show("daemonlab syslogd (stdout -> file)", syslogd);
    show("lab receiver in this process (ring)", receiver);
    if let Some(anchor) = rsyslog {
        for (name, rate) in [("daemonlab syslogd", syslogd), ("lab receiver", receiver)] {
            if let Some(rate) = rate {
                println!(
                    "  ratio {name} / rsyslogd: {:.2}x (target >= 1.50x)",
                    rate / anchor
                );
            }
        }
    }
}

fn median(rates: &mut [f64]) -> Option<f64> {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied()
}

/// rsyslogd in the foreground with only our socket and our file: no /dev/log, no pid
/// file of the system's, no rate limit.
fn run_rsyslogd(count: u64) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let socket = dir.path().join("log");
    let out = dir.path().join("out.log");
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{socket}\" RateLimit.Interval=\"0\")\n\
             action(type=\"omfile\" file=\"{out}\")\n",
            dir = dir.path().display(),
            socket = socket.display(),
            out = out.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut command = Command::new(RSYSLOGD);
    command
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    let mut daemon = Daemon::start("rsyslogd", command, dir.path())?;
    let rate = flood_into(&mut daemon, &socket, &out, count)?;
    daemon.stop();
    Ok(rate)
}

/// `daemonlab syslogd`, printing text lines to a file as rsyslogd's omfile does.
fn run_syslogd(exe: &Path, count: u64) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let socket = dir.path().join("log");
    let mut command = Command::new(exe);
    command.arg("syslogd").arg("--socket").arg(&socket);
    let mut daemon = Daemon::start("daemonlab syslogd", command, dir.path())?;
    let out = daemon.stdout.clone();
    let rate = flood_into(&mut daemon, &socket, &out, count)?;
    let said = daemon.stop();
    // Its summary is its own account of every datagram.
    if let Some(summary) = said.lines().rev().find(|l| l.contains("received")) {
        println!("    daemonlab syslogd says: {}", summary.trim());
    }
    Ok(rate)
}

/// The lab's receiver in this process, as the explorer runs it: done when it has counted
/// every datagram.
fn run_receiver(count: u64) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let receiver = Receiver::with_options(&dir.path().join("log"), ReceiverOptions::default())
        .map_err(|e| e.to_string())?;
    let client = connect(receiver.path(), None)?;
    let started = Instant::now();
    send_flood(&client, count)?;
    let total = count + 1;
    let got = receiver.wait_received(total, PATIENCE);
    let elapsed = started.elapsed();
    let c = receiver.counters();
    if got < total {
        return Err(format!("counted {got} of {total}: {c:?}"));
    }
    if c.received != c.folded + c.evicted + receiver.messages().len() as u64 {
        return Err(format!("counters do not balance: {c:?}"));
    }
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Send the flood and wait until `out` ends with the last datagram; check that every
/// datagram is in the file, once.
fn flood_into(daemon: &mut Daemon, socket: &Path, out: &Path, count: u64) -> Result<f64, String> {
    let client = connect(socket, Some(&mut *daemon))?;
    let started = Instant::now();
    send_flood(&client, count)?;
    let deadline = started + PATIENCE;
    while !ends_with_end(out) {
        if Instant::now() > deadline {
            return Err(format!(
                "{}: the last datagram never reached {}",
                daemon.name,
                out.display()
            ));
        }
        daemon.check()?;
        std::thread::sleep(Duration::from_micros(500));
    }
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(out).map_err(|e| e.to_string())?;
    let lines = text.lines().filter(|l| l.contains("flood[")).count() as u64;
    if lines != count + 1 {
        return Err(format!(
            "{}: {lines} of {} datagrams in {}",
            daemon.name,
            count + 1,
            out.display()
        ));
    }
    Ok((count + 1) as f64 / elapsed.as_secs_f64())
}

/// Connect to `socket`, waiting (up to 10 s) for the daemon to bind it.
fn connect(socket: &Path, mut daemon: Option<&mut Daemon>) -> Result<UnixDatagram, String> {
    let client = UnixDatagram::unbound().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.connect(socket) {
            Ok(()) => return Ok(client),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("cannot connect to {}: {e}", socket.display()));
            }
            Err(_) => {
                if let Some(daemon) = daemon.as_deref_mut() {
                    daemon.check()?;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// `count` distinct glibc-style datagrams (so that none is folded), then the end marker;
/// blocking sends, so the kernel refuses none.
fn send_flood(client: &UnixDatagram, count: u64) -> Result<(), String> {
    let mut line = Vec::with_capacity(96);
    for i in 0..=count {
        line.clear();
        if i < count {
            write!(
                line,
                "<30>Dec  2 13:00:00 flood[4242]: datagram {i:07} of the flood"
            )
        } else {
            write!(line, "<30>Dec  2 13:00:00 flood[4242]: {END}")
        }
        .map_err(|e| e.to_string())?;
        client.send(&line).map_err(|e| format!("send {i}: {e}"))?;
    }
    Ok(())
}

/// Whether the file's last line carries the end marker (reads only its tail).
fn ends_with_end(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut tail = [0u8; 128];
    let from = len.saturating_sub(tail.len() as u64);
    let Ok(n) = file.read_at(&mut tail, from) else {
        return false;
    };
    let tail = String::from_utf8_lossy(&tail[..n]);
    tail.trim_end().ends_with(END)
}

/// A daemon this bench started: its stdout and stderr go to files in its directory.
struct Daemon {
    name: &'static str,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, mut command: Command, dir: &Path) -> Result<Daemon, String> {
        let stdout_path = dir.join("stdout.txt");
        let stdout = File::create(&stdout_path).map_err(|e| e.to_string())?;
        let stderr_path = dir.join("stderr.txt");
        let stderr = File::create(&stderr_path).map_err(|e| e.to_string())?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's. If this
        // bench dies, the kernel kills the daemon too.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Daemon {
            name,
            child: Some(child),
            stdout: stdout_path,
            stderr: stderr_path,
        })
    }

    /// An error if the daemon has already exited (with what it said).
    fn check(&mut self) -> Result<(), String> {
        let gone = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => return Ok(()),
            Some(Ok(Some(status))) => status.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "stopped".into(),
        };
        Err(format!(
            "{} exited early ({gone}): {}",
            self.name,
            std::fs::read_to_string(&self.stderr)
                .unwrap_or_default()
                .trim()
        ))
    }

    /// SIGTERM (it is our unreaped child, so the PID is surely its), up to 5 s to leave,
    /// then SIGKILL; reaped either way. Returns what it wrote on stderr.
    fn stop(mut self) -> String {
        self.end();
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn end(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(None) = child.try_wait() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.end();
    }
}
