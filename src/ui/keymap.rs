//! The one key table: it maps keys to actions and feeds both the footer hints and the
//! `?` help popup, so the three can never disagree.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::Action;

/// When a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only in free mode.
    FreeMode,
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
        description: "run the next step",
        hint: Some("next"),
        when: When::Always,
    },
    Binding {
        label: "f",
        keys: &[Key::Char('f')],
        action: Action::ToggleFree,
        description: "free mode: run any step, in any order",
        hint: Some("free"),
        when: When::Always,
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
        hint: Some("lesson"),
        when: When::Always,
    },
    Binding {
        label: "PgUp",
        keys: &[Key::Code(KeyCode::PageUp)],
        action: Action::LessonUp,
        description: "scroll the lesson up",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "L",
        keys: &[Key::Char('L')],
        action: Action::LogTest,
        description: "the subject calls syslog() with a test message",
        hint: Some("log"),
        when: When::Always,
    },
    Binding {
        label: "v",
        keys: &[Key::Char('v')],
        action: Action::CycleLogLevel,
        description: "choose the severity L logs at",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "M",
        keys: &[Key::Char('M')],
        action: Action::CycleLogMask,
        description: "cycle the subject's setlogmask (masked messages are never sent)",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "O",
        keys: &[Key::Char('O')],
        action: Action::CycleOpenlog,
        description: "closelog, then openlog with the next set of options",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "S",
        keys: &[Key::Char('S')],
        action: Action::ToggleReceiver,
        description: "stop / start the lab's syslogd (see LOG_CONS, then the reconnect)",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "U",
        keys: &[Key::Char('U')],
        action: Action::ToggleFolding,
        description: "fold repeated messages (\"last message repeated N times\") or not",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "F",
        keys: &[Key::Char('F')],
        action: Action::CycleSyslogFilter,
        description: "syslog pane: show only this severity or worse",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: ".",
        keys: &[Key::Char('.')],
        action: Action::PauseSyslog,
        description: "syslog pane: pause / resume (messages still count)",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "r",
        keys: &[Key::Char('r')],
        action: Action::Reset,
        description: "reset: end the subject, start a new one at step 0",
        hint: Some("reset"),
        when: When::Always,
    },
    Binding {
        label: "p",
        keys: &[Key::Char('p')],
        action: Action::FocusNext,
        description: "move focus to the next pane",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "P",
        keys: &[Key::Char('P')],
        action: Action::FocusPrev,
        description: "move focus to the previous pane",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "z",
        keys: &[Key::Char('z')],
        action: Action::Zoom,
        description: "zoom the focused pane to the whole screen, and back",
        hint: Some("zoom"),
        when: When::Always,
    },
    Binding {
        label: "Tab",
        keys: &[Key::Code(KeyCode::Tab)],
        action: Action::NextTab,
        description: "next tab",
        hint: None,
        when: When::Always,
    },
    Binding {
        label: "S-Tab",
        keys: &[Key::Code(KeyCode::BackTab)],
        action: Action::PrevTab,
        description: "previous tab",
        hint: None,
        when: When::Always,
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
        when: When::Always,
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
        description: "close a popup, otherwise quit",
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
pub fn action_for(event: &KeyEvent, free_mode: bool) -> Option<Action> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let binding = BINDINGS
        .iter()
        .filter(|b| b.when == When::Always || free_mode)
        .find(|b| b.keys.iter().any(|k| matches(*k, event)))?;
    Some(match (binding.action, event.code) {
        (Action::GoToTab(_), KeyCode::Char(c)) => {
            Action::GoToTab(c.to_digit(10).unwrap_or(1) as u8)
        }
        (action, _) => action,
    })
}

/// The footer hints that apply now, in table order.
pub fn hints(free_mode: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(move |b| b.when == When::Always || free_mode)
        .filter_map(|b| b.hint.map(|hint| (b.label, hint)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions_from_the_one_table() {
        assert_eq!(
            action_for(&key(KeyCode::Char(' ')), false),
            Some(Action::NextStep)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('n')), false),
            Some(Action::NextStep)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('3')), false),
            Some(Action::GoToTab(3))
        );
        assert_eq!(
            action_for(
                &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                false
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('c')), false),
            None,
            "plain c is not Ctrl-C"
        );
        assert_eq!(
            action_for(&key(KeyCode::Enter), false),
            None,
            "Enter runs only in free mode"
        );
        assert_eq!(
            action_for(&key(KeyCode::Enter), true),
            Some(Action::RunSelected)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('j')), true),
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
                let got = action_for(&event, true).expect(binding.label);
                assert_eq!(
                    std::mem::discriminant(&got),
                    std::mem::discriminant(&binding.action),
                    "{}",
                    binding.label
                );
            }
        }
        let normal: Vec<_> = hints(false).map(|(_, h)| h).collect();
        assert!(normal.contains(&"next") && !normal.contains(&"run"));
        assert!(hints(true).any(|(_, h)| h == "run"));
    }
}
