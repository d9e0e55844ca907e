//! An IP medium in RAM for tests and self-tests: a hub that carries IPv4
//! packets between smoltcp interfaces (`Medium::Ip`) by destination
//! address, with deterministic faults (drop, duplicate, reorder).
//!
//! No allocation: every port has a fixed ring of `FRAMES` packets of at
//! most `MTU` bytes; a packet that finds its ring full is dropped, as a
//! real queue would, and TCP retransmits it.

use core::net::Ipv4Addr;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant as NetInstant;

/// Faults applied to every packet, in parts per thousand. The choices come
/// from a xorshift generator with the hub's seed, so a run is repeatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Faults {
    /// Packets lost.
    pub drop_per_mille: u16,
    /// Packets delivered twice.
    pub duplicate_per_mille: u16,
    /// Packets delivered before the one queued ahead of them.
    pub reorder_per_mille: u16,
}

/// What the hub did, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HubStats {
    /// Packets queued for a port.
    pub delivered: u64,
    /// Packets lost on purpose.
    pub dropped: u64,
    /// Extra copies queued.
    pub duplicated: u64,
    /// Packets swapped with the one ahead.
    pub reordered: u64,
    /// Packets lost because the port's ring was full.
    pub overflowed: u64,
    /// Packets for an address no port has, or not IPv4.
    pub unroutable: u64,
}

#[derive(Debug)]
struct Ring<const FRAMES: usize, const MTU: usize> {
    frames: [[u8; MTU]; FRAMES],
    lens: [usize; FRAMES],
    head: usize,
    len: usize,
}

impl<const FRAMES: usize, const MTU: usize> Ring<FRAMES, MTU> {
    const fn new() -> Self {
        Ring {
            frames: [[0; MTU]; FRAMES],
            lens: [0; FRAMES],
            head: 0,
            len: 0,
        }
    }

    fn slot(&self, n: usize) -> usize {
        self.head.wrapping_add(n).checked_rem(FRAMES).unwrap_or(0)
    }

    fn push(&mut self, packet: &[u8]) -> bool {
        if self.len >= FRAMES || packet.len() > MTU {
            return false;
        }
        let i = self.slot(self.len);
        if let (Some(frame), Some(len)) = (self.frames.get_mut(i), self.lens.get_mut(i)) {
            if let Some(dst) = frame.get_mut(..packet.len()) {
                dst.copy_from_slice(packet);
                *len = packet.len();
                self.len = self.len.saturating_add(1);
                return true;
            }
        }
        false
    }

    fn pop(&mut self, out: &mut [u8; MTU]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let i = self.head;
        let len = *self.lens.get(i)?;
        *out = *self.frames.get(i)?;
        self.head = self.slot(1);
        self.len = self.len.saturating_sub(1);
        Some(len)
    }
}

/// A hub with `PORTS` ports, each an interface with one IPv4 address.
#[derive(Debug)]
pub struct Hub<const PORTS: usize, const FRAMES: usize, const MTU: usize> {
    addrs: [Ipv4Addr; PORTS],
    rings: [Ring<FRAMES, MTU>; PORTS],
    /// A packet held back per port, delivered after the next one.
    held: [Ring<1, MTU>; PORTS],
    faults: Faults,
    rng: u64,
    stats: HubStats,
}

impl<const PORTS: usize, const FRAMES: usize, const MTU: usize> Hub<PORTS, FRAMES, MTU> {
    /// A hub whose port `i` has address `addrs[i]`.
    pub const fn new(addrs: [Ipv4Addr; PORTS], faults: Faults, seed: u64) -> Self {
        Hub {
            addrs,
            rings: [const { Ring::new() }; PORTS],
            held: [const { Ring::new() }; PORTS],
            faults,
            rng: seed | 1,
            stats: HubStats {
                delivered: 0,
                dropped: 0,
                duplicated: 0,
                reordered: 0,
                overflowed: 0,
                unroutable: 0,
            },
        }
    }

    /// What the hub did so far.
    pub fn stats(&self) -> HubStats {
        self.stats
    }

    /// Changes the faults from now on.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Packets waiting for delivery.
    pub fn in_flight(&self) -> usize {
        let queued: usize = self.rings.iter().map(|r| r.len).sum();
        let held: usize = self.held.iter().map(|h| h.len).sum();
        queued.saturating_add(held)
    }

    /// The device of port `index`, for one `Interface::poll`.
    pub fn port(&mut self, index: usize) -> Port<'_, PORTS, FRAMES, MTU> {
        Port { hub: self, index }
    }

    fn chance(&mut self, per_mille: u16) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        per_mille > 0 && (self.rng % 1000) < u64::from(per_mille)
    }

    /// Routes one IPv4 packet to the port that owns its destination.
    fn send(&mut self, packet: &[u8]) {
        let dst = match packet.get(16..20) {
            Some(&[a, b, c, d]) if packet.first().is_some_and(|v| v >> 4 == 4) => {
                Ipv4Addr::new(a, b, c, d)
            }
            _ => {
                self.stats.unroutable = self.stats.unroutable.saturating_add(1);
                return;
            }
        };
        let Some(port) = self.addrs.iter().position(|a| *a == dst) else {
            self.stats.unroutable = self.stats.unroutable.saturating_add(1);
            return;
        };
        if self.chance(self.faults.drop_per_mille) {
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            return;
        }
        let copies = if self.chance(self.faults.duplicate_per_mille) {
            2
        } else {
            1
        };
        let reorder = self.chance(self.faults.reorder_per_mille);
        let (Some(ring), Some(held)) = (self.rings.get_mut(port), self.held.get_mut(port)) else {
            return;
        };
        if reorder && held.push(packet) {
            // Goes after the next packet for this port (or at the next
            // receive, if none comes first).
            self.stats.reordered = self.stats.reordered.saturating_add(1);
            return;
        }
        for copy in 0..copies {
            if ring.push(packet) {
                self.stats.delivered = self.stats.delivered.saturating_add(1);
                if copy == 1 {
                    self.stats.duplicated = self.stats.duplicated.saturating_add(1);
                }
            } else {
                self.stats.overflowed = self.stats.overflowed.saturating_add(1);
            }
        }
        let mut frame = [0u8; MTU];
        if let Some(len) = held.pop(&mut frame) {
            if ring.push(frame.get(..len).unwrap_or_default()) {
                self.stats.delivered = self.stats.delivered.saturating_add(1);
            } else {
                self.stats.overflowed = self.stats.overflowed.saturating_add(1);
            }
        }
    }
}

/// One port of a [`Hub`]: a smoltcp [`Device`] with `Medium::Ip`.
#[derive(Debug)]
pub struct Port<'h, const PORTS: usize, const FRAMES: usize, const MTU: usize> {
    hub: &'h mut Hub<PORTS, FRAMES, MTU>,
    index: usize,
}

/// A received packet, copied out of the hub.
#[derive(Debug)]
pub struct RxToken<const MTU: usize> {
    frame: [u8; MTU],
    len: usize,
}

impl<const MTU: usize> phy::RxToken for RxToken<MTU> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame.get(..self.len).unwrap_or_default())
    }
}

/// A packet to send through the hub.
#[derive(Debug)]
pub struct TxToken<'a, const PORTS: usize, const FRAMES: usize, const MTU: usize> {
    hub: &'a mut Hub<PORTS, FRAMES, MTU>,
}

impl<const PORTS: usize, const FRAMES: usize, const MTU: usize> phy::TxToken
    for TxToken<'_, PORTS, FRAMES, MTU>
{
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = [0u8; MTU];
        let len = len.min(MTU);
        let packet = frame.get_mut(..len).unwrap_or_default();
        let result = f(packet);
        self.hub.send(packet);
        result
    }
}

impl<const PORTS: usize, const FRAMES: usize, const MTU: usize> Device
    for Port<'_, PORTS, FRAMES, MTU>
{
    type RxToken<'a>
        = RxToken<MTU>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, PORTS, FRAMES, MTU>
    where
        Self: 'a;

    fn receive(&mut self, _: NetInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut frame = [0u8; MTU];
        let hub = &mut *self.hub;
        let len = match hub.rings.get_mut(self.index)?.pop(&mut frame) {
            Some(len) => len,
            None => hub.held.get_mut(self.index)?.pop(&mut frame)?,
        };
        Some((RxToken { frame, len }, TxToken { hub: self.hub }))
    }

    fn transmit(&mut self, _: NetInstant) -> Option<Self::TxToken<'_>> {
        Some(TxToken { hub: self.hub })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}
