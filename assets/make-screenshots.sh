#!/usr/bin/env bash
# Makes the README's pictures of the real explorer, in assets/:
#   lab.svg, locks.svg, processes.svg, inspect.svg  one screen of each tab (120 × 36 cells)
#   tour.cast                                       the session in asciicast v2 (asciinema play)
#   tour.svg                                        the same session as a looping animated SVG
# It builds the release binary, runs it in a pseudo-terminal from examples/screenshots.rs,
# presses the keys, and checks that every process the explorer started is gone afterwards.
# Needs only cargo (no tmux, no ImageMagick). Takes about half a minute after the build.
#
# Rerun it after any change to what the explorer draws (src/ui, lessons/, key bindings),
# and commit the regenerated assets with that change.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release
cargo run --release --example screenshots -- target/release/daemonlab assets
