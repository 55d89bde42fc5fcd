//! Sleeping processes that crowd the process table while a bench measures, shared by
//! benches/ps.rs and benches/processes_tab.rs.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The extra processes; killed and reaped on drop, so also when a benchmark panics.
pub struct Crowd {
    pub children: Vec<Child>,
}

impl Crowd {
    pub fn spawn(n: usize) -> Self {
        let mut crowd = Crowd {
            children: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let mut command = Command::new("sleep");
            command
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it
            // makes the kernel kill the sleeper if this benchmark dies without unwinding
            // (SIGKILL, Ctrl-C), which Drop cannot cover.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            // On failure `crowd` is dropped here, so the sleepers already started go too.
            crowd
                .children
                .push(command.spawn().expect("spawn a sleep for the crowd"));
        }
        crowd
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}
