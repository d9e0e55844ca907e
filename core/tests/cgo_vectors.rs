//! Reproduces all 94 published Counter Galois Onion vectors byte for byte,
//! from the primitives (ET, PRF, UIV+, UPDATE) up to whole relay and client
//! operations. Vectors are published test data committed in
//! `core/tests/vectors/cgo/` (provenance: `core/tests/vectors/PROVENANCE.md`).

use serde_json::Value;
use veil_core::cgo::et::{et, Direction, ET_TWEAK_LEN};
use veil_core::cgo::prf::{prf_update, prf_xor};
use veil_core::cgo::{
    uiv, CellBody, ClientHop, ClientLayers, ForwardOutcome, LayerState, RelayLayer, Seed,
};

fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/vectors/cgo/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read the CGO test vectors at {path}: {e}. They are committed in core/tests/vectors/ (see PROVENANCE.md there).")
    });
    serde_json::from_str::<Vec<Value>>(&text).expect("vector file is a JSON array")
}

fn hex_of(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("field {field} missing")),
    )
    .unwrap()
}

fn arr<const N: usize>(v: &Value, field: &str) -> [u8; N] {
    hex_of(v, field)
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("{field} is {} bytes, expected {N}", b.len()))
}

fn state(v: &Value) -> LayerState {
    LayerState {
        key: arr(v, "K"),
        nonce: arr(v, "N"),
        prev_tag: arr(v, "T_prime"),
    }
}

fn assert_state(actual: &LayerState, expected: &Value, what: &str) {
    assert_eq!(
        hex::encode(actual.key),
        expected["K"].as_str().unwrap(),
        "{what}: K"
    );
    assert_eq!(
        hex::encode(actual.nonce),
        expected["N"].as_str().unwrap(),
        "{what}: N"
    );
    assert_eq!(
        hex::encode(actual.prev_tag),
        expected["T_prime"].as_str().unwrap(),
        "{what}: T'"
    );
}

fn check_et() -> usize {
    let vectors = load("et");
    for (i, v) in vectors.iter().enumerate() {
        let key: [u8; 32] = arr(v, "key_KB_KU");
        let tweak: [u8; ET_TWEAK_LEN] = arr(v, "tweak_H_ad_XR");
        let mut block: [u8; 16] = arr(v, "input");
        let dir = if v["encrypt"].as_bool().unwrap() {
            Direction::Encrypt
        } else {
            Direction::Decrypt
        };
        et(&key, &tweak, &mut block, dir);
        assert_eq!(
            hex::encode(block),
            v["output"].as_str().unwrap(),
            "et vector {i}"
        );
    }
    vectors.len()
}

fn check_prf() -> usize {
    let vectors = load("prf");
    for (i, v) in vectors.iter().enumerate() {
        let key: [u8; 32] = arr(v, "key_K_B");
        let tweak: [u8; 16] = arr(v, "tweak");
        let expected = hex_of(v, "output");
        let mut out = vec![0u8; expected.len()];
        match v["t"].as_u64().unwrap() {
            0 => prf_xor(&key, &tweak, &mut out),
            1 => prf_update(&key, &tweak, &mut out),
            t => panic!("unknown t = {t}"),
        }
        assert_eq!(out, expected, "prf vector {i}");
    }
    vectors.len()
}

fn check_uiv() -> usize {
    let vectors = load("uiv");
    for (i, v) in vectors.iter().enumerate() {
        let key: [u8; 64] = arr(v, "key_J_S");
        let h: [u8; 17] = arr(v, "tweak_H_ad");
        let mut left: [u8; 16] = arr(v, "left");
        let mut right: [u8; 493] = arr(v, "right");
        if v["encrypt"].as_bool().unwrap() {
            uiv::encrypt(&key, &h, &mut left, &mut right);
        } else {
            uiv::decrypt(&key, &h, &mut left, &mut right);
        }
        assert_eq!(
            hex::encode(left),
            v["output_left"].as_str().unwrap(),
            "uiv vector {i} left"
        );
        assert_eq!(
            hex::encode(right),
            v["output_right"].as_str().unwrap(),
            "uiv vector {i} right"
        );
    }
    vectors.len()
}

fn check_update() -> usize {
    let vectors = load("uiv_update");
    for (i, v) in vectors.iter().enumerate() {
        let mut key: [u8; 64] = arr(v, "key_J_S");
        let mut nonce: [u8; 16] = arr(v, "nonce");
        let tweak = nonce;
        uiv::update(&mut key, &mut nonce, &tweak);
        assert_eq!(
            hex::encode(key),
            v["output_key_J_S"].as_str().unwrap(),
            "update vector {i} key"
        );
        assert_eq!(
            hex::encode(nonce),
            v["output_nonce"].as_str().unwrap(),
            "update vector {i} nonce"
        );
    }
    vectors.len()
}

fn expected_body(v: &Value) -> String {
    format!(
        "{}{}",
        v["output_tag"].as_str().unwrap(),
        v["output_body"].as_str().unwrap()
    )
}

fn check_relay() -> usize {
    let vectors = load("relay");
    for (i, v) in vectors.iter().enumerate() {
        let ad = arr::<1>(v, "ad")[0];
        let mut body = CellBody::new(arr(v, "tag"), arr(v, "body"));
        let inbound = v["inbound"].as_bool().unwrap();
        let layer = state(&v["state"]);
        let mut relay = RelayLayer {
            forward: layer.clone(),
            backward: layer,
        };
        let touched = if inbound {
            relay.forward_backward(ad, &mut body);
            &relay.backward
        } else {
            let outcome = relay.receive_forward(ad, &mut body);
            // A recognised cell ratchets; the vector's output state says which happened.
            let ratcheted = hex::encode(relay.forward.key) != v["state"]["K"].as_str().unwrap();
            assert_eq!(
                outcome == ForwardOutcome::Recognised,
                ratcheted,
                "relay vector {i} outcome"
            );
            &relay.forward
        };
        assert_state(touched, &v["output_state"], &format!("relay vector {i}"));
        assert_eq!(
            hex::encode(body.to_bytes()),
            expected_body(v),
            "relay vector {i} body"
        );
    }
    vectors.len()
}

fn check_relay_originate() -> usize {
    let vectors = load("relay_originate");
    for (i, v) in vectors.iter().enumerate() {
        let ad = arr::<1>(v, "ad")[0];
        let layer = state(&v["state"]);
        let mut relay = RelayLayer {
            forward: layer.clone(),
            backward: layer,
        };
        let body = relay.originate_backward(ad, &arr(v, "message"));
        assert_state(
            &relay.backward,
            &v["output_state"],
            &format!("relay_originate vector {i}"),
        );
        assert_eq!(
            hex::encode(body.to_bytes()),
            expected_body(v),
            "relay_originate vector {i} body"
        );
    }
    vectors.len()
}

fn check_client_originate() -> usize {
    let vectors = load("client_originate");
    for (i, v) in vectors.iter().enumerate() {
        let ad = arr::<1>(v, "ad")[0];
        let mut layers = ClientLayers::new();
        for s in v["states"].as_array().unwrap() {
            let forward = state(s);
            layers
                .push(ClientHop {
                    backward: forward.clone(),
                    forward,
                })
                .unwrap();
        }
        let hop = v["hop"].as_u64().unwrap() as usize;
        let body = layers
            .originate_forward(hop - 1, ad, &arr(v, "message"))
            .unwrap();
        for (j, expected) in v["output_states"].as_array().unwrap().iter().enumerate() {
            assert_state(
                &layers.hops()[j].forward,
                expected,
                &format!("client_originate vector {i} hop {j}"),
            );
        }
        assert_eq!(
            hex::encode(body.to_bytes()),
            expected_body(v),
            "client_originate vector {i} body"
        );
    }
    vectors.len()
}

#[test]
fn all_94_published_vectors_reproduce_byte_for_byte() {
    let counts = [
        ("et", check_et()),
        ("prf", check_prf()),
        ("uiv", check_uiv()),
        ("uiv_update", check_update()),
        ("relay", check_relay()),
        ("relay_originate", check_relay_originate()),
        ("client_originate", check_client_originate()),
    ];
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    println!("{counts:?}");
    assert_eq!(total, 94, "expected all 94 CGO vectors, checked {total}");
}

#[test]
fn seeds_build_layers_with_a_zero_previous_tag() {
    let mut seed = [0u8; 80];
    seed[..64].copy_from_slice(&[7; 64]);
    seed[64..].copy_from_slice(&[9; 16]);
    let layer = LayerState::from_seed(&Seed(seed));
    assert_eq!(layer.key, [7; 64]);
    assert_eq!(layer.nonce, [9; 16]);
    assert_eq!(layer.prev_tag, [0; 16]);
}
