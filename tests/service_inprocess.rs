//! The service manager run inside a process that has children of its own, as the
//! explorer (`run --service`) does: it must leave them alone. A test binary of its own,
//! since the manager counts every later child of its process as the service's.

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// In the explorer (`run --service`) the manager shares its process with children that
/// are not the service's: it must never reap those (their owner's wait would get ECHILD,
/// and a later kill could reach a reused PID).
#[test]
fn the_manager_leaves_other_children_of_its_process_alone() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_daemonlab"));
    // A child of this process that exits at once and is left unreaped meanwhile.
    let mut other = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let options = daemonlab::service::ServiceOptions {
        exe: exe.clone(),
        program: exe.display().to_string(),
        args: vec!["newstyle".into()],
        kind: daemonlab::service::ServiceType::Notify,
        listen: vec![],
        timeout: Duration::from_secs(10),
        watchdog: None,
        pidfile: None,
        stop_timeout: Duration::from_secs(5),
    };
    let (control, inbox) = mpsc::channel();
    let mut states = Vec::new();
    let outcome = daemonlab::service::run(&options, inbox, |event| {
        if let daemonlab::service::Event::State { state, .. } = event {
            states.push(*state);
            if *state == daemonlab::service::State::Active {
                let _ = control.send(daemonlab::service::Control::Stop);
            }
        }
    })
    .unwrap();
    assert_eq!(
        outcome.state,
        daemonlab::service::State::Inactive,
        "{states:?}"
    );
    // Still ours to reap, with its own status.
    assert_eq!(other.wait().unwrap().code(), Some(7));
}
