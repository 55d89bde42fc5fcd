//! Work on many /proc entries split among the cores, shared so that no core idles while
//! work is left.
//!
//! Each `in_shares` call cuts its items into chunks that threads take one at a time: the
//! calling thread, its helpers, and any other thread of the same [`Board`] that would
//! otherwise only wait (the peer scan of `inspect` when it is done early, the caller of
//! `inspect` while it waits for that scan), which calls [`help_others`]. On this project's 2-core virtual
//! machines a new thread was often queued behind its creator for milliseconds while the
//! other core stood idle; with chunks taken on demand such a thread delays nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The processors this process may run on, asked once (std reads the cgroup quota files
/// each time it is asked).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The `in_shares` calls in progress on a group of threads that help each other (those
/// of one `inspect`); a thread belongs to a board while it runs [`Board::enter`].
pub struct Board {
    open: Mutex<Vec<Posted>>,
}

thread_local! {
    /// The board of this thread, set by `Board::enter`; null outside it.
    static CURRENT: std::cell::Cell<*const Board> = const { std::cell::Cell::new(std::ptr::null()) };
}

impl Board {
    pub fn new() -> Self {
        Board {
            open: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` on this thread as a member of the board: its `in_shares` calls can be
    /// helped, and its `help_others` helps, the board's other members.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(*const Board);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(self)));
        f()
    }
}

impl Default for Board {
    fn default() -> Self {
        Board::new()
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
    // As many threads as shares of `min_share` items, at most one per core and 4.
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
        let take_one: &(dyn Fn() -> bool + Sync) = &take_one;
        // SAFETY (of the erased lifetime): see `Posted`; `_unpost` below takes the entry
        // off and waits for its helpers before `take_one` and the atomics are dropped,
        // on return and on unwinding alike.
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
        let board = current();
        if let Some(board) = board {
            lock(&board.open).push(posted);
        }
        let _unpost = board.map(|board| Unpost(board, posted));
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

/// Takes chunks of the `in_shares` calls in progress on the other threads of this
/// thread's board until none is left: for a thread that would otherwise only wait for
/// their results. Outside a board it does nothing.
pub fn help_others() {
    let Some(board) = current() else {
        return;
    };
    loop {
        let posted = {
            let open = lock(&board.open);
            // SAFETY: on the board, so its call is waiting for us once `inside` is raised.
            let Some(p) = open
                .iter()
                .find(|p| !unsafe { &*p.exhausted }.load(Ordering::Relaxed))
                .copied()
            else {
                return;
            };
            unsafe { &*p.inside }.fetch_add(1, Ordering::AcqRel);
            p
        };
        let _leave = Leave(posted.inside);
        // SAFETY: `inside` is raised, so the posting call has not returned.
        let take_one = unsafe { &*posted.take_one };
        while take_one() {}
    }
}

/// Marks a call failed if dropped, that is if the work of a chunk unwinds.
struct Unfinished<'a>(&'a AtomicBool);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Lowers a call's `inside` count when a helper leaves it, by return or by unwinding.
struct Leave(*const AtomicUsize);

impl Drop for Leave {
    fn drop(&mut self) {
        // SAFETY: raised by this helper, so the call is still waiting for it.
        unsafe { &*self.0 }.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes a call off the board and waits for the helpers inside it to leave, by return or
/// by unwinding.
struct Unpost<'b>(&'b Board, Posted);

impl Drop for Unpost<'_> {
    fn drop(&mut self) {
        lock(&self.0.open).retain(|p| !std::ptr::eq(p.inside, self.1.inside));
        // SAFETY: the call's own atomics, alive until this guard is gone.
        let inside = unsafe { &*self.1.inside };
        // A helper inside is finishing its last chunk (a fraction of a millisecond).
        while inside.load(Ordering::Acquire) != 0 {
            std::thread::yield_now();
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

    /// A member of `board` in help_others until `stop`, beside `body` on the caller.
    fn with_helper<R>(board: &Board, body: impl FnOnce(ThreadId) -> R + Send, catch: bool) -> R
    where
        R: Send,
    {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let helper = s.spawn(|| {
                board.enter(|| {
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
        assert!(lock(&board.open).is_empty());
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
}
