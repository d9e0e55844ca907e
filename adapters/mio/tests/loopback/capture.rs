//! A link capture holds every byte of a TCP link, both ways, as a pcap
//! file standard tools open: parsed back here with a pcap reader and an IP
//! packet parser, each direction's TCP payload is exactly what the node
//! counted sent and received, and it starts with the link handshake.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

use crate::support::{drive, link_up, Peer};

/// Each flow's payload, in sequence order: `(from, to) -> bytes`.
fn flows(path: &std::path::Path) -> BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> {
    let file = std::fs::File::open(path).expect("capture file");
    let mut reader = PcapReader::new(file).expect("a pcap file");
    assert_eq!(reader.header().datalink, DataLink::RAW);
    let mut flows: BTreeMap<_, Vec<(u32, Vec<u8>)>> = BTreeMap::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a whole packet");
        let sliced = SlicedPacket::from_ip(&packet.data).expect("an IP packet");
        let (src, dst) = match sliced.net.expect("an IP header") {
            NetSlice::Ipv4(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            NetSlice::Ipv6(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            other => panic!("not IPv4 or IPv6: {other:?}"),
        };
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("not TCP");
        };
        let from = SocketAddr::new(src, tcp.source_port());
        let to = SocketAddr::new(dst, tcp.destination_port());
        flows
            .entry((from, to))
            .or_default()
            .push((tcp.sequence_number(), tcp.payload().to_vec()));
    }
    flows
        .into_iter()
        .map(|(k, mut segments)| {
            segments.sort_by_key(|(seq, _)| *seq);
            let mut next = 1u32;
            let mut bytes = Vec::new();
            for (seq, payload) in segments {
                assert_eq!(seq, next, "no gap or overlap in the flow");
                next = next.wrapping_add(payload.len() as u32);
                bytes.extend_from_slice(&payload);
            }
            (k, bytes)
        })
        .collect()
}

#[test]
fn a_capture_holds_every_link_byte_both_ways() {
    let path = std::env::temp_dir().join(format!("veil-capture-{}.pcap", std::process::id()));
    let mut a = Peer::new(61);
    let mut b = Peer::new(62);
    a.rt.capture_links(&path).expect("capture starts");
    let (_, link) = link_up(&mut b, &mut a);
    // A few keepalive rounds' worth of turns.
    let mut turns = 0;
    drive(&mut [&mut a, &mut b], |_| {
        turns += 1;
        turns > 200
    });
    // The next turn flushes the capture before it waits.
    a.turn();
    let stats = a.rt.node().link_info(link).expect("link open").stats;
    let flows = flows(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(flows.len(), 2, "one flow each way: {:?}", flows.keys());
    let b_addr = a.rt.connection(link).expect("connection").peer_addr;
    let flow = |towards_b: bool| {
        flows
            .iter()
            .find(|((from, to), _)| {
                if towards_b {
                    *to == b_addr
                } else {
                    *from == b_addr
                }
            })
            .map(|(_, bytes)| bytes.clone())
            .expect("a flow each way")
    };
    let (sent, got) = (flow(true), flow(false));
    assert_eq!(sent.len() as u64, stats.bytes_sent, "every byte A sent");
    assert_eq!(
        got.len() as u64,
        stats.bytes_received,
        "every byte A received"
    );
    // A dialled: its first message is the handshake's first, which starts
    // with its representative and the mark (link spec §2): at least 50
    // bytes, and no clear `00 20` length in front of a key.
    assert!(sent.len() >= 50, "{} bytes sent", sent.len());
    assert_ne!(&sent[..2], &[0x00, 0x20]);
}
