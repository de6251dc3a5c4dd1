//! Admission limits: slots for work that a client holds open (a webhook body being received),
//! counted in all and per peer address, so that one address cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slots held per address.
type Held = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Slots: at most `total` at once, at most `per_peer` of them held by one address.
#[derive(Debug, Clone)]
pub struct Slots {
    total: Arc<Semaphore>,
    per_peer: usize,
    held: Held,
}

/// Gives one of `ip`'s slots back.
fn give_back(held: &Held, ip: IpAddr) {
    let mut held = held.lock().expect("slots lock");
    if let Some(n) = held.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            held.remove(&ip);
        }
    }
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every slot is taken.
    Total,
    /// This address holds its share.
    Peer,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    peer: Option<(IpAddr, Held)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, held)) = &self.peer {
            give_back(held, *ip);
        }
    }
}

impl Slots {
    pub fn new(total: usize, per_peer: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_peer: per_peer.max(1),
            held: Arc::default(),
        }
    }

    /// Takes a slot at once, or says which limit is reached. `peer` is the client's address
    /// (none: only the total counts).
    pub fn try_take(&self, peer: Option<IpAddr>) -> Result<Slot, Full> {
        let peer = match peer {
            None => None,
            Some(ip) => {
                let mut held = self.held.lock().expect("slots lock");
                let n = held.entry(ip).or_insert(0);
                if *n >= self.per_peer {
                    return Err(Full::Peer);
                }
                *n += 1;
                Some((ip, self.held.clone()))
            }
        };
        let slot = Slot {
            _permit: match self.total.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    if let Some((ip, held)) = peer {
                        give_back(&held, ip);
                    }
                    return Err(Full::Total);
                }
            },
            peer,
        };
        Ok(slot)
    }

    /// Slots free in all (for tests and metrics).
    pub fn available(&self) -> usize {
        self.total.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_slot_and_slots_come_back() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let a1 = slots.try_take(Some(a)).unwrap();
        let _a2 = slots.try_take(Some(a)).unwrap();
        assert_eq!(slots.try_take(Some(a)).unwrap_err(), Full::Peer);
        let _b1 = slots.try_take(Some(b)).unwrap();
        assert_eq!(slots.try_take(Some(b)).unwrap_err(), Full::Total);
        assert_eq!(slots.try_take(None).unwrap_err(), Full::Total);
        assert_eq!(slots.available(), 0);
        drop(a1);
        assert_eq!(slots.available(), 1);
        let _a3 = slots.try_take(Some(a)).unwrap();
        // b's refused attempt gave its share back: b holds one, may take one more later.
        assert_eq!(slots.held.lock().unwrap().get(&b), Some(&1));
    }
}
