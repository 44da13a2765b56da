//! The functions over a range vector (`rate(x[5m])`, `avg_over_time(x[1h])`, …), each on one
//! series' samples inside one window. Ported from Prometheus's `promql/functions.go`, float
//! samples only; `None` means "no output for this step", as Prometheus drops the element.

/// Where the window lies, in unix milliseconds: samples are in `(start_ms, end_ms]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) range_ms: i64,
}

/// Adds `increment` to a Kahan–Neumaier compensated `sum`, returning `(sum, compensation)`.
pub(crate) fn kahan_inc(increment: f64, sum: f64, compensation: f64) -> (f64, f64) {
    let total = sum + increment;
    let compensation = if total.is_infinite() {
        0.0
    } else if sum.abs() >= increment.abs() {
        compensation + ((sum - total) + increment)
    } else {
        compensation + ((increment - total) + sum)
    };
    (total, compensation)
}

/// `rate`, `increase` and `delta`: the difference between the first and last sample (plus
/// counter resets for counters), extrapolated towards the window's edges as Prometheus's
/// `extrapolatedRate` does: all the way if the first/last sample is within 1.1 average
/// intervals of the edge, else half an average interval; a counter is never extrapolated
/// below zero. `may_reset` false says the caller knows the window has no counter reset (the
/// scan for them is skipped).
pub(crate) fn extrapolated_rate(
    samples: &[(i64, f64)],
    window: Window,
    is_counter: bool,
    is_rate: bool,
    may_reset: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let last_index = samples.len() - 1;
    let (first_t, first_value) = samples[0];
    let (last_t, last_value) = samples[last_index];
    let mut result = last_value - first_value;
    if is_counter && may_reset {
        for pair in samples.windows(2) {
            if pair[1].1 < pair[0].1 {
                result += pair[0].1;
            }
        }
    }
    let mut duration_to_start = (first_t - window.start_ms) as f64 / 1000.0;
    let mut duration_to_end = (window.end_ms - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let average_interval = sampled_interval / last_index as f64;
    let threshold = average_interval * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_interval / 2.0;
    }
    if is_counter {
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first_value >= 0.0 {
            duration_to_zero = sampled_interval * (first_value / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_interval / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= window.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples; for `irate` a drop is a counter reset,
/// and the later value is taken as the increase.
pub(crate) fn instant_value(samples: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let [.., (previous_t, previous), (last_t, last)] = samples else {
        return None;
    };
    let interval_ms = last_t - previous_t;
    if interval_ms == 0 {
        return None;
    }
    let mut result = *last;
    // `!(last < previous)` rather than `>=` so that NaN counts as "no reset", as in Go.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !is_rate || !(last < previous) {
        result = last - previous;
    }
    if is_rate {
        result /= interval_ms as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept at `intercept_ms`, with compensated sums.
pub(crate) fn linear_regression(samples: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let initial_y = samples[0].1;
    let mut constant_y = true;
    for (index, &(t, value)) in samples.iter().enumerate() {
        if constant_y && index > 0 && value != initial_y {
            constant_y = false;
        }
        n += 1.0;
        let x = (t - intercept_ms) as f64 / 1000.0;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(value, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * value, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if constant_y {
        if initial_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, initial_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let covariance_xy = sum_xy - sum_x * sum_y / n;
    let variance_x = sum_x2 - sum_x * sum_x / n;
    let slope = covariance_xy / variance_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: the regression slope per second.
pub(crate) fn deriv(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    Some(linear_regression(samples, samples[0].0).0)
}

/// `predict_linear`: the regression line's value `seconds` after `at_ms`.
pub(crate) fn predict_linear(samples: &[(i64, f64)], at_ms: i64, seconds: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, at_ms);
    Some(slope * seconds + intercept)
}

/// `avg_over_time`: a compensated sum divided by the count, switching to an incremental mean
/// if the sum would overflow.
pub(crate) fn avg_over_time(samples: &[(i64, f64)]) -> f64 {
    let (mut sum, mut count) = (samples[0].1, 1.0);
    let (mut mean, mut compensation) = (0.0, 0.0);
    let mut incremental = false;
    for (index, &(_, value)) in samples.iter().enumerate().skip(1) {
        count = (index + 1) as f64;
        if !incremental {
            let (new_sum, new_compensation) = kahan_inc(value, sum, compensation);
            if !new_sum.is_infinite() {
                (sum, compensation) = (new_sum, new_compensation);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            compensation /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, compensation) = kahan_inc(value / count, q * mean, q * compensation);
    }
    if incremental {
        mean + compensation
    } else {
        sum / count + compensation / count
    }
}

/// `sum_over_time`, compensated.
pub(crate) fn sum_over_time(samples: &[(i64, f64)]) -> f64 {
    let (mut sum, mut compensation) = (0.0, 0.0);
    for &(_, value) in samples {
        (sum, compensation) = kahan_inc(value, sum, compensation);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + compensation
    }
}

/// `min_over_time` (`max` false) and `max_over_time` (`max` true); NaN loses to any number.
pub(crate) fn extreme_over_time(samples: &[(i64, f64)], max: bool) -> f64 {
    let mut extreme = samples[0].1;
    for &(_, value) in samples {
        let better = if max {
            value > extreme
        } else {
            value < extreme
        };
        if better || extreme.is_nan() {
            extreme = value;
        }
    }
    extreme
}

/// `stdvar_over_time` (and, squared-rooted, `stddev_over_time`).
pub(crate) fn variance_over_time(samples: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, value) in samples {
        count += 1.0;
        let delta = value - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (value - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `changes`: how often the value changed (NaN to NaN is no change).
pub(crate) fn changes(samples: &[(i64, f64)]) -> f64 {
    samples
        .windows(2)
        .filter(|pair| pair[1].1 != pair[0].1 && !(pair[1].1.is_nan() && pair[0].1.is_nan()))
        .count() as f64
}

/// `resets`: how often the value dropped.
pub(crate) fn resets(samples: &[(i64, f64)]) -> f64 {
    samples
        .windows(2)
        .filter(|pair| pair[1].1 < pair[0].1)
        .count() as f64
}

/// The `q`-quantile of `values` (sorted here), interpolating between neighbours as
/// Prometheus's `quantile` does.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Go's `vectorByValueHeap`.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).expect("neither is NaN"),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}
