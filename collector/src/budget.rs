//! The time budget of the query running on this thread: `within_budget` (api/mod.rs) sets a
//! deadline around a query's blocking work, `parallel::map_parts` carries it to the threads it
//! spawns, and the index checks it between partitions, so a query answered 503 for taking too
//! long stops within a partition's work instead of running on unobserved.

use std::cell::Cell;

use tokio::time::Instant;

use crate::error::{Error, Result};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `work` with `deadline` (none: no limit) as this thread's deadline.
pub fn with_deadline<T>(deadline: Option<Instant>, work: impl FnOnce() -> T) -> T {
    let outer = DEADLINE.replace(deadline);
    let result = work();
    DEADLINE.set(outer);
    result
}

/// This thread's deadline.
pub fn deadline() -> Option<Instant> {
    DEADLINE.get()
}

/// `Error::OverBudget` once this thread's deadline has passed.
pub fn check() -> Result<()> {
    match DEADLINE.get() {
        Some(deadline) if Instant::now() >= deadline => Err(Error::OverBudget),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::parallel;

    #[test]
    fn a_passed_deadline_fails_the_check_here_and_on_the_threads_work_is_split_over() {
        assert!(check().is_ok(), "no deadline, no limit");
        let passed = Instant::now() - Duration::from_millis(1);
        with_deadline(Some(passed), || {
            assert!(matches!(check(), Err(Error::OverBudget)));
            let parts: Vec<Result<()>> = parallel::map_parts(vec![(); 4], |()| check());
            assert!(
                parts
                    .iter()
                    .all(|part| matches!(part, Err(Error::OverBudget)))
            );
        });
        assert!(check().is_ok(), "the deadline ends with its work");
        let later = Instant::now() + Duration::from_secs(3600);
        with_deadline(Some(later), || assert!(check().is_ok()));
    }
}
