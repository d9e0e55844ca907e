//! smoltcp's `phy::Device` over the driver.
//!
//! A frame leaves the RX FIFO only when smoltcp consumes its receive token:
//! a token dropped unused leaves the frame (its popped status word is kept
//! in the driver) for the next `receive`. `receive` and `transmit` hand out
//! a transmit token only when the TX data FIFO has room for a frame of any
//! length up to the MTU, since the length is known only when the token is
//! used; without room `receive` returns `None` too (the frame waits in the
//! FIFO), so that an answer to it is never lost.
//!
//! smoltcp 0.14 kept the `Device`, `RxToken` and `TxToken` traits and
//! `DeviceCapabilities` of 0.12, so this module did not change with the
//! upgrade. Since 0.13 an interface answers pings only with smoltcp's
//! `auto-icmp-echo-reply` feature (0.12 always did): a board that wants
//! that turns it on (as `targets/nic-check` does).

use crate::chip::Chip;
use crate::driver::Lan9118;
use crate::receiver::{PendingFrame, Receiver};
use crate::register::Registers;
use crate::rx::MAX_FRAME_LEN;
use crate::transmitter::Transmitter;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

impl<R: Registers> phy::Device for Lan9118<R> {
    type RxToken<'a>
        = RxToken<'a, R>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, R>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_, R>, TxToken<'_, R>)> {
        let Lan9118 {
            chip,
            receiver,
            transmitter,
            ..
        } = self;
        transmitter.collect_statuses(chip);
        if !transmitter.has_room(chip) {
            return None;
        }
        let frame = receiver.next_frame(chip)?;
        Some((
            RxToken {
                chip,
                receiver,
                frame,
            },
            TxToken { chip, transmitter },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, R>> {
        let Lan9118 {
            chip, transmitter, ..
        } = self;
        transmitter.collect_statuses(chip);
        transmitter
            .has_room(chip)
            .then_some(TxToken { chip, transmitter })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME_LEN;
        // No checksum offload on the LAN9118: smoltcp computes and checks
        // every checksum (the default).
        capabilities
    }
}

/// One received frame, read out of the RX data FIFO when consumed.
#[derive(Debug)]
pub struct RxToken<'a, R> {
    chip: &'a Chip<R>,
    receiver: &'a mut Receiver,
    frame: PendingFrame,
}

impl<R: Registers> phy::RxToken for RxToken<'_, R> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        f(self.receiver.take(self.chip, self.frame))
    }
}

/// Room for one frame in the TX data FIFO.
#[derive(Debug)]
pub struct TxToken<'a, R> {
    chip: &'a Chip<R>,
    transmitter: &'a mut Transmitter,
}

impl<R: Registers> phy::TxToken for TxToken<'_, R> {
    fn consume<T, F>(self, len: usize, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        self.transmitter.send(self.chip, len, f)
    }
}
