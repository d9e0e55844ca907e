//! Reproduces every published Noise vector for the two patterns veil uses,
//! byte for byte: each handshake message, the handshake hash, and every
//! transport message after `Split()`.
//!
//! The vectors are published test data committed in
//! `core/tests/vectors/noise/` (provenance: `core/tests/vectors/PROVENANCE.md`).

use serde_json::Value;
use veil_core::noise::{HandshakePattern, HandshakeState, Role, StaticKeypair, TransportKeys};

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/noise/vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("cannot read the Noise test vectors at {path}: {e}. They are committed in core/tests/vectors/ (see PROVENANCE.md there).")
    });
    let json: Value = serde_json::from_str(&text).expect("vectors.json is valid JSON");
    json["vectors"]
        .as_array()
        .expect("a `vectors` array")
        .clone()
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("field {field} missing")),
    )
    .unwrap()
}

fn key(v: &Value, field: &str) -> Option<[u8; 32]> {
    v.get(field)?
        .as_str()
        .map(|s| hex::decode(s).unwrap().try_into().unwrap())
}

fn run(v: &Value, hashes_checked: &mut usize) -> usize {
    let name = v["protocol_name"].as_str().unwrap();
    let pattern = match name {
        "Noise_XX_25519_ChaChaPoly_SHA256" => HandshakePattern::XX,
        "Noise_NK_25519_ChaChaPoly_SHA256" => HandshakePattern::NK,
        other => panic!("unexpected protocol {other}"),
    };
    let init_static = key(v, "init_static").map(StaticKeypair::from_secret_bytes);
    let resp_static = key(v, "resp_static").map(StaticKeypair::from_secret_bytes);
    let initiator = HandshakeState::new(
        pattern,
        Role::Initiator,
        &bytes(v, "init_prologue"),
        init_static.as_ref(),
        key(v, "init_ephemeral").unwrap(),
        key(v, "init_remote_static"),
    )
    .unwrap();
    let responder = HandshakeState::new(
        pattern,
        Role::Responder,
        &bytes(v, "resp_prologue"),
        resp_static.as_ref(),
        key(v, "resp_ephemeral").unwrap(),
        key(v, "resp_remote_static"),
    )
    .unwrap();

    let messages = v["messages"].as_array().unwrap();
    let mut handshake = Some((initiator, responder));
    let mut transport: Option<(TransportKeys, TransportKeys)> = None;
    for (i, m) in messages.iter().enumerate() {
        let payload = bytes(m, "payload");
        let expected = bytes(m, "ciphertext");
        let from_initiator = i % 2 == 0;
        let mut out = vec![0u8; 65_535];
        let mut read = vec![0u8; 65_535];
        if let Some((initiator, responder)) = handshake.as_mut() {
            let (writer, reader) = if from_initiator {
                (initiator, responder)
            } else {
                (responder, initiator)
            };
            assert_eq!(
                writer.next_message_len(payload.len()),
                Some(expected.len()),
                "{name} message {i} length"
            );
            let n = writer.write_message(&payload, &mut out).unwrap();
            assert_eq!(
                hex::encode(&out[..n]),
                hex::encode(&expected),
                "{name} handshake message {i}"
            );
            let p = reader.read_message(&expected, &mut read).unwrap();
            assert_eq!(read[..p], payload[..], "{name} handshake payload {i}");
            if writer.is_complete() && reader.is_complete() {
                let (initiator, responder) = handshake.take().unwrap();
                assert_eq!(initiator.handshake_hash(), responder.handshake_hash());
                // The snow set omits the hash; its transport messages still pin the keys.
                if v.get("handshake_hash").is_some() {
                    let expected_hash = bytes(v, "handshake_hash");
                    assert_eq!(
                        initiator.handshake_hash().to_vec(),
                        expected_hash,
                        "{name} handshake hash"
                    );
                    *hashes_checked += 1;
                }
                transport = Some((initiator.split().unwrap(), responder.split().unwrap()));
            }
            continue;
        }
        let (i_keys, r_keys) = transport.as_mut().expect("handshake done");
        let (send, receive) = if from_initiator {
            (
                &mut i_keys.initiator_to_responder,
                &mut r_keys.initiator_to_responder,
            )
        } else {
            (
                &mut r_keys.responder_to_initiator,
                &mut i_keys.responder_to_initiator,
            )
        };
        out[..payload.len()].copy_from_slice(&payload);
        let n = send.encrypt_in_place(&[], &mut out, payload.len()).unwrap();
        assert_eq!(
            hex::encode(&out[..n]),
            hex::encode(&expected),
            "{name} transport message {i}"
        );
        let mut buf = expected.clone();
        let p = receive.decrypt_in_place(&[], &mut buf).unwrap();
        assert_eq!(buf[..p], payload[..], "{name} transport payload {i}");
    }
    assert!(transport.is_some(), "{name}: handshake never completed");
    messages.len()
}

#[test]
fn every_published_vector_reproduces_byte_for_byte() {
    let vectors = vectors();
    let mut xx = 0;
    let mut nk = 0;
    let mut hashes = 0;
    let mut messages = 0;
    for v in &vectors {
        match v["protocol_name"].as_str().unwrap() {
            "Noise_XX_25519_ChaChaPoly_SHA256" => xx += 1,
            "Noise_NK_25519_ChaChaPoly_SHA256" => nk += 1,
            _ => continue,
        }
        messages += run(v, &mut hashes);
    }
    assert!(xx > 0, "no XX vectors found");
    assert!(nk > 0, "no NK vectors found");
    assert!(hashes >= 2, "handshake hashes were not checked");
    println!("checked {xx} XX and {nk} NK vectors: {messages} messages, {hashes} handshake hashes");
}
