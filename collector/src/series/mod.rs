//! The series store: metric samples per (tenant, UTC day), a head in memory and sealed blocks
//! compressed with pco. (Being built.)

pub mod select;
