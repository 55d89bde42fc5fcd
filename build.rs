//! Embeds the shipped lessons: writes `$OUT_DIR/embedded_lessons.rs`, a slice of
//! `(file name, contents)` for every `lessons/*.md`, sorted by name, so the binary needs
//! no data files at run time. Parsing them is `LessonSet::embedded`'s job, and a unit
//! test makes sure every shipped lesson parses. Also links the binary at a fixed address
//! (see `link_at_a_fixed_address`).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    link_at_a_fixed_address();
    let root =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = root.join("lessons");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=lessons");

    let mut files = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
                let path = entry.path();
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    panic!("lesson file names must be UTF-8: {}", path.display());
                };
                // The same rule as LessonSet::load_dir: *.md files, not hidden, not directories.
                if !name.ends_with(".md") || name.starts_with('.') || path.is_dir() {
                    continue;
                }
                files.push((name, path));
            }
        }
        // No lessons directory: embed none, and the lesson tests say what is missing.
        Err(e) => println!(
            "cargo:warning=no lessons embedded: cannot read {}: {e}",
            dir.display()
        ),
    }
    files.sort();

    let mut out = String::from("&[\n");
    for (name, path) in &files {
        println!("cargo:rerun-if-changed=lessons/{name}");
        let path = path
            .to_str()
            .unwrap_or_else(|| panic!("the path of a lesson must be UTF-8: {}", path.display()));
        // `{:?}` writes a valid Rust string literal, escapes included.
        out.push_str(&format!("    ({name:?}, include_str!({path:?})),\n"));
    }
    out.push_str("]\n");

    let target = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_lessons.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
}

/// Links the `daemonlab` binary as a position-dependent executable (`-no-pie`).
///
/// Every command is a process of its own (`inspect`, `ps`, `tour`, the lab's helpers),
/// so start-up is paid each time. As a PIE the binary carries thousands of relative
/// relocations (`LD_DEBUG=statistics daemonlab --version` counts them), which the
/// dynamic loader applies at every start, writing to pages of .data.rel.ro and the GOT
/// that each then cost a copy-on-write page fault. At a fixed address the linker
/// resolves them once (`cargo bench --bench inspect`, the whole-process pairs). The
/// code is still compiled position-independent, so only the final link changes; shared
/// libraries keep their random addresses, the executable's own image loses its
/// randomization.
fn link_at_a_fixed_address() {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
