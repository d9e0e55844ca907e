//! A whole smoltcp interface over the driver and the register model: it
//! answers an ARP request and a ping that arrive through the RX FIFOs, and
//! its answers leave through the TX FIFO as the frames smoltcp built.

mod common;

use common::{assert_no_misuse, driver, MAC};
use veil_lan9118::fake::FakeLan9118;
use veil_lan9118::smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use veil_lan9118::smoltcp::phy::ChecksumCapabilities;
use veil_lan9118::smoltcp::time::Instant;
use veil_lan9118::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr,
};
use veil_lan9118::Lan9118;

const HOST_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const HOST_IP: Ipv4Address = Ipv4Address::new(10, 7, 0, 1);
const OUR_IP: Ipv4Address = Ipv4Address::new(10, 7, 0, 2);

fn interface(driver: &mut Lan9118<FakeLan9118>) -> Interface {
    let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(MAC)));
    let mut interface = Interface::new(config, driver, Instant::ZERO);
    interface.update_ip_addrs(|addresses| {
        addresses
            .push(IpCidr::new(IpAddress::Ipv4(OUR_IP), 24))
            .unwrap();
    });
    interface
}

fn ethernet(destination: EthernetAddress, ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: HOST_MAC,
        dst_addr: destination,
        ethertype,
    };
    let mut bytes = vec![0; repr.buffer_len() + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    bytes
}

fn sent(driver: &Lan9118<FakeLan9118>) -> Vec<u8> {
    let mut buffer = [0u8; 2048];
    let frame = driver
        .registers()
        .take_sent(&mut buffer)
        .expect("a frame went out");
    buffer[..frame.len].to_vec()
}

#[test]
fn smoltcp_answers_arp_and_ping_through_the_fifos() {
    let mut driver = driver();
    let mut interface = interface(&mut driver);
    let mut storage: [SocketStorage; 0] = [];
    let mut sockets = SocketSet::new(&mut storage[..]);

    let request = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: HOST_MAC,
        source_protocol_addr: HOST_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: OUR_IP,
    };
    let mut arp = vec![0; request.buffer_len()];
    request.emit(&mut ArpPacket::new_unchecked(&mut arp[..]));
    let frame = ethernet(EthernetAddress::BROADCAST, EthernetProtocol::Arp, &arp);
    assert!(driver.registers().receive_frame(&frame));
    interface.poll(Instant::from_millis(1), &mut driver, &mut sockets);

    let reply = sent(&driver);
    let reply = EthernetFrame::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.dst_addr(), HOST_MAC);
    assert_eq!(reply.src_addr(), EthernetAddress(MAC));
    let arp = ArpRepr::parse(&ArpPacket::new_checked(reply.payload()).unwrap()).unwrap();
    assert_eq!(
        arp,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(MAC),
            source_protocol_addr: OUR_IP,
            target_hardware_addr: HOST_MAC,
            target_protocol_addr: HOST_IP,
        }
    );

    // A ping with an odd-length payload.
    let data: Vec<u8> = (0..333u32).map(|i| i as u8).collect();
    let echo = Icmpv4Repr::EchoRequest {
        ident: 0x9118,
        seq_no: 7,
        data: &data,
    };
    let ip = Ipv4Repr {
        src_addr: HOST_IP,
        dst_addr: OUR_IP,
        next_header: IpProtocol::Icmp,
        payload_len: echo.buffer_len(),
        hop_limit: 64,
    };
    let checksums = ChecksumCapabilities::default();
    let mut packet = vec![0; ip.buffer_len() + echo.buffer_len()];
    let mut ipv4 = Ipv4Packet::new_unchecked(&mut packet[..]);
    ip.emit(&mut ipv4, &checksums);
    echo.emit(
        &mut Icmpv4Packet::new_unchecked(ipv4.payload_mut()),
        &checksums,
    );
    let frame = ethernet(EthernetAddress(MAC), EthernetProtocol::Ipv4, &packet);
    assert!(driver.registers().receive_frame(&frame));
    interface.poll(Instant::from_millis(2), &mut driver, &mut sockets);

    let reply = sent(&driver);
    let reply = EthernetFrame::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.ethertype(), EthernetProtocol::Ipv4);
    let ipv4 = Ipv4Packet::new_checked(reply.payload()).unwrap();
    let ip = Ipv4Repr::parse(&ipv4, &checksums).unwrap();
    assert_eq!((ip.src_addr, ip.dst_addr), (OUR_IP, HOST_IP));
    let icmp = Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(ipv4.payload()).unwrap(),
        &checksums,
    )
    .unwrap();
    assert_eq!(
        icmp,
        Icmpv4Repr::EchoReply {
            ident: 0x9118,
            seq_no: 7,
            data: &data,
        }
    );
    assert_eq!(driver.counters().rx.frames, 2);
    assert_eq!(driver.counters().tx.frames, 2);
    assert_no_misuse(&driver);
}
