//! The one key table: it maps keys to actions and feeds both the footer hints and the
//! `?` help popup, so the three can never disagree.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::Action;
use super::app::Tab;

/// When a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// On every tab.
    Always,
    /// On the Lab tab, with the lab's own subject.
    Lab,
    /// On the Lab tab in free mode.
    FreeMode,
    /// On the Lab tab, whoever the subject is (the lab's, or a program `daemonlab run`
    /// traces): keys that only change what the panes show.
    Pane,
    /// On the Lab tab of `daemonlab run`, which follows a traced program.
    Traced,
    /// On the Lab tab of `daemonlab run`, a trace or a service: the timeline's keys.
    Timeline,
    /// On the Lab tab of `daemonlab run --service`.
    Service,
    /// Wherever there is more than one tab (not in `daemonlab run`).
    Tabs,
    /// On the Locks tab.
    Locks,
    /// While the experiments menu is open (it takes the keys it names).
    Menu,
    /// On the Processes tab.
    Processes,
    /// On the Inspect tab.
    Inspect,
}

/// Where the user is, which decides which bindings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub tab: Tab,
    pub free_mode: bool,
    /// The experiments menu is open.
    pub menu: bool,
    /// `daemonlab run`: the subject is a traced program (or a service), not the lab's.
    pub traced: bool,
    /// `daemonlab run --service`: the subject is a service the lab manages.
    pub service: bool,
}

impl When {
    /// Whether a binding with this condition applies in `context`.
    pub fn applies(self, context: Context) -> bool {
        match self {
            When::Always => true,
            When::Menu => context.menu,
            _ if context.menu => false,
            When::Lab => context.tab == Tab::Lab && !context.traced,
            When::FreeMode => context.tab == Tab::Lab && context.free_mode && !context.traced,
            When::Pane => context.tab == Tab::Lab,
            When::Traced => context.tab == Tab::Lab && context.traced && !context.service,
            When::Timeline => context.tab == Tab::Lab && context.traced,
            When::Service => context.tab == Tab::Lab && context.service,
            When::Tabs => !context.traced,
            When::Locks => context.tab == Tab::Locks,
            When::Processes => context.tab == Tab::Processes,
            When::Inspect => context.tab == Tab::Inspect,
        }
    }

    /// How the help popup labels a binding's scope.
    pub fn label(self) -> &'static str {
        match self {
            When::Always => "",
            When::Lab | When::Pane | When::Traced | When::Timeline | When::Service | When::Tabs => {
                ""
            }
            When::FreeMode => " (free mode)",
            When::Locks => "",
            When::Menu => " (experiments menu)",
            When::Processes | When::Inspect => "",
        }
    }
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Keys as shown to people, e.g. "Space/n".
    pub label: &'static str,
    pub keys: &'static [Key],
    pub action: Action,
    pub description: &'static str,
    /// Short hint for the footer; `None` keeps it to the help popup.
    pub hint: Option<&'static str>,
    pub when: When,
}

/// A key press the table can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Code(KeyCode),
}

/// Every key the Lab tab knows.
pub const BINDINGS: &[Binding] = &[
    Binding {
        label: "Space/n",
        keys: &[Key::Char(' '), Key::Char('n')],
        action: Action::NextStep,
        description: "let the held program run to its next rule",
        hint: Some("next rule"),
        when: When::Traced,
    },
    Binding {
        label: "c",
        keys: &[Key::Char('c')],
        action: Action::RunFreely,
        description: "let it run freely: rules are still recorded, nothing is held",
        hint: Some("run freely"),
        when: When::Traced,
    },
    Binding {
        label: "↑/k",
        keys: &[Key::Code(KeyCode::Up), Key::Char('k')],
        action: Action::SelectUp,
        description: "pick the timeline row above: the panes show the process as it was then",
        hint: Some("pick"),
        when: When::Timeline,
    },
    Binding {
        label: "↓/j",
        keys: &[Key::Code(KeyCode::Down), Key::Char('j')],
        action: Action::SelectDown,
        description: "pick the timeline row below",
        hint: None,
        when: When::Timeline,
    },
    Binding {
        label: "End",
        keys: &[Key::Code(KeyCode::End)],
        action: Action::PickLatest,
        description: "follow the newest timeline row again",
        hint: None,
        when: When::Timeline,
    },
    Binding {
        label: "r",
        keys: &[Key::Char('r')],
        action: Action::ReloadService,
        description: "reload the service: SIGHUP (notify-reload then waits for RELOADING=1 … READY=1)",
        hint: Some("reload"),
        when: When::Service,
    },
    Binding {
        label: "e",
        keys: &[Key::Char('e')],
        action: Action::StopService,
        description: "stop the service: SIGTERM, then SIGKILL after the stop timeout",
        hint: Some("stop"),
        when: When::Service,
    },
    Binding {
        label: "Space/n",
        keys: &[Key::Char(' '), Key::Char('n')],
        action: Action::NextStep,
        description: "run the next step",
        hint: Some("next"),
        when: When::Lab,
    },
    Binding {
        label: "f",
        keys: &[Key::Char('f')],
        action: Action::ToggleFree,
        description: "free mode: run any step, in any order",
        hint: Some("free"),
        when: When::Lab,
    },
    Binding {
        label: "↑/k",
        keys: &[Key::Code(KeyCode::Up), Key::Char('k')],
        action: Action::SelectUp,
        description: "pick the step above",
        hint: None,
        when: When::FreeMode,
    },
    Binding {
        label: "↓/j",
        keys: &[Key::Code(KeyCode::Down), Key::Char('j')],
        action: Action::SelectDown,
        description: "pick the step below",
        hint: None,
        when: When::FreeMode,
    },
    Binding {
        label: "Enter",
        keys: &[Key::Code(KeyCode::Enter)],
        action: Action::RunSelected,
        description: "run the picked step",
        hint: Some("run"),
        when: When::FreeMode,
    },
    Binding {
        label: "PgDn",
        keys: &[Key::Code(KeyCode::PageDown)],
        action: Action::LessonDown,
        description: "scroll the lesson down",
        hint: None,
        when: When::Pane,
    },
    Binding {
        label: "PgUp",
        keys: &[Key::Code(KeyCode::PageUp)],
        action: Action::LessonUp,
        description: "scroll the lesson up",
        hint: None,
        when: When::Pane,
    },
    Binding {
        label: "L",
        keys: &[Key::Char('L')],
        action: Action::LogTest,
        description: "the subject calls syslog() with a test message",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "v",
        keys: &[Key::Char('v')],
        action: Action::CycleLogLevel,
        description: "choose the severity L logs at",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "M",
        keys: &[Key::Char('M')],
        action: Action::CycleLogMask,
        description: "cycle the subject's setlogmask (masked messages are never sent)",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "O",
        keys: &[Key::Char('O')],
        action: Action::CycleOpenlog,
        description: "closelog, then openlog with the next set of options",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "S",
        keys: &[Key::Char('S')],
        action: Action::ToggleReceiver,
        description: "stop / start the lab's syslogd (see LOG_CONS, then the reconnect)",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "U",
        keys: &[Key::Char('U')],
        action: Action::ToggleFolding,
        description: "fold repeated messages (\"last message repeated N times\") or not",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "F",
        keys: &[Key::Char('F')],
        action: Action::CycleSyslogFilter,
        description: "syslog pane: show only this severity or worse",
        hint: None,
        when: When::Pane,
    },
    Binding {
        label: ".",
        keys: &[Key::Char('.')],
        action: Action::PauseSyslog,
        description: "syslog pane: pause / resume (messages still count)",
        hint: None,
        when: When::Pane,
    },
    Binding {
        label: "r",
        keys: &[Key::Char('r')],
        action: Action::Reset,
        description: "reset: end the subject, start a new one at step 0",
        hint: Some("reset"),
        when: When::Lab,
    },
    Binding {
        label: "p",
        keys: &[Key::Char('p')],
        action: Action::FocusNext,
        description: "move focus to the next pane (Lab) or part (Locks: table, contenders, pitfall, syslog)",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "P",
        keys: &[Key::Char('P')],
        action: Action::FocusPrev,
        description: "move focus to the previous pane or part",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "z",
        keys: &[Key::Char('z')],
        action: Action::Zoom,
        description: "zoom the focused pane or part (or the experiments menu) to the whole screen, and back",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "s",
        keys: &[Key::Char('s')],
        action: Action::ToggleSessions,
        description: "show the session picture in History's place, and back",
        hint: Some("sessions"),
        when: When::Pane,
    },
    Binding {
        label: "Tab",
        keys: &[Key::Code(KeyCode::Tab)],
        action: Action::NextTab,
        description: "next tab",
        hint: None,
        when: When::Tabs,
    },
    Binding {
        label: "S-Tab",
        keys: &[Key::Code(KeyCode::BackTab)],
        action: Action::PrevTab,
        description: "previous tab",
        hint: None,
        when: When::Tabs,
    },
    Binding {
        label: "1-4",
        keys: &[
            Key::Char('1'),
            Key::Char('2'),
            Key::Char('3'),
            Key::Char('4'),
        ],
        action: Action::GoToTab(0),
        description: "go to a tab by number",
        hint: None,
        when: When::Tabs,
    },
    Binding {
        label: "c",
        keys: &[Key::Char('c')],
        action: Action::SpawnContender,
        description: "start one contender for the pid-file lock",
        hint: Some("contender"),
        when: When::Locks,
    },
    Binding {
        label: "C",
        keys: &[Key::Char('C')],
        action: Action::SpawnTen,
        description: "start ten contenders at once",
        hint: Some("ten"),
        when: When::Locks,
    },
    Binding {
        label: "k",
        keys: &[Key::Char('k')],
        action: Action::KillHolder,
        description: "kill the holder (SIGKILL): watch a waiter take over",
        hint: Some("kill holder"),
        when: When::Locks,
    },
    Binding {
        label: "w",
        keys: &[Key::Char('w')],
        action: Action::ToggleLockMode,
        description: "toggle try (F_SETLK) / wait (F_SETLKW) for new contenders",
        hint: Some("try/wait"),
        when: When::Locks,
    },
    Binding {
        label: "t",
        keys: &[Key::Char('t')],
        action: Action::CycleLockKind,
        description: "cycle the lock kind: fcntl, flock, OFD",
        hint: Some("kind"),
        when: When::Locks,
    },
    Binding {
        label: "x",
        keys: &[Key::Char('x')],
        action: Action::RunPitfall,
        description: "run the chosen pitfall and show the kernel's evidence",
        hint: Some("pitfall"),
        when: When::Locks,
    },
    Binding {
        label: "X",
        keys: &[Key::Char('X')],
        action: Action::NextPitfall,
        description: "choose the next pitfall",
        hint: Some("next pitfall"),
        when: When::Locks,
    },
    Binding {
        label: "PgDn",
        keys: &[Key::Code(KeyCode::PageDown)],
        action: Action::LessonDown,
        description: "scroll the pitfall's evidence",
        hint: None,
        when: When::Locks,
    },
    Binding {
        label: "PgUp",
        keys: &[Key::Code(KeyCode::PageUp)],
        action: Action::LessonUp,
        description: "scroll the pitfall's evidence back",
        hint: None,
        when: When::Locks,
    },
    Binding {
        label: "e",
        keys: &[Key::Char('e')],
        action: Action::StopContenders,
        description: "end every contender",
        hint: None,
        when: When::Locks,
    },
    Binding {
        label: "x",
        keys: &[Key::Char('x')],
        action: Action::OpenExperiments,
        description: "experiments: skip a rule on a fresh lab and see the kernel's evidence",
        hint: Some("experiments"),
        when: When::Lab,
    },
    Binding {
        label: "H",
        keys: &[Key::Char('H')],
        action: Action::HangUp,
        description: "hang up the subject's terminal (before setsid it dies of SIGHUP)",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "↑/k",
        keys: &[Key::Code(KeyCode::Up), Key::Char('k')],
        action: Action::SelectUp,
        description: "choose an experiment",
        hint: None,
        when: When::Menu,
    },
    Binding {
        label: "↓/j",
        keys: &[Key::Code(KeyCode::Down), Key::Char('j')],
        action: Action::SelectDown,
        description: "choose the next experiment",
        hint: None,
        when: When::Menu,
    },
    Binding {
        label: "Enter",
        keys: &[Key::Code(KeyCode::Enter)],
        action: Action::RunSelected,
        description: "run the chosen experiment",
        hint: Some("run"),
        when: When::Menu,
    },
    Binding {
        label: "PgDn",
        keys: &[Key::Code(KeyCode::PageDown)],
        action: Action::LessonDown,
        description: "scroll the report",
        hint: None,
        when: When::Menu,
    },
    Binding {
        label: "PgUp",
        keys: &[Key::Code(KeyCode::PageUp)],
        action: Action::LessonUp,
        description: "scroll the report back",
        hint: None,
        when: When::Menu,
    },
    Binding {
        label: "g",
        keys: &[Key::Char('g')],
        action: Action::Guide,
        description: "guided tour: every lesson of the chapter in order, the process moving with it",
        hint: Some("guide"),
        when: When::Lab,
    },
    Binding {
        label: "b",
        keys: &[Key::Char('b')],
        action: Action::GuideBack,
        description: "guided tour: back one lesson",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "K",
        keys: &[Key::Char('K')],
        action: Action::TakeLock,
        description: "the daemon takes the pid-file lock (already_running): a single-instance daemon",
        hint: None,
        when: When::Lab,
    },
    Binding {
        label: "↑/k",
        keys: &[Key::Code(KeyCode::Up), Key::Char('k')],
        action: Action::SelectUp,
        description: "select the process above",
        hint: None,
        when: When::Processes,
    },
    Binding {
        label: "↓/j",
        keys: &[Key::Code(KeyCode::Down), Key::Char('j')],
        action: Action::SelectDown,
        description: "select the process below",
        hint: None,
        when: When::Processes,
    },
    Binding {
        label: "Enter",
        keys: &[Key::Code(KeyCode::Enter)],
        action: Action::RunSelected,
        description: "inspect the selected process (Inspect tab)",
        hint: Some("inspect"),
        when: When::Processes,
    },
    Binding {
        label: "h",
        keys: &[Key::Char('h')],
        action: Action::HideKernelThreads,
        description: "hide / show kernel threads",
        hint: Some("kthreads"),
        when: When::Processes,
    },
    Binding {
        label: "/",
        keys: &[Key::Char('/')],
        action: Action::StartFilter,
        description: "filter by command or PID (type, then Enter)",
        hint: Some("filter"),
        when: When::Processes,
    },
    Binding {
        label: "s",
        keys: &[Key::Char('s')],
        action: Action::CycleSort,
        description: "change the sort: pid, ppid, sid, command, time",
        hint: Some("sort"),
        when: When::Processes,
    },
    Binding {
        label: "t",
        keys: &[Key::Char('t')],
        action: Action::ToggleTree,
        description: "tree by parent",
        hint: Some("tree"),
        when: When::Processes,
    },
    Binding {
        label: "d",
        keys: &[Key::Char('d')],
        action: Action::InspectDaemon,
        description: "inspect the lab's own daemon again",
        hint: Some("lab's daemon"),
        when: When::Inspect,
    },
    Binding {
        label: "↓/j",
        keys: &[Key::Code(KeyCode::Down), Key::Char('j')],
        action: Action::SelectDown,
        description: "scroll the checklist down a row",
        hint: None,
        when: When::Inspect,
    },
    Binding {
        label: "↑/k",
        keys: &[Key::Code(KeyCode::Up), Key::Char('k')],
        action: Action::SelectUp,
        description: "scroll the checklist up a row",
        hint: None,
        when: When::Inspect,
    },
    Binding {
        label: "PgDn",
        keys: &[Key::Code(KeyCode::PageDown)],
        action: Action::LessonDown,
        description: "scroll the checklist down a page",
        hint: Some("scroll"),
        when: When::Inspect,
    },
    Binding {
        label: "PgUp",
        keys: &[Key::Code(KeyCode::PageUp)],
        action: Action::LessonUp,
        description: "scroll the checklist up a page",
        hint: None,
        when: When::Inspect,
    },
    Binding {
        label: "?",
        keys: &[Key::Char('?')],
        action: Action::Help,
        description: "this help",
        hint: Some("help"),
        when: When::Always,
    },
    Binding {
        label: "Esc",
        keys: &[Key::Code(KeyCode::Esc)],
        action: Action::Back,
        description: "close what is open: help, a menu, the zoom, free mode (never quits)",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "q",
        keys: &[Key::Char('q')],
        action: Action::Quit,
        description: "quit (every process the lab started ends)",
        hint: Some("quit"),
        when: When::Always,
    },
    Binding {
        label: "Ctrl-C",
        keys: &[Key::Ctrl('c')],
        action: Action::Quit,
        description: "quit too",
        hint: None,
        when: When::Always,
    },
];

fn matches(key: Key, event: &KeyEvent) -> bool {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    match key {
        Key::Char(c) => !ctrl && event.code == KeyCode::Char(c),
        Key::Ctrl(c) => ctrl && event.code == KeyCode::Char(c),
        Key::Code(code) => event.code == code,
    }
}

/// The action for a key press, given whether free mode is on. Key releases are ignored.
pub fn action_for(event: &KeyEvent, context: Context) -> Option<Action> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let binding = BINDINGS
        .iter()
        .filter(|b| b.when.applies(context))
        .find(|b| b.keys.iter().any(|k| matches(*k, event)))?;
    Some(match (binding.action, event.code) {
        (Action::GoToTab(_), KeyCode::Char(c)) => {
            Action::GoToTab(c.to_digit(10).unwrap_or(1) as u8)
        }
        (action, _) => action,
    })
}

/// The footer hints that apply now, in table order.
pub fn hints(context: Context) -> impl Iterator<Item = (&'static str, &'static str)> {
    hint_bindings(context).filter_map(|b| b.hint.map(|hint| (b.label, hint)))
}

/// The bindings behind [`hints`], for a footer that places the tab's keys and the
/// everywhere keys apart.
pub fn hint_bindings(context: Context) -> impl Iterator<Item = &'static Binding> {
    BINDINGS
        .iter()
        .filter(move |b| b.when.applies(context) && b.hint.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: Context = Context {
        tab: Tab::Lab,
        free_mode: false,
        menu: false,
        traced: false,
        service: false,
    };
    const FREE: Context = Context {
        tab: Tab::Lab,
        free_mode: true,
        menu: false,
        traced: false,
        service: false,
    };
    const LOCKS: Context = Context {
        tab: Tab::Locks,
        free_mode: false,
        menu: false,
        traced: false,
        service: false,
    };
    const PROCESSES: Context = Context {
        tab: Tab::Processes,
        free_mode: false,
        menu: false,
        traced: false,
        service: false,
    };
    const INSPECT: Context = Context {
        tab: Tab::Inspect,
        free_mode: false,
        menu: false,
        traced: false,
        service: false,
    };
    const MENU: Context = Context {
        tab: Tab::Lab,
        free_mode: false,
        menu: true,
        traced: false,
        service: false,
    };
    const TRACED: Context = Context {
        tab: Tab::Lab,
        free_mode: false,
        menu: false,
        traced: true,
        service: false,
    };
    const SERVICE: Context = Context {
        tab: Tab::Lab,
        free_mode: false,
        menu: false,
        traced: true,
        service: true,
    };

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions_from_the_one_table() {
        assert_eq!(
            action_for(&key(KeyCode::Char(' ')), LAB),
            Some(Action::NextStep)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('n')), LAB),
            Some(Action::NextStep)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('3')), LAB),
            Some(Action::GoToTab(3))
        );
        assert_eq!(
            action_for(
                &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                LAB
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('c')), LAB),
            None,
            "plain c is not Ctrl-C"
        );
        assert_eq!(
            action_for(&key(KeyCode::Enter), LAB),
            None,
            "Enter runs only in free mode"
        );
        assert_eq!(
            action_for(&key(KeyCode::Enter), FREE),
            Some(Action::RunSelected)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('j')), FREE),
            Some(Action::SelectDown)
        );
    }

    #[test]
    fn every_binding_is_reachable_and_hints_come_from_the_table() {
        for binding in BINDINGS {
            for k in binding.keys {
                let event = match *k {
                    Key::Char(c) => key(KeyCode::Char(c)),
                    Key::Ctrl(c) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
                    Key::Code(code) => key(code),
                };
                let context = match binding.when {
                    When::Locks => LOCKS,
                    When::Menu => MENU,
                    When::Processes => PROCESSES,
                    When::Inspect => INSPECT,
                    When::Traced | When::Timeline => TRACED,
                    When::Service => SERVICE,
                    _ => FREE,
                };
                let got = action_for(&event, context).expect(binding.label);
                assert_eq!(
                    std::mem::discriminant(&got),
                    std::mem::discriminant(&binding.action),
                    "{}",
                    binding.label
                );
            }
        }
        let normal: Vec<_> = hints(LAB).map(|(_, h)| h).collect();
        assert!(normal.contains(&"next") && !normal.contains(&"run"));
        assert!(
            hints(LAB).any(|(label, hint)| (label, hint) == ("s", "sessions")),
            "the session picture's key has a hint: {normal:?}"
        );
        assert!(!hints(PROCESSES).any(|(_, h)| h == "sessions"));
        assert!(hints(FREE).any(|(_, h)| h == "run"));
        let locks: Vec<_> = hints(LOCKS).map(|(_, h)| h).collect();
        assert!(
            locks.contains(&"contender") && !locks.contains(&"next"),
            "{locks:?}"
        );
        assert_eq!(
            action_for(&key(KeyCode::Char(' ')), LOCKS),
            None,
            "Space is a Lab key"
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('k')), LOCKS),
            Some(Action::KillHolder)
        );
    }

    #[test]
    fn a_traced_program_takes_the_trace_keys_and_none_that_act_on_the_labs_subject() {
        assert_eq!(
            action_for(&key(KeyCode::Char(' ')), TRACED),
            Some(Action::NextStep)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('c')), TRACED),
            Some(Action::RunFreely)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('k')), TRACED),
            Some(Action::SelectUp)
        );
        // The lab's subject only: log, hang up, reset, experiments, the other tabs.
        for c in ['L', 'H', 'r', 'x', 'f', 'K', 'g', '2'] {
            assert_eq!(action_for(&key(KeyCode::Char(c)), TRACED), None, "{c}");
        }
        assert_eq!(action_for(&key(KeyCode::Tab), TRACED), None);
        // What only changes the view still works.
        assert_eq!(
            action_for(&key(KeyCode::Char('s')), TRACED),
            Some(Action::ToggleSessions)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('z')), TRACED),
            Some(Action::Zoom)
        );
        let shown: Vec<_> = hints(TRACED).map(|(_, h)| h).collect();
        assert!(
            shown.contains(&"next rule") && !shown.contains(&"next"),
            "{shown:?}"
        );
        assert_eq!(action_for(&key(KeyCode::Char('c')), LAB), None);
        // A service is not held: no Space; r and e act on it.
        assert_eq!(action_for(&key(KeyCode::Char(' ')), SERVICE), None);
        assert_eq!(
            action_for(&key(KeyCode::Char('r')), SERVICE),
            Some(Action::ReloadService)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('e')), SERVICE),
            Some(Action::StopService)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('k')), SERVICE),
            Some(Action::SelectUp)
        );
        assert_eq!(action_for(&key(KeyCode::Char('r')), TRACED), None);
    }

    #[test]
    fn no_key_means_two_things_on_one_tab() {
        for context in [LAB, FREE, LOCKS, MENU, PROCESSES, INSPECT, TRACED, SERVICE] {
            let mut seen = std::collections::HashSet::new();
            for b in BINDINGS.iter().filter(|b| b.when.applies(context)) {
                for k in b.keys {
                    assert!(
                        seen.insert(format!("{k:?}")),
                        "{k:?} bound twice in {context:?}"
                    );
                }
            }
        }
    }
}
