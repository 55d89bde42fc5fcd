//! The session picture as a drawing: session ⊃ process group ⊃ process, in boxes, the way
//! APUE draws them (9.4–9.6 and 13.3). Each piece of text carries a [`Role`], so the text
//! tour prints it as it is and the TUI pane styles it from its theme; every meaning is
//! also in the characters (box style and labels), so it reads in monochrome.

use crate::probe::sessions::{GoneProcess, GroupPicture, MemberPicture, SessionPicture};
use crate::probe::state_name;

/// What a piece of the drawing stands for, so a view can style it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Box lines.
    Frame,
    /// A session's or group's name in its border.
    Title,
    /// A process's own line.
    Text,
    /// "session leader", "group leader".
    Leader,
    /// The controlling terminal and the foreground mark.
    Terminal,
    /// The "ORPHANED" label.
    Orphaned,
    /// A process that exited since the last step, and what became of its children.
    Gone,
    /// The adopter, outside the session.
    Adopter,
    /// Parents, states in words: detail that can fade.
    Muted,
}

/// One piece of text and what it means.
pub type Segment = (String, Role);
/// One row of the drawing.
pub type Row = Vec<Segment>;

/// The plain text of a row.
pub fn row_text(row: &Row) -> String {
    row.iter().map(|(t, _)| t.as_str()).collect()
}

/// Box characters: a session is drawn double, a group single, the terminal's foreground
/// group heavy, a group that no longer exists dashed.
#[derive(Clone, Copy)]
struct Frame {
    top_left: char,
    top_right: char,
    bottom_left: char,
    bottom_right: char,
    across: char,
    down: char,
}

const SESSION: Frame = Frame {
    top_left: '╔',
    top_right: '╗',
    bottom_left: '╚',
    bottom_right: '╝',
    across: '═',
    down: '║',
};
const GROUP: Frame = Frame {
    top_left: '┌',
    top_right: '┐',
    bottom_left: '└',
    bottom_right: '┘',
    across: '─',
    down: '│',
};
const FOREGROUND: Frame = Frame {
    top_left: '┏',
    top_right: '┓',
    bottom_left: '┗',
    bottom_right: '┛',
    across: '━',
    down: '┃',
};
const EMPTIED: Frame = Frame {
    top_left: '┌',
    top_right: '┐',
    bottom_left: '└',
    bottom_right: '┘',
    across: '╌',
    down: '╎',
};

/// What goes inside a box: text to wrap, or rows already drawn (an inner box).
enum Item {
    Para(Vec<Segment>),
    Rows(Vec<Row>),
}

fn seg(text: impl Into<String>, role: Role) -> Segment {
    (text.into(), role)
}

fn width_of(segments: &[Segment]) -> usize {
    segments.iter().map(|(t, _)| t.chars().count()).sum()
}

/// `segments` broken at spaces into rows of at most `width` characters; continuation rows
/// start with `indent` spaces. A word longer than a row is cut across rows.
fn wrap(segments: &[Segment], width: usize, indent: usize) -> Vec<Row> {
    let width = width.max(indent + 1);
    let mut rows: Vec<Row> = vec![Vec::new()];
    let mut used = 0;
    for (text, role) in segments {
        for word in text.split_inclusive(' ') {
            let len = word.trim_end().chars().count();
            if used + len > width && used > indent {
                rows.push(vec![seg(" ".repeat(indent), Role::Text)]);
                used = indent;
            }
            let mut word = word.to_string();
            while used + word.trim_end().chars().count() > width {
                let room = width - used;
                let head: String = word.chars().take(room).collect();
                word = word.chars().skip(room).collect();
                rows.last_mut().unwrap().push(seg(head, *role));
                rows.push(vec![seg(" ".repeat(indent), Role::Text)]);
                used = indent;
            }
            used += word.chars().count();
            rows.last_mut().unwrap().push(seg(word, *role));
        }
    }
    // Trailing spaces would push a row past the frame.
    for row in &mut rows {
        if let Some(last) = row.last_mut() {
            last.0 = last.0.trim_end().to_string();
        }
    }
    rows
}

/// A box `width` characters wide with `title` in its top border (inside, if it is too
/// long for the border) around `items`.
fn framed(frame: Frame, title: Vec<Segment>, items: Vec<Item>, width: usize) -> Vec<Row> {
    let width = width.max(8);
    let inner = width - 4;
    let line = |n: usize| seg(frame.across.to_string().repeat(n), Role::Frame);
    let mut out = Vec::new();
    let mut items = items;
    let title_width = width_of(&title);
    if title_width + 6 <= width {
        let mut top = vec![seg(
            format!("{}{} ", frame.top_left, frame.across),
            Role::Frame,
        )];
        top.extend(title);
        top.push(seg(" ", Role::Frame));
        top.push(line(width - title_width - 5));
        top.push(seg(frame.top_right.to_string(), Role::Frame));
        out.push(top);
    } else {
        out.push(vec![
            seg(frame.top_left.to_string(), Role::Frame),
            line(width - 2),
            seg(frame.top_right.to_string(), Role::Frame),
        ]);
        items.insert(0, Item::Para(title));
    }
    let side = |row: Row| {
        let pad = inner.saturating_sub(width_of(&row));
        let mut r = vec![seg(format!("{} ", frame.down), Role::Frame)];
        r.extend(row);
        r.push(seg(" ".repeat(pad), Role::Text));
        r.push(seg(format!(" {}", frame.down), Role::Frame));
        r
    };
    for item in items {
        let rows = match item {
            Item::Para(segments) => wrap(&segments, inner, 2),
            Item::Rows(rows) => rows,
        };
        out.extend(rows.into_iter().map(side));
    }
    out.push(vec![
        seg(frame.bottom_left.to_string(), Role::Frame),
        line(width - 2),
        seg(frame.bottom_right.to_string(), Role::Frame),
    ]);
    out
}

fn member_line(s: &SessionPicture, g: &GroupPicture, m: &MemberPicture) -> Vec<Segment> {
    let mut line = vec![
        seg(format!("{} {} ", m.pid, m.comm), Role::Text),
        seg(
            format!("{} {}, parent {}", m.state, state_name(m.state), m.ppid),
            Role::Muted,
        ),
    ];
    match (m.pid == s.sid, m.pid == g.pgid) {
        (true, true) => line.push(seg(" · session and group leader", Role::Leader)),
        (true, false) => line.push(seg(" · session leader", Role::Leader)),
        (false, true) => line.push(seg(" · group leader", Role::Leader)),
        (false, false) => {}
    }
    line
}

fn gone_line(gone: &GoneProcess) -> Vec<Segment> {
    let children = match gone.children.as_slice() {
        [] => String::new(),
        [one] => format!("; its child {one}"),
        many => format!(
            "; its children {}",
            many.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let adopted = match &gone.adopted_by {
        Some(a) if !gone.children.is_empty() => format!(" was adopted by {} ({})", a.pid, a.comm),
        _ => String::new(),
    };
    vec![seg(
        format!(
            "{} {} exited since the last step{children}{adopted}",
            gone.pid, gone.comm
        ),
        Role::Gone,
    )]
}

fn group_box(s: &SessionPicture, g: &GroupPicture, width: usize) -> Vec<Row> {
    let foreground = s.foreground_pgid == Some(g.pgid);
    let mut title = vec![seg(format!("group {}", g.pgid), Role::Title)];
    if !g.leader_alive {
        title.push(seg(format!(" · leader {} gone", g.leader_pid), Role::Muted));
    }
    if foreground {
        let tty = s.tty.as_deref().unwrap_or("the terminal");
        title.push(seg(format!(" · FOREGROUND of {tty}"), Role::Terminal));
    }
    if g.orphaned {
        title.push(seg(" · ORPHANED", Role::Orphaned));
    }
    let mut items: Vec<Item> = s
        .gone
        .iter()
        .filter(|x| x.pgid == g.pgid)
        .map(|x| Item::Para(gone_line(x)))
        .collect();
    items.extend(g.members.iter().map(|m| Item::Para(member_line(s, g, m))));
    let frame = if foreground { FOREGROUND } else { GROUP };
    framed(frame, title, items, width)
}

fn session_box(s: &SessionPicture, width: usize) -> Vec<Row> {
    let mut title = vec![seg(format!("session {}", s.sid), Role::Title)];
    if !s.leader_alive {
        title.push(seg(format!(" · leader {} gone", s.leader_pid), Role::Muted));
    }
    title.push(match &s.tty {
        Some(tty) => seg(format!(" · terminal {tty}"), Role::Terminal),
        None => seg(" · no terminal", Role::Muted),
    });
    let inner = width.max(8) - 4;
    let mut items: Vec<Item> = s
        .groups
        .iter()
        .map(|g| Item::Rows(group_box(s, g, inner)))
        .collect();
    // An exited process whose group has no member left: drawn in a dashed, empty group.
    let mut emptied: Vec<i32> = s
        .gone
        .iter()
        .map(|x| x.pgid)
        .filter(|pgid| s.groups.iter().all(|g| g.pgid != *pgid))
        .collect();
    emptied.dedup();
    for pgid in emptied {
        let lines = s
            .gone
            .iter()
            .filter(|x| x.pgid == pgid)
            .map(|x| Item::Para(gone_line(x)))
            .collect();
        let title = vec![seg(format!("group {pgid} · now empty"), Role::Gone)];
        items.push(Item::Rows(framed(EMPTIED, title, lines, inner)));
    }
    let mut rows = framed(SESSION, title, items, width);
    if let Some(a) = &s.adopter {
        let adoptees: Vec<String> = s.adopted.iter().map(|p| p.to_string()).collect();
        let line = vec![seg(
            format!(
                "▲ outside the session: {} ({}), which adopted {}",
                a.pid,
                a.comm,
                adoptees.join(", ")
            ),
            Role::Adopter,
        )];
        rows.extend(wrap(&line, width, 2));
    }
    rows
}

/// Every session in `pictures` as rows at most `width` characters wide (boxes fill it).
pub fn drawing(pictures: &[SessionPicture], width: usize) -> Vec<Row> {
    if pictures.is_empty() {
        return vec![vec![seg(
            "no session picture: /proc could not be read",
            Role::Muted,
        )]];
    }
    pictures
        .iter()
        .flat_map(|s| session_box(s, width))
        .collect()
}

/// The drawing as plain lines, for the text tour and the Markdown handout.
pub fn text_lines(pictures: &[SessionPicture], width: usize) -> Vec<String> {
    drawing(pictures, width)
        .iter()
        .map(|r| row_text(r).trim_end().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Adopter;

    fn member(pid: i32, ppid: i32) -> MemberPicture {
        MemberPicture {
            pid,
            ppid,
            comm: "daemonlab".into(),
            state: 'S',
        }
    }

    /// After the first fork: the shell in the foreground, the job's group orphaned.
    fn after_fork() -> Vec<SessionPicture> {
        vec![SessionPicture {
            sid: 4200,
            leader_pid: 4200,
            leader_alive: true,
            tty: Some("pts/3".into()),
            foreground_pgid: Some(4200),
            groups: vec![
                GroupPicture {
                    pgid: 4200,
                    leader_pid: 4200,
                    leader_alive: true,
                    orphaned: true,
                    members: vec![member(4200, 1620)],
                },
                GroupPicture {
                    pgid: 4201,
                    leader_pid: 4201,
                    leader_alive: false,
                    orphaned: true,
                    members: vec![member(4213, 1)],
                },
            ],
            adopter: Some(Adopter {
                pid: 1,
                comm: "systemd".into(),
            }),
            adopted: vec![4213],
            gone: vec![GoneProcess {
                pid: 4201,
                comm: "daemonlab".into(),
                pgid: 4201,
                children: vec![4213],
                adopted_by: Some(Adopter {
                    pid: 1,
                    comm: "systemd".into(),
                }),
            }],
        }]
    }

    #[test]
    fn boxes_nest_and_say_what_they_mean_in_words() {
        let lines = text_lines(&after_fork(), 72);
        let text = lines.join("\n");
        insta::assert_snapshot!(text);
        for line in &lines {
            assert!(line.chars().count() <= 72, "{line}");
        }
        assert!(text.contains("session 4200 · terminal pts/3"));
        assert!(
            text.contains("┏━ group 4200 · FOREGROUND"),
            "heavy box: {text}"
        );
        assert!(text.contains("group 4201 · leader 4201 gone · ORPHANED"));
        assert!(text.contains("4201 daemonlab exited since the last step; its child 4213 was"));
        assert!(text.contains("outside the session: 1 (systemd), which adopted 4213"));
    }

    #[test]
    fn a_narrow_drawing_wraps_inside_its_boxes() {
        for width in [30, 44, 50] {
            let rows = drawing(&after_fork(), width);
            for row in &rows {
                let text = row_text(row);
                let framed = text.starts_with(['╔', '║', '╚']);
                assert!(
                    if framed {
                        text.chars().count() == width
                    } else {
                        text.chars().count() <= width
                    },
                    "{width}: {text:?}"
                );
            }
            let text: String = rows.iter().map(row_text).collect::<Vec<_>>().join(" ");
            assert!(text.contains("ORPHANED"), "{text}");
        }
    }

    #[test]
    fn nothing_to_draw_says_why() {
        assert_eq!(
            text_lines(&[], 40),
            ["no session picture: /proc could not be read"]
        );
    }
}
