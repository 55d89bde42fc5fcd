//! Work on many /proc entries split among the cores, shared so that no core idles while
//! work is left.
//!
//! Each `in_shares` call cuts its items into chunks that threads take one at a time: the
//! calling thread, its helpers, and any other thread of the same [`Board`] that would
//! otherwise only wait (the peer scan of `inspect` when it is done early, the caller of
//! `inspect` while it waits for that scan), which calls [`help_others`]. On this project's
//! 2-core virtual machines a new thread was often queued behind its creator for
//! milliseconds while the other core stood idle; with chunks taken on demand such a
//! thread delays nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The processors this process may run on, asked once (std reads the cgroup quota files
/// each time it is asked).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The `in_shares` calls in progress on a group of threads that help each other (those
/// of one `inspect`); a thread belongs to a board while it runs [`Member::enter`].
pub(crate) struct Board {
    state: Mutex<State>,
    /// Signalled when work is posted, when a member leaves or turns to helping, and when
    /// a helper leaves a call.
    changed: std::sync::Condvar,
}

struct State {
    open: Vec<Posted>,
    /// The members, counted from [`Board::member`] (before their thread runs) until they
    /// leave.
    members: usize,
    /// The members that have turned to `help_others` and not left: when all have, no
    /// more work can come.
    helping: usize,
}

thread_local! {
    /// The board of this thread, set by `Member::enter`; null outside it.
    static CURRENT: std::cell::Cell<*const Board> = const { std::cell::Cell::new(std::ptr::null()) };
    /// Whether this thread has called `help_others` in its current `enter`.
    static HELPED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Board {
    pub(crate) fn new() -> Self {
        Board {
            state: Mutex::new(State {
                open: Vec::new(),
                members: 0,
                helping: 0,
            }),
            changed: std::sync::Condvar::new(),
        }
    }

    /// Run `f` on this thread as a member of the board: its `in_shares` calls can be
    /// helped by the board's other members, and its `help_others` helps them.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        self.member().enter(f)
    }

    /// A place on the board for a thread about to be started, counted from now: a
    /// member that is done early must wait for its work even if it has not run yet (a
    /// new thread can wait milliseconds for a core).
    pub(crate) fn member(&self) -> Member<'_> {
        lock(&self.state).members += 1;
        Member(self)
    }
}

/// A counted place on a [`Board`], taken up by [`Member::enter`] (given back if dropped).
pub(crate) struct Member<'b>(&'b Board);

impl Member<'_> {
    /// Run `f` on this thread as this member of the board.
    pub(crate) fn enter<R>(self, f: impl FnOnce() -> R) -> R {
        let board = self.0;
        // From here `Depart` gives the place back.
        std::mem::forget(self);
        let _restore = Restore(
            CURRENT.with(|c| c.replace(board)),
            HELPED.with(|h| h.replace(false)),
        );
        // Dropped before `_restore`: it still sees this thread's flag for this board.
        let _depart = Depart(board);
        f()
    }
}

impl Drop for Member<'_> {
    /// A place that was never taken up.
    fn drop(&mut self) {
        lock(&self.0.state).members -= 1;
        self.0.changed.notify_all();
    }
}

/// A member leaving the board, by return or by unwinding.
struct Depart<'b>(&'b Board);

impl Drop for Depart<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.members -= 1;
        if HELPED.with(|h| h.get()) {
            state.helping -= 1;
        }
        drop(state);
        self.0.changed.notify_all();
    }
}

/// Puts back the board and help flag this thread had before `Member::enter`.
struct Restore(*const Board, bool);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
        HELPED.with(|h| h.set(self.1));
    }
}

/// This thread's board, if it is in one. The reference is used only inside the
/// `Board::enter` that set it, which borrows the board for its whole run.
fn current<'a>() -> Option<&'a Board> {
    // SAFETY: non-null only between `enter`'s set and restore, while `&self` is borrowed.
    CURRENT.with(|c| unsafe { c.get().as_ref() })
}

/// One `in_shares` call as another thread sees it. The pointers are to the call's own
/// stack frame: the call takes its entry off the board and then waits until no helper is
/// inside (`inside` is 0) before that frame goes away.
#[derive(Clone, Copy)]
struct Posted {
    take_one: *const (dyn Fn() -> bool + Sync),
    inside: *const AtomicUsize,
    exhausted: *const AtomicBool,
}

// SAFETY: the pointees are Sync (an Fn + Sync and atomics), and they outlive every use:
// a thread only dereferences them after raising `inside` while the entry is on the board
// (under the board's lock), and the posting call does not return before `inside` is 0
// again (see `Unpost`).
unsafe impl Send for Posted {}

/// `work` done on `items` in chunks, by the calling thread and, from `2 × min_share`
/// items on, by up to one helper thread per other core (at most 3) and by any thread of
/// the caller's [`Board`] in [`help_others`]: the results, one per chunk, in the items'
/// order.
///
/// Exists for the /proc reads that cost kernel time per item (descriptors, processes)
/// and that a second core shortens.
pub(crate) fn in_shares<T: Sync, R: Send>(
    items: &[T],
    min_share: usize,
    work: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let min_share = min_share.max(1);
    let board = current();
    // As many threads as shares of `min_share` items, at most one per core and 4. The
    // other members of the caller's board are not counted off: they may be busy, and
    // a helper that has never run is one the scheduler moves to an idle core at once
    // (the whole-process pairs of `cargo bench --bench inspect` are slower without).
    let helpers = cores().min(4).min(items.len() / min_share).max(1) - 1;
    if helpers == 0 {
        return vec![work(items)];
    }
    // A chunk is a quarter of the smallest share: small enough that the last one taken
    // keeps the others waiting little, large enough that taking one costs nothing.
    let chunks: Vec<&[T]> = items.chunks(min_share.div_ceil(4)).collect();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(chunks.len()));
    let exhausted = AtomicBool::new(false);
    let inside = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let take_one = || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(chunk) = chunks.get(i) else {
            exhausted.store(true, Ordering::Relaxed);
            return false;
        };
        // A chunk whose work panics on a thread in `help_others` is missing from `done`:
        // the flag makes this call panic too instead of returning without it.
        let unfinished = Unfinished(&failed);
        let result = work(chunk);
        std::mem::forget(unfinished);
        lock(&done).push((i, result));
        true
    };
    {
        // Other members of the board can take chunks too: the call is posted there.
        let _unpost = board.map(|board| {
            let take_one: &(dyn Fn() -> bool + Sync) = &take_one;
            // SAFETY (of the erased lifetime): see `Posted`; `_unpost` takes the entry off
            // and waits for its helpers before `take_one` and the atomics are dropped, on
            // return and on unwinding alike.
            let posted = Posted {
                take_one: unsafe {
                    std::mem::transmute::<
                        *const (dyn Fn() -> bool + Sync + '_),
                        *const (dyn Fn() -> bool + Sync + 'static),
                    >(take_one)
                },
                inside: &inside,
                exhausted: &exhausted,
            };
            lock(&board.state).open.push(posted);
            board.changed.notify_all();
            Unpost(board, posted)
        });
        std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| while take_one() {});
            }
            while take_one() {}
        });
    }
    assert!(
        !failed.load(Ordering::Acquire),
        "a thread helping with this work panicked"
    );
    let mut all = done.into_inner().unwrap_or_else(|e| e.into_inner());
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// For a member of a board that is done with its own work and would now only wait for
/// the others: takes chunks of their `in_shares` calls as they post them, and returns
/// once every member is done too (has called this, or is gone). A member posts nothing
/// after calling it. Outside a board it does nothing.
pub(crate) fn help_others() {
    let Some(board) = current() else {
        return;
    };
    let mut state = lock(&board.state);
    if !HELPED.with(|h| h.replace(true)) {
        state.helping += 1;
        board.changed.notify_all();
    }
    loop {
        // SAFETY: on the board, so its call waits for us once `inside` is raised.
        let open = state
            .open
            .iter()
            .find(|p| !unsafe { &*p.exhausted }.load(Ordering::Relaxed))
            .copied();
        match open {
            Some(posted) => {
                unsafe { &*posted.inside }.fetch_add(1, Ordering::AcqRel);
                drop(state);
                {
                    let _leave = Leave(board, posted.inside);
                    // SAFETY: `inside` is raised, so the posting call has not returned.
                    let take_one = unsafe { &*posted.take_one };
                    while take_one() {}
                }
                state = lock(&board.state);
            }
            // Every other member may still post work: wait for it until all are done.
            None if state.helping >= state.members => return,
            None => {
                // The timeout only bounds a missed wake-up: posts and departures signal.
                state = board
                    .changed
                    .wait_timeout(state, std::time::Duration::from_millis(1))
                    .map_or_else(|e| e.into_inner().0, |(s, _)| s);
            }
        }
    }
}

/// Marks a call failed if dropped, that is if the work of a chunk unwinds.
struct Unfinished<'a>(&'a AtomicBool);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Lowers a call's `inside` count when a helper leaves it, by return or by unwinding,
/// and wakes the call if it is waiting in `Unpost`.
struct Leave<'b>(&'b Board, *const AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        // SAFETY: raised by this helper, so the call is still waiting for it.
        unsafe { &*self.1 }.fetch_sub(1, Ordering::AcqRel);
        // Taken after the decrement: `Unpost` checks the count under this lock, so it
        // either sees 0 or is already waiting for this signal.
        drop(lock(&self.0.state));
        self.0.changed.notify_all();
    }
}

/// Takes a call off the board and waits for the helpers inside it to leave, by return or
/// by unwinding.
struct Unpost<'b>(&'b Board, Posted);

impl Drop for Unpost<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state
            .open
            .retain(|p| !std::ptr::eq(p.inside, self.1.inside));
        // SAFETY: the call's own atomics, alive until this guard is gone.
        let inside = unsafe { &*self.1.inside };
        // A helper inside is finishing its last chunk; `Leave` signals when it is out.
        while inside.load(Ordering::Acquire) != 0 {
            state = self
                .0
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A lock that a panicking helper did not make unusable: what it guards stays valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::ThreadId;

    #[test]
    fn chunks_come_back_in_order() {
        let items: Vec<u32> = (0..10_000).collect();
        let parts = in_shares(&items, 128, |part| part.to_vec());
        assert_eq!(parts.concat(), items);
    }

    #[test]
    fn small_inputs_stay_on_the_caller() {
        let caller = std::thread::current().id();
        let items = [1, 2, 3];
        let threads = in_shares(&items, 128, |_| std::thread::current().id());
        assert_eq!(threads, vec![caller]);
    }

    #[test]
    fn help_outside_a_board_does_nothing() {
        help_others();
    }

    /// Nothing posted, no member, no helper left on `board`.
    fn assert_left_clean(board: &Board) {
        let state = lock(&board.state);
        assert!(state.open.is_empty() && state.members == 0 && state.helping == 0);
    }

    /// A member of `board` in help_others until `stop`, beside `body` on the caller.
    fn with_helper<R>(board: &Board, body: impl FnOnce(ThreadId) -> R + Send, catch: bool) -> R
    where
        R: Send,
    {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let member = board.member();
            let helper = s.spawn(|| {
                member.enter(|| {
                    while !stop.load(Ordering::Relaxed) {
                        if catch {
                            let _ = std::panic::catch_unwind(help_others);
                        } else {
                            help_others();
                        }
                        std::thread::yield_now();
                    }
                })
            });
            let id = helper.thread().id();
            let result = board.enter(|| body(id));
            stop.store(true, Ordering::Relaxed);
            helper.join().unwrap();
            result
        })
    }

    #[test]
    fn a_waiting_member_of_the_board_helps() {
        let items: Vec<u64> = (0..4_000).collect();
        let board = Board::new();
        let helped = with_helper(
            &board,
            |helper| {
                let mut helped = false;
                for _ in 0..20 {
                    let parts = in_shares(&items, 64, |part| {
                        let on_helper = std::thread::current().id() == helper;
                        if !on_helper {
                            // Slow everywhere else, so the helper surely finds chunks.
                            std::thread::sleep(std::time::Duration::from_micros(500));
                        }
                        (on_helper, part.iter().sum::<u64>())
                    });
                    assert_eq!(
                        parts.iter().map(|p| p.1).sum::<u64>(),
                        items.iter().sum::<u64>()
                    );
                    helped |= parts.iter().any(|p| p.0);
                }
                helped
            },
            false,
        );
        assert!(
            helped,
            "the member in help_others took no chunk in 20 calls"
        );
        assert_left_clean(&board);
    }

    #[test]
    fn a_panic_on_a_helping_thread_is_not_a_missing_chunk() {
        // The work fails only on the board's helper: a call it helped must panic, not
        // come back short of that chunk.
        let items: Vec<u32> = (0..4_000).collect();
        let board = Board::new();
        let outcomes = with_helper(
            &board,
            |helper| {
                (0..5)
                    .map(|_| {
                        std::panic::catch_unwind(|| {
                            in_shares(&items, 64, |part| {
                                if std::thread::current().id() == helper {
                                    panic!("a helper's chunk fails");
                                }
                                std::thread::sleep(std::time::Duration::from_micros(500));
                                part.len()
                            })
                        })
                        .ok()
                    })
                    .collect::<Vec<_>>()
            },
            true,
        );
        assert!(
            outcomes.iter().any(Option::is_none),
            "the helper never took a chunk, so nothing was tested"
        );
        for lens in outcomes.into_iter().flatten() {
            assert_eq!(lens.iter().sum::<usize>(), items.len());
        }
    }

    #[test]
    fn a_member_done_first_helps_with_work_posted_later() {
        // The shape of `inspect`: one side is done before the other has even posted its
        // work; it must wait for that work and take part, and both must then return.
        let items: Vec<u32> = (0..2_000).collect();
        let board = Board::new();
        // The other threads' chunks wait (up to 5 s in all) for the early member to take
        // one, so a loaded machine that is slow to wake it does not end the work first.
        let early_id = std::sync::OnceLock::new();
        let early_took = AtomicBool::new(false);
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let (early, took) = std::thread::scope(|s| {
            let member = board.member();
            let early = s.spawn(|| {
                early_id.set(std::thread::current().id()).unwrap();
                member.enter(|| {
                    help_others();
                    std::thread::current().id()
                })
            });
            let took = board.enter(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let threads = in_shares(&items, 64, |_| {
                    let me = std::thread::current().id();
                    if early_id.get() == Some(&me) {
                        early_took.store(true, Ordering::SeqCst);
                    }
                    while !early_took.load(Ordering::SeqCst) && std::time::Instant::now() < give_up
                    {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                    me
                });
                help_others();
                threads
            });
            (early.join().unwrap(), took)
        });
        assert!(
            took.contains(&early),
            "the member waiting in help_others took none of the chunks posted after it began"
        );
        assert_left_clean(&board);
    }

    #[test]
    fn a_member_not_yet_started_is_waited_for() {
        // The caller is done and in help_others before the other thread has even begun:
        // it must not return (and leave that thread's work to one core) until the other
        // member has posted and finished.
        let items: Vec<u32> = (0..2_000).collect();
        let items = &items;
        let board = Board::new();
        let caller = std::thread::current().id();
        let late = board.enter(|| {
            std::thread::scope(|s| {
                let member = board.member();
                let late = s.spawn(move || {
                    // A thread the scheduler starts late.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    member.enter(|| {
                        in_shares(items, 64, |_| {
                            std::thread::sleep(std::time::Duration::from_micros(300));
                            std::thread::current().id()
                        })
                    })
                });
                help_others();
                late.join().unwrap()
            })
        });
        assert!(
            late.contains(&caller),
            "the caller returned from help_others before the late member posted"
        );
        assert_eq!(late.len(), items.len().div_ceil(16));
        assert_left_clean(&board);
    }
}
