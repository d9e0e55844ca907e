//! The crypto ceiling of one circuit: how fast bulk data could cross a
//! 3-relay circuit if the parties did nothing but the cryptography the
//! protocol requires of them, measured in the same run as the bulk figure
//! so that both see the same machine and the same load.
//!
//! The work per cell is exactly what the data path does, with the same
//! primitives and the same sizes, and nothing else (no framing, no copies
//! between buffers, no sockets, no scheduling):
//!
//! - the client removes four CGO layers (three relays and the destination,
//!   `ClientLayers::originate_forward` to hop 3) from a cell carrying
//!   [`FRAGMENT_LEN`] bytes of the message;
//! - each of the four links seals the cells in messages of
//!   [`CELLS_PER_MESSAGE`] cells (the most a link message holds, so the
//!   fewest AEAD calls) and the next party opens them (ChaCha20-Poly1305,
//!   `CipherState`, as the link does);
//! - each relay and the destination apply their CGO layer
//!   (`RelayLayer::receive_forward`; the destination recognises the cell
//!   and ratchets its keys, as it does for real).
//!
//! Each party's CPU time is measured on its own, single-threaded (and
//! `veil bench` measures twice, before and after its networks, keeping
//! each party's faster figure). With `c`
//! cores the five parties can at best share the work evenly, but no party
//! can go faster than its own work allows, so the ceiling is
//! `bytes / max(total / c, slowest party)`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use veil_core::cgo::{CellBody, ClientHop, ClientLayers, ForwardOutcome, RelayLayer, Seed};
use veil_core::cgo::{BODY_LEN, PAYLOAD_LEN, SEED_LEN};
use veil_core::link::CELL_LEN;
use veil_core::message::FRAGMENT_LEN;
use veil_core::noise::CipherState;

/// Cells in one link message when a link is busy (the link spec's limit).
pub(super) const CELLS_PER_MESSAGE: usize = 31;
/// Hops whose layer a cell crosses: three relays and the destination.
const HOPS: usize = 4;
/// Parties on the path: the client, three relays, the destination.
const PARTIES: usize = HOPS + 1;
/// Bytes of a `CELLS` link message before its cells: kind and count.
const CELLS_HEADER: usize = 2;
/// The AEAD tag after a link message.
const AEAD_TAG: usize = 16;
/// Where the CGO body starts in a cell: circuit id (4) and command (1).
const BODY_OFFSET: usize = CELL_LEN - BODY_LEN;
/// The user messages of the bulk transfer, whose fragments fill the cells.
const MESSAGE_LEN: usize = 64 * 1024;
/// Repeats; each party's fastest repeat counts (the ceiling is a best case).
const REPEATS: usize = 3;

/// What the ceiling run measured.
#[derive(Debug, Clone)]
pub(super) struct Ceiling {
    /// Message bytes carried per repeat.
    pub bytes: u64,
    /// Each party's CPU time for those bytes: client, relays, destination.
    pub per_party: [Duration; PARTIES],
    /// Cores this process may run on.
    pub cores: usize,
}

impl Ceiling {
    /// The five parties' CPU time together.
    pub fn total(&self) -> Duration {
        self.per_party.iter().sum()
    }

    /// The highest bulk rate (bytes/s) on `cores` cores.
    pub fn rate(&self, cores: usize) -> f64 {
        let cores = cores.clamp(1, PARTIES) as f64;
        let slowest = self.per_party.iter().max().copied().unwrap_or_default();
        let bound = (self.total().as_secs_f64() / cores).max(slowest.as_secs_f64());
        self.bytes as f64 / bound.max(1e-9)
    }

    /// Each party's faster figure of two measurements of the same bytes.
    pub fn faster(&self, other: &Ceiling) -> Ceiling {
        let mut per_party = self.per_party;
        for (mine, theirs) in per_party.iter_mut().zip(other.per_party) {
            *mine = (*mine).min(theirs);
        }
        Ceiling {
            per_party,
            ..self.clone()
        }
    }

    /// CPU per mebibyte of message, all parties together.
    pub fn cpu_per_mib(&self) -> Duration {
        let mib = (self.bytes as f64 / (1024.0 * 1024.0)).max(1e-9);
        self.total().div_f64(mib)
    }
}

fn seed(hop: usize, direction: u8) -> Seed {
    let mut bytes = [0u8; SEED_LEN];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8) ^ (hop as u8).wrapping_mul(31) ^ direction;
    }
    Seed(bytes)
}

/// One sealed link between two parties.
struct Link {
    seal: CipherState,
    open: CipherState,
}

impl Link {
    fn new(index: usize) -> Self {
        let key = [index as u8 ^ 0x5a; 32];
        Link {
            seal: CipherState::new(key),
            open: CipherState::new(key),
        }
    }
}

/// The cells of a link message of `batch` cells, in `wire`.
fn cells_of(wire: &mut [u8], batch: usize) -> Result<&mut [u8], String> {
    wire.get_mut(CELLS_HEADER..CELLS_HEADER + batch * CELL_LEN)
        .ok_or_else(|| "ceiling: link message buffer too small".to_string())
}

/// The CGO body of one cell.
fn body_of(cell: &mut [u8]) -> Result<&mut [u8; BODY_LEN], String> {
    cell.get_mut(BODY_OFFSET..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "ceiling: cell size".to_string())
}

/// Carries `bytes` of message through the path once; returns each party's
/// time for each link message's worth of cells.
fn carry(bytes: usize) -> Result<Vec<[Duration; PARTIES]>, String> {
    let mut client = ClientLayers::new();
    let mut relays = Vec::with_capacity(HOPS);
    for hop in 0..HOPS {
        client
            .push(ClientHop::new(&seed(hop, 1), &seed(hop, 2)))
            .map_err(|e| format!("ceiling: {e}"))?;
        relays.push(RelayLayer::new(&seed(hop, 1), &seed(hop, 2)));
    }
    let mut links: Vec<Link> = (0..HOPS).map(Link::new).collect();
    let cells_per_message = MESSAGE_LEN.div_ceil(FRAGMENT_LEN);
    let cells = (bytes / MESSAGE_LEN).max(1) * cells_per_message;
    let mut wire = vec![0u8; CELLS_HEADER + CELLS_PER_MESSAGE * CELL_LEN + AEAD_TAG];
    let mut payload = [0u8; PAYLOAD_LEN];
    let mut sent = 0;
    let mut times = Vec::with_capacity(cells.div_ceil(CELLS_PER_MESSAGE));
    while sent < cells {
        let mut spent = [Duration::ZERO; PARTIES];
        let batch = (cells - sent).min(CELLS_PER_MESSAGE);
        let plaintext = CELLS_HEADER + batch * CELL_LEN;
        let ad = (plaintext as u16 + AEAD_TAG as u16).to_be_bytes();
        // The client: a fragment's worth of message in each cell, every
        // layer removed, the batch sealed onto the first link.
        let started = Instant::now();
        for (i, cell) in cells_of(&mut wire, batch)?
            .chunks_exact_mut(CELL_LEN)
            .enumerate()
        {
            payload
                .iter_mut()
                .zip(((sent + i) as u64).to_le_bytes())
                .for_each(|(p, b)| *p = b);
            let body = client
                .originate_forward(HOPS - 1, 2, &payload)
                .map_err(|e| format!("ceiling: {e}"))?;
            *body_of(cell)? = body.to_bytes();
        }
        let (first, hops) = links
            .split_first_mut()
            .ok_or_else(|| "ceiling: no links".to_string())?;
        first
            .seal
            .encrypt_in_place(&ad, &mut wire, plaintext)
            .map_err(|e| format!("ceiling: seal: {e}"))?;
        let mut time = spent.iter_mut();
        if let Some(t) = time.next() {
            *t += started.elapsed();
        }
        // Each hop: open, apply its layer to every cell, seal onward (the
        // destination only opens and recognises).
        let mut opening = Some(&mut first.open);
        let mut onward = hops.iter_mut();
        for (hop, (relay, t)) in relays.iter_mut().zip(time).enumerate() {
            let started = Instant::now();
            let sealed = wire
                .get_mut(..plaintext + AEAD_TAG)
                .ok_or_else(|| "ceiling: link message buffer too small".to_string())?;
            opening
                .take()
                .ok_or_else(|| "ceiling: no link".to_string())?
                .decrypt_in_place(&ad, sealed)
                .map_err(|e| format!("ceiling: open at hop {hop}: {e}"))?;
            let last = hop == HOPS - 1;
            for cell in cells_of(&mut wire, batch)?.chunks_exact_mut(CELL_LEN) {
                let body_bytes = body_of(cell)?;
                let mut body = CellBody::from_bytes(body_bytes);
                let outcome = relay.receive_forward(2, &mut body);
                if (outcome == ForwardOutcome::Recognised) != last {
                    return Err(format!(
                        "ceiling: hop {hop} got {outcome:?} for a cell to hop {}",
                        HOPS - 1
                    ));
                }
                *body_bytes = body.to_bytes();
            }
            if let Some(next) = onward.next() {
                next.seal
                    .encrypt_in_place(&ad, &mut wire, plaintext)
                    .map_err(|e| format!("ceiling: seal at hop {hop}: {e}"))?;
                opening = Some(&mut next.open);
            }
            *t += started.elapsed();
        }
        black_box(&wire);
        times.push(spent);
        sent += batch;
    }
    Ok(times)
}

/// Measures the ceiling with `bytes` of message per repeat (rounded to
/// whole 64 KiB messages). Every repeat does the same work, so for each
/// link message and party the fastest of the repeats counts: on a shared
/// machine a thread is preempted now and then, and a preemption inside a
/// few microseconds of work would otherwise be counted as crypto.
pub(super) fn measure(bytes: usize) -> Result<Ceiling, String> {
    let bytes = (bytes / MESSAGE_LEN).max(1) * MESSAGE_LEN;
    let mut best = carry(bytes)?;
    for _ in 1..REPEATS {
        for (kept, again) in best.iter_mut().zip(carry(bytes)?) {
            for (k, a) in kept.iter_mut().zip(again) {
                *k = (*k).min(a);
            }
        }
    }
    let mut per_party = [Duration::ZERO; PARTIES];
    for batch in &best {
        for (total, t) in per_party.iter_mut().zip(batch) {
            *total += *t;
        }
    }
    Ok(Ceiling {
        bytes: bytes as u64,
        per_party,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hop_passes_on_and_the_destination_recognises() {
        // `carry` fails if a relay recognises a cell meant for the
        // destination, or the destination does not: the layers line up.
        let times = carry(2 * MESSAGE_LEN).unwrap();
        // 2 x 141 cells: 9 full link messages and one of 3 cells.
        assert_eq!(times.len(), 10);
        assert!(times.iter().all(|t| t.iter().all(|d| !d.is_zero())));
    }

    #[test]
    fn the_ceiling_is_bounded_by_the_slowest_party() {
        let c = Ceiling {
            bytes: 1_000_000,
            per_party: [
                Duration::from_millis(40),
                Duration::from_millis(10),
                Duration::from_millis(10),
                Duration::from_millis(10),
                Duration::from_millis(10),
            ],
            cores: 2,
        };
        // One core: all 80 ms in turn.
        assert!((c.rate(1) - 12_500_000.0).abs() < 1.0);
        // Two cores: 40 ms each, and the client alone needs 40 ms.
        assert!((c.rate(2) - 25_000_000.0).abs() < 1.0);
        // Four cores cannot beat the client's 40 ms.
        assert!((c.rate(4) - 25_000_000.0).abs() < 1.0);
        assert_eq!(
            c.cpu_per_mib(),
            Duration::from_millis(80).div_f64(1_000_000.0 / 1_048_576.0)
        );
    }
}
