//! `topk` and `bottomk`: per step and group, the `k` largest (smallest) samples, chosen with
//! the same heap moves as current Prometheus (Go's `container/heap`: push while there is
//! room, then overwrite the top and fix), so that among equal values the same series win as
//! there when it reads them in label order (as from its blocks). Prometheus 2.42 (Debian's)
//! popped and pushed instead, so its ties can differ.

use crate::promql::engine::{Evaluated, Evaluator, SeriesCollector, StepCursor, StepSeries};
use crate::promql::error::QueryError;

/// A sample kept for a group: `(input series, value)`.
type Kept = (usize, f64);

/// `topk(k, …)` when `top`, else `bottomk(k, …)`: the kept samples keep their input
/// series' labels; an instant query lists them best first.
pub(crate) fn top_k(
    ev: &mut Evaluator<'_>,
    top: bool,
    parameter: f64,
    input: &[StepSeries],
    series_group: &[usize],
    group_count: usize,
) -> Result<Evaluated, QueryError> {
    if !(parameter.is_finite() && parameter.abs() < 9.2e18) {
        return Err(QueryError::Execution(format!(
            "Scalar value {} overflows int64",
            crate::promql::value::format_value(parameter)
        )));
    }
    let k = (parameter.trunc() as i64).min(i64::try_from(input.len()).unwrap_or(i64::MAX));
    if k < 1 {
        return Ok(Evaluated::Vector(Vec::new()));
    }
    let k = usize::try_from(k).expect("k is positive");
    let heap = KeptHeap { top };
    let mut cursor = StepCursor::new(input.len());
    let mut present = Vec::new();
    let mut per_group: Vec<Vec<Kept>> = vec![Vec::new(); group_count];
    let mut collector = SeriesCollector::default();
    let mut slots: Vec<Option<usize>> = vec![None; input.len()];
    for ts in ev.grid.timestamps() {
        ev.check_timeout()?;
        cursor.gather(input, ts, &mut present);
        for group in &mut per_group {
            group.clear();
        }
        for &(series, value) in &present {
            heap.offer(&mut per_group[series_group[series]], k, (series, value));
        }
        for group in &mut per_group {
            // Best first, NaN last, as Prometheus sorts the heap in reverse (by insertion
            // for small k, so stable).
            group.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) if top => b.1.partial_cmp(&a.1).expect("not NaN"),
                (false, false) => a.1.partial_cmp(&b.1).expect("not NaN"),
            });
            for &(series, value) in group.iter() {
                let slot = collector.cached_slot(&mut slots, series, &input[series].labels);
                collector.push_to(slot, ts, value)?;
            }
        }
    }
    Ok(Evaluated::Vector(collector.finish()))
}

/// The heap of one group's kept samples, worst on top: Prometheus's `vectorByValueHeap`
/// (for `topk`) or `vectorByReverseValueHeap` (for `bottomk`).
struct KeptHeap {
    top: bool,
}

impl KeptHeap {
    /// The heap order: `a` nearer the top than `b`. NaN is always worst.
    fn less(&self, a: f64, b: f64) -> bool {
        a.is_nan() || if self.top { a < b } else { a > b }
    }

    /// Offers one sample to a heap of at most `k`, as Prometheus's aggregation does: pushed
    /// while there is room, else it replaces the top if better, and sinks.
    fn offer(&self, heap: &mut Vec<Kept>, k: usize, sample: Kept) {
        if heap.len() < k {
            heap.push(sample);
            let last = heap.len() - 1;
            self.up(heap, last);
            return;
        }
        let worst = heap[0].1;
        let better = if self.top {
            worst < sample.1
        } else {
            worst > sample.1
        };
        if better || (worst.is_nan() && !sample.1.is_nan()) {
            heap[0] = sample;
            if k > 1 {
                self.down(heap, 0);
            }
        }
    }

    /// Go's `heap.up`.
    fn up(&self, heap: &mut [Kept], mut child: usize) {
        while child > 0 {
            let parent = (child - 1) / 2;
            if !self.less(heap[child].1, heap[parent].1) {
                break;
            }
            heap.swap(parent, child);
            child = parent;
        }
    }

    /// Go's `heap.down`.
    fn down(&self, heap: &mut [Kept], mut parent: usize) {
        loop {
            let left = 2 * parent + 1;
            if left >= heap.len() {
                break;
            }
            let mut child = left;
            if left + 1 < heap.len() && self.less(heap[left + 1].1, heap[left].1) {
                child = left + 1;
            }
            if !self.less(heap[child].1, heap[parent].1) {
                break;
            }
            heap.swap(parent, child);
            parent = child;
        }
    }
}
