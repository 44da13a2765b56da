//! Splitting one large read or query over the cores: work over many series is cut into one
//! contiguous part per core, each part runs on its own scoped thread, and the results come
//! back in part order, so the answer is the same as done in one piece.

use crate::budget;

/// Work over at least this many series is split over the cores; below it, a thread costs
/// more than it saves.
pub(crate) const PARALLEL_SERIES: usize = 64;

/// How many parts work over `series` series is split into: one per core when there are
/// enough series, else one.
pub(crate) fn parts_for(series: usize) -> usize {
    if series >= PARALLEL_SERIES {
        cores()
    } else {
        1
    }
}

/// The cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Runs `work` on every part, each on its own thread when there are several, and returns
/// the results in the order of `parts`. A panic in a part is raised again here. The threads
/// keep the caller's query deadline (`budget`).
pub(crate) fn map_parts<P: Send, R: Send>(parts: Vec<P>, work: impl Fn(P) -> R + Sync) -> Vec<R> {
    if parts.len() <= 1 {
        return parts.into_iter().map(work).collect();
    }
    let work = &work;
    let deadline = budget::deadline();
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || budget::with_deadline(deadline, || work(part))))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Applies `work` to every item of `items`, each part of them on its own thread when there
/// are enough.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], work: impl Fn(&mut T) + Sync) {
    let per_part = items.len().div_ceil(parts_for(items.len())).max(1);
    map_parts(items.chunks_mut(per_part).collect(), |part| {
        part.iter_mut().for_each(&work);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_run_on_their_own_threads_and_results_keep_the_parts_order() {
        let parts: Vec<Vec<u32>> = (0..8).map(|part| vec![part; 3]).collect();
        let caller = std::thread::current().id();
        let results = map_parts(parts, |part| {
            (part.iter().sum::<u32>(), std::thread::current().id())
        });
        let sums: Vec<u32> = results.iter().map(|&(sum, _)| sum).collect();
        assert_eq!(sums, [0, 3, 6, 9, 12, 15, 18, 21]);
        assert!(results.iter().all(|&(_, thread)| thread != caller));
    }

    #[test]
    fn every_item_is_worked_on_once() {
        let mut items: Vec<u64> = (0..1000).collect();
        for_each_mut(&mut items, |item| *item *= 2);
        assert_eq!(items, (0..1000).map(|n| n * 2).collect::<Vec<u64>>());
    }

    #[test]
    fn one_part_runs_on_the_callers_thread() {
        let caller = std::thread::current().id();
        assert_eq!(
            map_parts(vec![5], |n| (n * 2, std::thread::current().id())),
            [(10, caller)]
        );
        assert_eq!(parts_for(PARALLEL_SERIES - 1), 1);
    }
}
