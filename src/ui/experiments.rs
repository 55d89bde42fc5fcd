//! The experiments menu (`x` on the Lab tab): skip a rule on a fresh lab and see, from the
//! kernel, why the rule exists.

use crate::lab::experiments::{Experiment, ExperimentReport};

/// What the menu shows.
#[derive(Debug, Clone, Default)]
pub struct ExperimentsView {
    /// The menu is on screen.
    pub open: bool,
    pub selected: usize,
    /// An experiment is running on its own lab.
    pub running: bool,
    pub report: Option<ExperimentReport>,
    pub error: Option<String>,
    /// Lines the report is scrolled down by.
    pub scroll: u16,
    /// z: the menu covers the whole screen, for a long report.
    pub zoomed: bool,
}

impl ExperimentsView {
    /// The experiment under the cursor.
    pub fn chosen(&self) -> Experiment {
        Experiment::ALL[self.selected % Experiment::ALL.len()]
    }

    /// Put the cursor on `experiment`, as when the lesson shown names it.
    pub fn select(&mut self, experiment: Experiment) {
        if let Some(i) = Experiment::ALL.iter().position(|&e| e == experiment)
            && i != self.selected
        {
            self.selected = i;
            self.report = None;
            self.error = None;
            self.scroll = 0;
        }
    }

    /// Move the cursor by `by`, wrapping.
    pub fn step(&mut self, by: isize) {
        let n = Experiment::ALL.len() as isize;
        self.selected = (self.selected as isize + by).rem_euclid(n) as usize;
        self.report = None;
        self.error = None;
        self.scroll = 0;
    }
}
