//! Node addresses as operators write them: `quic://IP:PORT` for QUIC,
//! `tcp://IP:PORT` or a bare `IP:PORT` for TCP.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};
use veil_core::identity::{Address, Transport};

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
}
