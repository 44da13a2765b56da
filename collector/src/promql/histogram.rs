//! `histogram_quantile` over classic histograms: series that differ only in `le` are the
//! buckets of one histogram. Ported from Prometheus's `BucketQuantile` (`promql/quantile.go`),
//! including its repair of non-monotonic bucket counts.

/// Relative difference below which two bucket counts are taken as equal (float noise).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// One cumulative bucket: observations `<= upper_bound`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) upper_bound: f64,
    pub(crate) count: f64,
}

/// The `q`-quantile of a classic histogram, interpolating linearly inside the bucket it
/// falls in (from 0 for the lowest bucket if its bound is positive).
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
    if buckets
        .last()
        .is_none_or(|highest| highest.upper_bound != f64::INFINITY)
    {
        return f64::NAN;
    }
    coalesce(buckets);
    ensure_monotonic_and_ignore_small_deltas(buckets, SMALL_DELTA_TOLERANCE);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // Go's `sort.Search(len-1, count >= rank)`: the first such bucket, or len-1.
    let searched = &buckets[..buckets.len() - 1];
    let b = searched
        .iter()
        .position(|bucket| bucket.count >= rank)
        .unwrap_or(searched.len());
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Merges buckets with the same upper bound (the input is sorted).
fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for bucket in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper_bound == bucket.upper_bound => last.count += bucket.count,
            _ => merged.push(*bucket),
        }
    }
    *buckets = merged;
}

/// Silently equalizes counts that differ by float noise, then removes any decrease by
/// carrying the last accepted count forward.
fn ensure_monotonic_and_ignore_small_deltas(buckets: &mut [Bucket], tolerance: f64) {
    let mut previous = buckets[0].count;
    for bucket in buckets.iter_mut().skip(1) {
        let current = bucket.count;
        if current == previous {
            continue;
        }
        if almost_equal(previous, current, tolerance) || current < previous {
            bucket.count = previous;
            continue;
        }
        previous = current;
    }
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let absolute_sum = a.abs() + b.abs();
    let difference = (a - b).abs();
    if a == 0.0 || b == 0.0 || absolute_sum < MIN_NORMAL {
        return difference < epsilon * MIN_NORMAL;
    }
    difference / absolute_sum.min(f64::MAX) < epsilon
}
