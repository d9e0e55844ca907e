//! The control client against stand-in nodes.

use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::*;
use crate::control_address::COOKIE_LEN;
use veil_mio::StdNode;

/// A fresh socket path under the temporary directory.
fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "veil-client-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// A one-connection stand-in for a node on a Unix socket: reads one
/// request line and writes `answer` (lines as given), then keeps the
/// connection open until the client closes it. Returns the request it
/// read.
fn fake_node(answer: &'static str) -> (Endpoint, JoinHandle<String>) {
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let endpoint = Endpoint::Unix(path.clone());
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let _ = std::fs::remove_file(&path);
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        reader.read_line(&mut request).unwrap();
        reader.get_mut().write_all(answer.as_bytes()).unwrap();
        let mut rest = String::new();
        let _ = reader.read_line(&mut rest);
        request
    });
    (endpoint, thread)
}

fn some_id() -> NodeId {
    NodeId::from_hex(&"ab".repeat(32)).unwrap()
}

#[test]
fn nobody_listening_says_where_and_what_to_check() {
    let endpoint = Endpoint::Unix(socket_path());
    let e = ControlClient::connect(&endpoint, None).unwrap_err();
    assert!(matches!(e, ConnectError::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&endpoint.to_string()) && text.contains("is `veil node` running there?"),
        "{text}"
    );
}

#[test]
fn over_tcp_the_cookie_goes_first_and_a_refusal_is_named() {
    let cookie_file = socket_path().with_extension("cookie");
    std::fs::write(&cookie_file, [0x11u8; COOKIE_LEN]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = Endpoint::Tcp {
        addr: listener.local_addr().unwrap(),
        cookie_file: cookie_file.clone(),
    };
    let node = std::thread::spawn(move || {
        // The first connection is accepted, the second refused.
        let mut lines = Vec::new();
        for accept in [true, false] {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line);
            if accept {
                reader.get_mut().write_all(b"{\"ok\":true}\n").unwrap();
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                reader
                    .get_mut()
                    .write_all(b"{\"ok\":false,\"error\":\"no\"}\n")
                    .unwrap();
            }
        }
        lines
    });
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let e = client.send(some_id(), b"hi").unwrap_err();
    assert!(matches!(e, SendError::NotDelivered { .. }), "{e:?}");
    let e = ControlClient::connect(&endpoint, None).unwrap_err();
    assert!(matches!(e, ConnectError::CookieRefused { .. }), "{e:?}");
    assert!(e.to_string().contains("refused the cookie"), "{e}");
    let lines = node.join().unwrap();
    let expected = format!("{{\"cookie\":\"{}\"}}\n", "11".repeat(COOKIE_LEN));
    assert_eq!(lines, vec![expected.clone(), expected]);

    std::fs::write(&cookie_file, [0x11u8; 5]).unwrap();
    let e = ControlClient::connect(&endpoint, None).unwrap_err();
    assert!(matches!(e, ConnectError::Cookie { .. }), "{e:?}");
    assert!(e.to_string().contains("pass the node's --data-dir"), "{e}");
    let _ = std::fs::remove_file(&cookie_file);
}

#[test]
fn a_send_is_written_as_the_protocol_says_and_its_refusal_is_typed() {
    let (endpoint, node) =
        fake_node("{\"ok\":false,\"error\":\"node x is not in this node's table\"}\n");
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let e = client.send(some_id(), b"hi").unwrap_err();
    assert!(matches!(e, SendError::NotDelivered { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "not delivered: node x is not in this node's table"
    );
    drop(client);
    let request: serde_json::Value = serde_json::from_str(&node.join().unwrap()).unwrap();
    assert_eq!(
        request,
        serde_json::json!({"cmd":"send","to":"ab".repeat(32),"data_hex":"6869"})
    );
}

#[test]
fn no_answer_in_time_is_a_timeout_naming_the_wait() {
    let (endpoint, node) = fake_node("");
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(1))).unwrap();
    let e = client.send(some_id(), b"hi").unwrap_err();
    assert!(matches!(e, SendError::TimedOut { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "timed out waiting for an acknowledgement (1 s)"
    );
    drop(client);
    node.join().unwrap();
}

#[test]
fn a_closed_connection_and_a_garbled_answer_are_told_apart() {
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let endpoint = Endpoint::Unix(path.clone());
    let closer = std::thread::spawn(move || drop(listener.accept().unwrap()));
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    closer.join().unwrap();
    let _ = std::fs::remove_file(&path);
    let e = client.status().unwrap_err();
    assert!(
        matches!(
            e,
            StatusError::Connection(ConnectionError::Closed | ConnectionError::Io(_))
        ),
        "{e:?}"
    );

    let (endpoint, node) = fake_node("not json\n");
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let e = client.status().unwrap_err();
    assert!(
        matches!(e, StatusError::Connection(ConnectionError::Unexpected(_))),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("unexpected answer from the node: "),
        "{e}"
    );
    drop(client);
    node.join().unwrap();
}

#[test]
fn a_listener_gets_messages_then_the_reason_it_was_dropped() {
    let (endpoint, node) = fake_node(concat!(
        "{\"ok\":true}\n",
        "{\"event\":\"message\",\"from\":null,\"data_hex\":\"6869\"}\n",
        "{\"ok\":false,\"error\":\"listener dropped: fell behind or node stopped\"}\n",
    ));
    let client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let mut listener = client.listen(Some(2)).unwrap();
    let message = listener.receive().unwrap();
    assert_eq!(message.data().unwrap(), b"hi");
    assert_eq!(message.from(), None);
    assert_eq!(
        message.json(),
        b"{\"event\":\"message\",\"from\":null,\"data_hex\":\"6869\"}"
    );
    let e = listener.receive().unwrap_err();
    assert!(matches!(e, ReceiveError::Ended { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "listener dropped: fell behind or node stopped"
    );
    drop(listener);
    let request: serde_json::Value = serde_json::from_str(&node.join().unwrap()).unwrap();
    assert_eq!(request, serde_json::json!({"cmd":"listen","count":2}));
}

#[test]
fn a_reply_and_a_learnt_service_are_written_as_the_protocol_says() {
    let (endpoint, node) = fake_node(
        "{\"ok\":false,\"error\":\"the circuit the message came on has closed; the sender must ask again\"}\n",
    );
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let e = client.reply("abcd", b"hi").unwrap_err();
    assert!(matches!(e, SendError::NotDelivered { .. }), "{e:?}");
    assert!(e.to_string().contains("has closed"), "{e}");
    drop(client);
    let request: serde_json::Value = serde_json::from_str(&node.join().unwrap()).unwrap();
    assert_eq!(
        request,
        serde_json::json!({"cmd":"reply","reply_to":"abcd","data_hex":"6869"})
    );

    let answer: &'static str = Box::leak(
        format!("{{\"ok\":true,\"service_id\":\"{}\"}}\n", "ab".repeat(32)).into_boxed_str(),
    );
    let (endpoint, node) = fake_node(answer);
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(client.learn_service(&[1, 2]).unwrap(), some_id());
    drop(client);
    let request: serde_json::Value = serde_json::from_str(&node.join().unwrap()).unwrap();
    assert_eq!(
        request,
        serde_json::json!({"cmd":"learn_service","descriptor_hex":"0102"})
    );

    let (endpoint, node) =
        fake_node("{\"ok\":false,\"error\":\"service descriptor refused: x\"}\n");
    let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let e = client.learn_service(&[1]).unwrap_err();
    assert!(matches!(e, LearnServiceError::Refused { .. }), "{e:?}");
    assert_eq!(e.to_string(), "service descriptor refused: x");
    drop(client);
    node.join().unwrap();
}

#[test]
fn a_listener_hands_out_the_reply_token_of_an_anonymous_message() {
    let (endpoint, node) = fake_node(concat!(
        "{\"ok\":true}\n",
        "{\"event\":\"message\",\"from\":null,\"reply_to\":\"5b5d\",\"data_hex\":\"6869\"}\n",
    ));
    let client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
    let mut listener = client.listen(Some(1)).unwrap();
    let message = listener.receive().unwrap();
    assert_eq!(message.reply_to(), Some("5b5d"));
    assert_eq!(message.data().unwrap(), b"hi");
    drop(listener);
    node.join().unwrap();
}

#[test]
fn a_framed_client_sends_frames_to_a_node_that_takes_them() {
    use crate::control_frame::{encode_answer, read_frame, FRAME_PREFIX};
    use std::io::Read;
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let endpoint = Endpoint::Unix(path.clone());
    let node = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let _ = std::fs::remove_file(&path);
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        reader.get_mut().write_all(b"{\"ok\":true}\n").unwrap();
        let frame = read_frame(&mut reader).unwrap().unwrap();
        let mut out = Vec::new();
        encode_answer(&mut out, &Response::error("nope")).unwrap();
        reader.get_mut().write_all(&out).unwrap();
        // Then a frame with a hostile length: the client must refuse it.
        let mut prefix = [0u8; FRAME_PREFIX];
        prefix[..4].copy_from_slice(&11u32.to_be_bytes());
        prefix[4..].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = read_frame(&mut reader);
        reader.get_mut().write_all(&prefix).unwrap();
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        (line, frame)
    });
    let mut client =
        ControlClient::connect_framed(&endpoint, Some(Duration::from_secs(10))).unwrap();
    assert!(client.frames());
    let e = client.send(some_id(), b"h\ni\0").unwrap_err();
    assert!(
        matches!(e, SendError::NotDelivered { ref reason } if reason == "nope"),
        "{e:?}"
    );
    let e = client.status().unwrap_err();
    assert!(
        matches!(
            e,
            StatusError::Connection(ConnectionError::Frame(
                crate::control_frame::ReadFrameError::PayloadTooLong { .. }
            ))
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("over the limit"), "{e}");
    // Over the largest message: refused here, before anything is written.
    let e = client
        .send(some_id(), &vec![0u8; StdNode::MAX_MESSAGE + 1])
        .unwrap_err();
    assert!(
        matches!(e, SendError::Connection(ConnectionError::EncodeFrame(_))),
        "{e:?}"
    );
    drop(client);
    let (line, frame) = node.join().unwrap();
    assert_eq!(line, "{\"cmd\":\"frames\",\"version\":1}\n");
    let header: serde_json::Value = serde_json::from_slice(&frame.header).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"cmd":"send","to":"ab".repeat(32)})
    );
    assert_eq!(frame.payload, b"h\ni\0");
}

#[test]
fn a_framed_client_falls_back_to_lines_on_a_node_without_frames() {
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let endpoint = Endpoint::Unix(path.clone());
    let node = std::thread::spawn(move || {
        // An old node: the unknown request closes the connection.
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        drop(reader);
        // The client comes back on lines.
        let (stream, _) = listener.accept().unwrap();
        let _ = std::fs::remove_file(&path);
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        reader.read_line(&mut request).unwrap();
        reader.get_mut().write_all(b"{\"ok\":true}\n").unwrap();
        (first, request)
    });
    let mut client =
        ControlClient::connect_framed(&endpoint, Some(Duration::from_secs(10))).unwrap();
    assert!(!client.frames());
    client.send(some_id(), b"hi").unwrap();
    let (first, request) = node.join().unwrap();
    assert!(first.contains("\"frames\""), "{first}");
    let request: serde_json::Value = serde_json::from_str(&request).unwrap();
    assert_eq!(
        request,
        serde_json::json!({"cmd":"send","to":"ab".repeat(32),"data_hex":"6869"})
    );
}
