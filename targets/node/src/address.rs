//! Node addresses as operators write them: `quic://IP:PORT` for QUIC,
//! `tcp://IP:PORT` or a bare `IP:PORT` for TCP; a bootstrap node may carry
//! its node id in front, `ID@ADDRESS`.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};
use veil_core::identity::{Address, NodeId, Transport};

/// A bootstrap node as the operator gave it: an address, and the node's id
/// when it was written `ID@ADDRESS` (64 hex digits, as `veil keygen` and
/// `veil status` print it). With the id the first handshake message is
/// marked for that node, which a probe-resistant node requires (link spec
/// §2.2), and the link must prove that identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapNode {
    pub node_id: Option<NodeId>,
    pub address: Address,
}

/// Parses `ADDRESS` or `ID@ADDRESS`; the error says what is wrong.
pub fn parse_bootstrap(text: &str) -> Result<BootstrapNode, String> {
    let (node_id, rest) = match text.split_once('@') {
        Some((id, rest)) => {
            let id = NodeId::from_hex(id).map_err(|e| {
                format!("bootstrap node {text:?}: the part before '@' is not a node id ({e}); write ID@ADDRESS with the 64 hex digits `veil keygen` printed")
            })?;
            (Some(id), rest)
        }
        None => (None, text),
    };
    Ok(BootstrapNode {
        node_id,
        address: parse(rest)?,
    })
}

/// Bootstrap nodes in TOML: one string or a list of them.
pub fn deserialize_bootstrap_list<'de, D>(
    deserializer: D,
) -> Result<Option<Vec<BootstrapNode>>, D::Error>
where
    D: Deserializer<'de>,
{
    parse_one_or_many(deserializer, parse_bootstrap)
}

/// One string or a list of them, each parsed with `parse`.
fn parse_one_or_many<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match Option::<OneOrMany>::deserialize(deserializer)? {
        None => return Ok(None),
        Some(OneOrMany::One(t)) => vec![t],
        Some(OneOrMany::Many(ts)) => ts,
    };
    texts
        .iter()
        .map(|t| parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Parses one address; the error says what is wrong and what is accepted.
pub fn parse(text: &str) -> Result<Address, String> {
    let (transport, rest) = match text.split_once("://") {
        Some(("tcp", rest)) => (Transport::Tcp, rest),
        Some(("quic", rest)) => (Transport::Quic, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "address {text:?} has the unknown scheme {scheme:?}; use tcp://IP:PORT, \
                 quic://IP:PORT or a bare IP:PORT (TCP)"
            ))
        }
        None => (Transport::Tcp, text),
    };
    let socket: SocketAddr = rest.parse().map_err(|_| {
        format!("address {text:?} is not IP:PORT (e.g. 127.0.0.1:7700 or quic://[::1]:7700)")
    })?;
    Ok(Address { transport, socket })
}

/// How an address is written back: `quic://` for QUIC, bare for TCP.
pub fn display(address: &Address) -> String {
    match address.transport {
        Transport::Tcp => address.socket.to_string(),
        Transport::Quic => format!("quic://{}", address.socket),
    }
}

/// Addresses in TOML: one string or a list of them.
pub fn deserialize_list<'de, D>(deserializer: D) -> Result<Option<Vec<Address>>, D::Error>
where
    D: Deserializer<'de>,
{
    parse_one_or_many(deserializer, parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_transport() {
        let tcp = parse("127.0.0.1:7700").unwrap();
        assert_eq!(tcp.transport, Transport::Tcp);
        assert_eq!(parse("tcp://127.0.0.1:7700").unwrap(), tcp);
        let quic = parse("quic://[::1]:7700").unwrap();
        assert_eq!(quic.transport, Transport::Quic);
        assert_eq!(quic.socket, "[::1]:7700".parse().unwrap());
        assert_eq!(display(&quic), "quic://[::1]:7700");
        assert_eq!(parse(&display(&tcp)).unwrap(), tcp);
    }

    #[test]
    fn bad_addresses_say_what_is_accepted() {
        let e = parse("udp://1.2.3.4:5").unwrap_err();
        assert!(e.contains("unknown scheme") && e.contains("quic://"), "{e}");
        let e = parse("quic://localhost:5").unwrap_err();
        assert!(e.contains("not IP:PORT"), "{e}");
    }

    #[test]
    fn a_bootstrap_node_may_carry_its_id() {
        let plain = parse_bootstrap("127.0.0.1:7700").unwrap();
        assert_eq!(plain.node_id, None);
        assert_eq!(plain.address, parse("127.0.0.1:7700").unwrap());
        let id = "ab".repeat(32);
        let keyed = parse_bootstrap(&format!("{id}@quic://[::1]:7700")).unwrap();
        assert_eq!(keyed.node_id, Some(NodeId([0xab; 32])));
        assert_eq!(keyed.address, parse("quic://[::1]:7700").unwrap());
        let e = parse_bootstrap("abc@127.0.0.1:7700").unwrap_err();
        assert!(
            e.contains("not a node id") && e.contains("ID@ADDRESS"),
            "{e}"
        );
        let e = parse_bootstrap(&format!("{id}@nowhere")).unwrap_err();
        assert!(e.contains("not IP:PORT"), "{e}");
    }
}
