//! The README is what a newcomer trusts first, so every command in its ```sh blocks is run
//! here, as written, through `sh -c`:
//! - `daemonlab` is this build's binary and `cargo run --release [-- ARGS]` runs it too;
//! - the explorer (a command that asks for a terminal) runs again in a pty and quits with q;
//! - a command whose comment says "until Ctrl-C" runs in the background while the rest of
//!   its block runs ("in another terminal"), then gets SIGINT;
//! - a comment saying "exit N" is the status it must end with (else 0);
//! - `/tmp/` is a private directory, `~` a private home, and the working directory holds a
//!   copy of `lessons/`;
//! - cargo's own commands (`cargo test`, `cargo bench`, …) and the screenshot script are not
//!   run from inside `cargo test`; CI runs those. A command that needs a missing optional
//!   tool says SKIPPED.
//!
//! It also checks the README opens as a newcomer needs: one sentence, a screenshot from
//! `assets/`, then the two commands.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pty::PtyApp;
use portable_pty::CommandBuilder;

/// Tools a README command may use that are not on every machine.
const OPTIONAL_TOOLS: [&str; 6] = ["logger", "lslocks", "jq", "man", "pgrep", "flock"];

/// Commands this test does not run, with why.
const NOT_RUN: [(&str, &str); 5] = [
    ("cargo test", "the test suite itself"),
    ("cargo bench", "benchmarks take minutes"),
    ("cargo build", "this test already runs a build"),
    ("cargo install", "would write to ~/.cargo/bin"),
    (
        "assets/make-screenshots.sh",
        "rewrites the committed assets",
    ),
];

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// One command line of a ```sh block: the command and its trailing `  # comment`.
#[derive(Debug, Clone)]
struct Line {
    command: String,
    comment: String,
}

fn sh_blocks(text: &str) -> Vec<Vec<Line>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<Line>> = None;
    for raw in text.lines() {
        let trimmed = raw.trim();
        match current.as_mut() {
            None if trimmed == "```sh" => current = Some(Vec::new()),
            None => {}
            Some(_) if trimmed == "```" => blocks.extend(current.take()),
            Some(lines) => {
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let (command, comment) = match trimmed.split_once("  #") {
                    Some((c, rest)) => (c.trim(), rest.trim()),
                    None => (trimmed, ""),
                };
                lines.push(Line {
                    command: command.to_string(),
                    comment: comment.to_string(),
                });
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in the README");
    blocks
}

/// The status a comment promises with "exit N", else 0.
fn expected_exit(comment: &str) -> i32 {
    comment
        .split("exit ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// A private world for the commands: bin/ (daemonlab and a cargo shim), home/, work/.
struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    path: String,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(common::exe(), bin.join("daemonlab")).unwrap();
        // `cargo run --release [-- ARGS]` is this build's binary with ARGS.
        let shim = bin.join("cargo");
        std::fs::write(
            &shim,
            "#!/bin/sh\n\
             if [ \"$1\" = run ] && [ \"$2\" = --release ]; then\n\
             \tshift 2; [ \"$1\" = -- ] && shift; exec daemonlab \"$@\"\n\
             fi\n\
             echo \"readme test: unexpected cargo $*\" >&2; exit 99\n",
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        for sub in ["home", "work", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let lessons = Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
        let copy = root.join("work/lessons");
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(lessons).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        World {
            _dir: dir,
            root,
            path,
        }
    }

    /// The command as this world runs it: /tmp/ is private; parents of `> ~/…` exist.
    fn prepare(&self, command: &str) -> String {
        let command = command.replace("/tmp/", &format!("{}/tmp/", self.root.display()));
        if let Some((_, target)) = command.split_once("> ~/") {
            let target = target.split_whitespace().next().unwrap_or_default();
            if let Some(parent) = Path::new(target).parent() {
                std::fs::create_dir_all(self.root.join("home").join(parent)).unwrap();
            }
        }
        command
    }

    fn sh(&self, command: &str) -> Command {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(command)
            .current_dir(self.root.join("work"))
            .env("PATH", &self.path)
            .env("HOME", self.root.join("home"))
            .env_remove("DAEMONLAB_THEME")
            .env_remove("DAEMONLAB_LESSONS")
            .stdin(Stdio::null());
        sh
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_all(pipe: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}

/// The first output of a background command on stdout or stderr, waiting up to `limit`;
/// both pipes are then drained on threads so it never blocks writing.
fn first_words(child: &mut Child, limit: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
    }
    drop(tx);
    rx.recv_timeout(limit).unwrap_or_default()
}

/// Run `command` (an explorer) in a 120×40 pty: wait for its first snapshot, press q.
fn run_in_pty(world: &World, command: &str) -> Result<(), String> {
    let mut builder = CommandBuilder::new("sh");
    builder.args(["-c", command]);
    builder.cwd(world.root.join("work"));
    builder.env("PATH", &world.path);
    builder.env("HOME", world.root.join("home"));
    builder.env("TERM", "xterm-256color");
    builder.env_remove("DAEMONLAB_THEME");
    builder.env_remove("DAEMONLAB_LESSONS");
    let mut app = PtyApp::spawn(builder, 40, 120);
    let screen = app.wait_until(Duration::from_secs(15), |text| {
        text.contains("subject ") && text.contains("PID ")
    });
    if screen.is_ok() {
        app.press(b"q");
    } else {
        let _ = app.child.kill();
    }
    let (code, _) = app.finish();
    match screen {
        Err(text) => Err(format!("the explorer never showed its subject:\n{text}")),
        Ok(_) if code != 0 => Err(format!("the explorer exited with {code}")),
        Ok(_) => Ok(()),
    }
}

/// Run one block; returns a failure description per command that did not do as promised.
fn run_block(world: &World, block: &[Line], ran: &mut Vec<String>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut background: Vec<(String, Child)> = Vec::new();
    for line in block {
        let shown = &line.command;
        if let Some((_, why)) = NOT_RUN.iter().find(|(p, _)| shown.starts_with(p)) {
            eprintln!("readme: not run here ({why}): {shown}");
            continue;
        }
        let words: Vec<&str> = shown
            .split(|c: char| c.is_whitespace() || "|;&()$".contains(c))
            .collect();
        if let Some(tool) = OPTIONAL_TOOLS
            .iter()
            .find(|tool| words.contains(tool) && !on_path(tool))
        {
            eprintln!("readme: SKIPPED (no {tool} on this machine): {shown}");
            continue;
        }
        let command = world.prepare(shown);
        ran.push(shown.clone());
        if line.comment.contains("until Ctrl-C") {
            let mut sh = world.sh(&command);
            sh.process_group(0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = sh.spawn().unwrap();
            // Ready once it has said something (a server announces itself), not after a
            // guessed delay: the next line of the block talks to it.
            let said = first_words(&mut child, Duration::from_secs(10));
            if let Some(status) = child.try_wait().unwrap() {
                failures.push(format!("`{shown}` ended at once ({status}): {said}"));
            } else if said.is_empty() {
                failures.push(format!("`{shown}` said nothing in 10 s"));
                background.push((shown.clone(), child));
            } else {
                background.push((shown.clone(), child));
            }
            continue;
        }
        let mut child = world
            .sh(&command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let out_reader = std::thread::spawn(move || read_all(stdout));
        let err_reader = std::thread::spawn(move || read_all(stderr));
        let Some(status) = wait_with_timeout(&mut child, Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            failures.push(format!("`{shown}` was still running after 60 s"));
            continue;
        };
        let out = out_reader.join().unwrap();
        let err = err_reader.join().unwrap();
        let want = expected_exit(&line.comment);
        if err.contains("the explorer needs a terminal") && want == 0 {
            match run_in_pty(world, &command) {
                Ok(()) => ran.push(format!("{shown}  (in a pty)")),
                Err(why) => failures.push(format!("`{shown}` in a pty: {why}")),
            }
            continue;
        }
        if status.code() != Some(want) {
            failures.push(format!(
                "`{shown}` exited {status}, the README promises {want}\nstdout: {}\nstderr: {err}",
                &out[..out.len().min(2000)]
            ));
        }
    }
    for (shown, child) in background {
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGINT);
        let mut child = child;
        match wait_with_timeout(&mut child, Duration::from_secs(5)) {
            Some(status) => {
                use std::os::unix::process::ExitStatusExt;
                let by_ctrl_c = status.success()
                    || status.code() == Some(130)
                    || status.signal() == Some(nix::libc::SIGINT);
                if !by_ctrl_c {
                    let err = read_all(child.stderr.take());
                    failures.push(format!("`{shown}` ended with {status} on Ctrl-C: {err}"));
                }
            }
            None => {
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
                let _ = child.wait();
                failures.push(format!("`{shown}` did not end on Ctrl-C"));
            }
        }
    }
    failures
}

/// Our children that are still running (we are a subreaper: orphans come to us).
fn live_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) == Some(&me.as_str()) && fields[0] != "Z" {
            live.push(entry.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    live
}

#[test]
fn every_command_in_the_readme_runs_as_shown() {
    common::become_subreaper();
    let world = World::new();
    let blocks = sh_blocks(&readme());
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for block in &blocks {
        failures.extend(run_block(&world, block, &mut ran));
    }
    eprintln!("readme: ran {} commands", ran.len());
    assert!(
        ran.iter().any(|c| c.starts_with("daemonlab tour"))
            && ran.iter().any(|c| c.starts_with("cargo run --release")),
        "the README should show the tour and the explorer: {ran:?}"
    );
    assert!(
        ran.iter().any(|c| c.ends_with("(in a pty)")),
        "the explorer was never run in a pty: {ran:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Anything a command left behind was orphaned to us.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !live_children().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(live_children(), Vec::<i32>::new(), "left running");
}

#[test]
fn the_readme_opens_with_a_sentence_a_screenshot_and_the_two_commands() {
    let text = readme();
    let mut paragraphs = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty());
    assert_eq!(paragraphs.next(), Some("# daemonlab"));
    let sentence = paragraphs.next().unwrap();
    assert!(
        sentence.ends_with('.') && sentence.matches(". ").count() == 0,
        "the first paragraph is one sentence: {sentence}"
    );
    let image = paragraphs.next().unwrap();
    assert!(
        image.starts_with("![") && image.contains("](assets/"),
        "then a screenshot: {image}"
    );
    let first_block = &sh_blocks(&text)[0];
    let commands: Vec<&str> = first_block.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(commands, ["cargo run --release", "cargo test"]);
    let first_block_at = text.find("```sh").unwrap();
    assert!(
        text[..first_block_at].lines().count() < 20,
        "the two commands are on the first screen"
    );
}

#[test]
fn every_asset_the_readme_links_exists() {
    let text = readme();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut linked = 0;
    for (i, _) in text.match_indices("](assets/") {
        let rest = &text[i + 2..];
        let path = &rest[..rest.find(')').unwrap()];
        assert!(root.join(path).is_file(), "README links {path}, missing");
        linked += 1;
    }
    assert!(
        linked >= 3,
        "screenshots of the Lab, Locks and Processes tabs"
    );
}
