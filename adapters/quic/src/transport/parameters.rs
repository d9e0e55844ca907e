//! The QUIC transport parameters veil asks for, per role.

use quinn_proto::{IdleTimeout, TransportConfig, VarInt};

use super::Role;
use crate::config::QuicConfig;
use crate::error::SetupError;

/// The transport parameters of one role. Stream limits: each end accepts
/// `max_circuit_streams` bidirectional streams from the other (circuit
/// streams; a server one more, for the link stream) and no unidirectional
/// ones.
pub(super) fn transport_config(
    config: &QuicConfig,
    role: Role,
) -> Result<TransportConfig, SetupError> {
    let mut transport = TransportConfig::default();
    let idle = IdleTimeout::try_from(config.idle_timeout)
        .map_err(|e| SetupError::Quic(format!("idle timeout: {e}")))?;
    let bidi = match role {
        Role::Listener => config.max_circuit_streams.saturating_add(1),
        Role::Dialler => config.max_circuit_streams,
    };
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(bidi))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
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
        .mtu_discovery_config(None);
    Ok(transport)
}
