//! PromQL evaluation over a `SeriesSource`. (Being built.)
