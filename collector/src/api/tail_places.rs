//! The places of live tails: at most `[search] max_tail_clients` in all, and at most
//! `[search] max_tail_clients_per_tenant` reading any one tenant, so that one team cannot
//! take every place and lock the others out.
//!
//! The rule a reader must not miss: a tail takes a place in the share of *every* tenant its
//! caller reads, all at once or none (a caller reading tenants `a` and `b` cannot get past
//! `a`'s share by also reading `b`). A caller that reads every tenant (`admin`) counts against
//! a share of its own, [`EVERY_TENANT`], not against each team's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The share `admin` tails (callers that read every tenant) count against. Not a valid tenant
/// name (`config::is_valid_tenant`), so it cannot be one.
pub const EVERY_TENANT: &str = "*";

/// Why no place was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailRefusal {
    #[error("too many live tails are open ([search] max_tail_clients); retry later")]
    AllTaken,
    #[error(
        "tenant {tenant:?} already has {share} live tails open, its share ([search] max_tail_clients_per_tenant); close one or retry later"
    )]
    TenantShareTaken { tenant: String, share: usize },
}

/// Places taken, in all and per tenant.
#[derive(Debug, Default)]
struct Taken {
    total: usize,
    per_tenant: HashMap<String, usize>,
}

/// The places of live tails, shared by every request.
#[derive(Debug)]
pub struct TailPlaces {
    max_total: usize,
    max_per_tenant: usize,
    taken: Mutex<Taken>,
}

impl TailPlaces {
    /// `max_total` places, at most `max_per_tenant` of them reading one tenant.
    pub fn new(max_total: usize, max_per_tenant: usize) -> TailPlaces {
        TailPlaces {
            max_total,
            max_per_tenant,
            taken: Mutex::new(Taken::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Taken> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for a tail reading `tenants` (`every_tenant`: an `admin` caller), or
    /// says why there is none. The place is given back when the `TailPlace` is dropped.
    pub fn take(
        self: &Arc<Self>,
        tenants: &[String],
        every_tenant: bool,
    ) -> Result<TailPlace, TailRefusal> {
        let mut shares: Vec<String> = if every_tenant {
            vec![EVERY_TENANT.to_owned()]
        } else {
            tenants.to_vec()
        };
        shares.sort();
        shares.dedup();
        let mut taken = self.lock();
        if taken.total >= self.max_total {
            return Err(TailRefusal::AllTaken);
        }
        for tenant in &shares {
            if taken.per_tenant.get(tenant).copied().unwrap_or(0) >= self.max_per_tenant {
                return Err(TailRefusal::TenantShareTaken {
                    tenant: tenant.clone(),
                    share: self.max_per_tenant,
                });
            }
        }
        taken.total += 1;
        for tenant in &shares {
            *taken.per_tenant.entry(tenant.clone()).or_default() += 1;
        }
        Ok(TailPlace {
            places: Arc::clone(self),
            shares,
        })
    }
}

/// One tail's place; given back when dropped.
#[derive(Debug)]
pub struct TailPlace {
    places: Arc<TailPlaces>,
    shares: Vec<String>,
}

impl Drop for TailPlace {
    fn drop(&mut self) {
        let mut taken = self.places.lock();
        taken.total -= 1;
        for tenant in &self.shares {
            if let Some(count) = taken.per_tenant.get_mut(tenant) {
                *count -= 1;
                if *count == 0 {
                    taken.per_tenant.remove(tenant);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_tenant_holds_at_most_its_share_and_others_still_get_places() {
        let places = Arc::new(TailPlaces::new(4, 2));
        let a = tenants(&["team-a"]);
        let held: Vec<TailPlace> = (0..2)
            .map(|_| places.take(&a, false).expect("within the share"))
            .collect();
        assert_eq!(
            places.take(&a, false).expect_err("over the share"),
            TailRefusal::TenantShareTaken {
                tenant: "team-a".to_owned(),
                share: 2
            }
        );
        let b = places
            .take(&tenants(&["team-b"]), false)
            .expect("team-b is not locked out");
        // Reading `team-a` too counts against its share: refused, and nothing taken.
        assert!(places.take(&tenants(&["team-b", "team-a"]), false).is_err());
        let _admin = places
            .take(&[], true)
            .expect("admins have a share of their own");
        assert_eq!(
            places.take(&tenants(&["team-c"]), false).expect_err("full"),
            TailRefusal::AllTaken
        );
        drop(b);
        drop(held);
        let _again = places
            .take(&a, false)
            .expect("places come back when tails end");
        assert_eq!(places.lock().total, 2);
    }
}
