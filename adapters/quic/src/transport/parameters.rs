//! The QUIC transport parameters veil asks for, per role.

use quinn_proto::{IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};

use crate::config::QuicConfig;
use crate::error::SetupError;

/// Unidirectional streams each end allows the other: HTTP/3's minimum
/// (RFC 9114 §6.2: a control stream and QPACK's encoder and decoder
/// streams), as the ALPN `h3` promises. veil opens none, and one the peer
/// opens is refused (stopped) when it arrives.
pub(super) const UNI_STREAMS: u32 = 3;

/// The transport parameters, the same for both roles. Stream limits: each end accepts
/// `max_circuit_streams + 1` bidirectional streams from the other (circuit
/// streams, and the client's link stream: a dialler never needs the one
/// more, but the two ends then send the same round number, 1,024 by
/// default, instead of a server's telltale 1,025), and [`UNI_STREAMS`]
/// unidirectional ones.
pub(super) fn transport_config(config: &QuicConfig) -> Result<TransportConfig, SetupError> {
    let mut transport = TransportConfig::default();
    let idle = IdleTimeout::try_from(config.idle_timeout)
        .map_err(|e| SetupError::Quic(format!("idle timeout: {e}")))?;
    let bidi = config.max_circuit_streams.saturating_add(1);
    // Path MTU discovery (DPLPMTUD, RFC 8899): the socket sets the
    // don't-fragment bit (quinn-udp), so a probe larger than the path
    // allows is lost rather than fragmented, and packets grow from 1200
    // bytes to what the path takes, up to `max_mtu`.
    let mut mtu_discovery = MtuDiscoveryConfig::default();
    mtu_discovery.upper_bound(config.max_mtu);
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(bidi))
        .max_concurrent_uni_streams(VarInt::from_u32(UNI_STREAMS))
        .max_idle_timeout(Some(idle))
        .stream_receive_window(VarInt::from_u32(config.stream_window))
        .receive_window(VarInt::from_u32(
            config.connection_window.max(config.stream_window),
        ))
        .send_window(config.send_window)
        // The veil link pings on its own schedule; QUIC adds none.
        .keep_alive_interval(None)
        // No unreliable datagrams: the link needs an ordered stream.
        .datagram_receive_buffer_size(None)
        // The spin bit would let any on-path observer measure the RTT.
        .allow_spin(false)
        .mtu_discovery_config(Some(mtu_discovery));
    Ok(transport)
}
