//! A fixed amount of CGO work, for counting its instructions: `n` cells
//! through one relay layer (what a relay does per cell), then `n` cells a
//! client builds for the third hop of its circuit (three layers removed
//! and the third hop's keys ratcheted).
//!
//! On this shared machine the criterion benches of one layer move by
//! ±15 % with the load of the moment, more than a change to the layer's
//! code. An instruction count does not move with the load, so a change is
//! compared by running this under valgrind before and after:
//!
//! `cargo build --release -p veil-core --example cgo_work`, then
//! `valgrind --tool=cachegrind --cache-sim=no target/release/examples/cgo_work 20000`
//! (`--tool=callgrind` and `callgrind_annotate --inclusive=yes` split it
//! between the relay and the client).

use std::hint::black_box;

use veil_core::cgo::{CellBody, ClientHop, ClientLayers, RelayLayer, Seed, PAYLOAD_LEN};

fn main() {
    let cells: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    relay_cells(cells);
    client_cells(cells);
}

/// A relay's layer on `cells` forward cells, none of them its own.
#[inline(never)]
fn relay_cells(cells: usize) {
    let mut relay = RelayLayer::new(&Seed([1; 80]), &Seed([2; 80]));
    let mut body = CellBody::new([3; 16], [4; PAYLOAD_LEN]);
    for _ in 0..cells {
        black_box(relay.receive_forward(2, black_box(&mut body)));
    }
}

/// A client building `cells` cells for hop 3 of a 3-hop circuit.
#[inline(never)]
fn client_cells(cells: usize) {
    let mut client = ClientLayers::new();
    for hop in 0..3u8 {
        let pushed = client.push(ClientHop::new(&Seed([hop; 80]), &Seed([hop + 10; 80])));
        assert!(pushed.is_ok(), "a 3-hop circuit fits");
    }
    for _ in 0..cells {
        black_box(
            client
                .originate_forward(2, 2, black_box(&[5; PAYLOAD_LEN]))
                .ok(),
        );
    }
}
