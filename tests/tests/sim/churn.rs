//! Churn in the simulator (issue 11, point 7), small enough for CI: 60
//! nodes for 3 simulated minutes of heavy-tailed sessions (Weibull shape
//! 0.5, as measured by Stutzbach and Rejaie), half the departures silent,
//! under a message workload over 3-relay circuits. The full-scale run is
//! the `churn` example; `docs/churn.md` has the model and its figures.

use veil_core::time::Duration;
use veil_sim::churn::{self, ChurnConfig, ChurnReport};

/// 60 nodes, 3 minutes. Sessions are shorter than the full run's (scale 5
/// min: median 2.4 min, mean 10 min) so that a 3-minute run sees a real
/// share of departures: about 60 · 3 / 10 = 18, half of them silent.
fn small(seed: u64) -> ChurnConfig {
    ChurnConfig {
        nodes: 60,
        duration: Duration::from_secs(3 * 60),
        warmup: Duration::from_secs(45),
        // The nodes give a message up after 60 s (120 s by default): a
        // shorter drain after the 3 minutes, for a faster test.
        delivery_window: Duration::from_secs(60),
        seed,
        session_scale: Duration::from_secs(5 * 60),
        senders: 10,
        send_interval: Duration::from_secs(2),
        links: 40,
        ..ChurnConfig::default()
    }
}

/// The floor on the delivery ratio to live destinations. A message counts
/// only if both its ends stayed up through its 60 s window, and the node
/// resends over a fresh circuit whenever one dies, so every such message
/// should arrive; the margin allows for a message whose every circuit in
/// the window ran into departing relays, which the small network makes
/// likelier than the large one (a relay leaves every ~10 s here).
const DELIVERY_FLOOR: f64 = 0.95;

fn check(report: &ChurnReport) {
    let s = report.summary();
    eprintln!("{}", report.text());
    assert!(
        s.churn.1 + s.churn.2 >= 5,
        "churn happened: {:?} (arrivals, clean, silent)",
        s.churn
    );
    assert!(s.churn.2 >= 1, "some departures were silent");
    assert!(
        s.eligible >= 50,
        "the workload ran: {} messages",
        s.eligible
    );
    assert_eq!(s.duplicates, (0, 0), "no message is delivered twice");
    assert!(
        s.delivery_ratio >= DELIVERY_FLOOR,
        "delivery ratio {:.3} below {DELIVERY_FLOOR}",
        s.delivery_ratio
    );
}

#[test]
fn churn_is_reproducible_and_loses_nothing_to_live_destinations() {
    let first = churn::run(small(7));
    check(&first);
    let second = churn::run(small(7));
    assert_eq!(
        first.digest_hex(),
        second.digest_hex(),
        "the same seed gives the same transcript"
    );
    assert_eq!(first.summary().delivered, second.summary().delivered);
}

/// Issue 19, point 5: half the nodes cannot be dialled (no address; 2
/// introducers each). Every destination, reachable or not, gets its
/// messages.
#[test]
fn under_churn_nodes_nobody_can_dial_get_their_messages_too() {
    let report = churn::run(ChurnConfig {
        unreachable_fraction: 0.5,
        ..small(9)
    });
    check(&report);
    let s = report.summary();
    let (eligible, delivered) = s.to_unreachable;
    assert!(
        eligible >= 10,
        "messages went to unreachable nodes: {eligible}"
    );
    assert!(
        delivered as f64 >= DELIVERY_FLOOR * eligible as f64,
        "to unreachable nodes: {delivered}/{eligible}"
    );
}
