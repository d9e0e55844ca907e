//! Received messages made safe to show on a terminal.
//!
//! A message's bytes come from an anonymous sender. Written raw to a
//! terminal, they could carry escape sequences that retitle the window,
//! rewrite what is on screen, remap keys or, on some terminals, make the
//! terminal answer with bytes typed into the shell. So `veil listen`
//! passes them through [`escape`] when its stdout is a terminal:
//!
//! - kept as they are: printable ASCII, `\n` (a message may span lines)
//!   and `\t`, and every valid UTF-8 character that is not a control or
//!   a bidirectional formatting character;
//! - written as `\xNN`, one per byte: every other C0 control (`\r`, `ESC`,
//!   `BEL`, `BS`, …), `DEL`, the C1 controls U+0080–U+009F (some
//!   terminals take U+009B as `ESC [`), the bidirectional overrides and
//!   isolates U+202A–U+202E and U+2066–U+2069 (they make text read
//!   differently from what it is), and every byte that is not part of
//!   valid UTF-8;
//! - `\` itself is written `\\`, so the output reads back unambiguously.

/// Appends `bytes` to `out`, escaped as the module says.
pub fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                escape_text(text, out);
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid` is exactly the part `from_utf8` accepted.
                escape_text(std::str::from_utf8(valid).unwrap_or_default(), out);
                let bad = e.error_len().unwrap_or(after.len()).min(after.len());
                let (invalid, next) = after.split_at(bad);
                for &b in invalid {
                    hex_byte(b, out);
                }
                rest = next;
            }
        }
    }
}

fn escape_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let encoded = c.encode_utf8(&mut buf).as_bytes();
        if c == '\\' {
            out.extend_from_slice(b"\\\\");
        } else if c == '\n' || c == '\t' || !(c.is_control() || is_bidi_control(c)) {
            out.extend_from_slice(encoded);
        } else {
            for &b in encoded {
                hex_byte(b, out);
            }
        }
    }
}

/// Characters that reorder how text is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn hex_byte(b: u8, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\x");
    for nibble in [b >> 4, b & 0x0f] {
        out.push(DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'?'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        escape(bytes, &mut out);
        String::from_utf8(out).expect("escaped output is UTF-8")
    }

    #[test]
    fn text_passes_and_lines_stay_lines() {
        assert_eq!(escaped(b"hello, world\n\tnext"), "hello, world\n\tnext");
        assert_eq!(escaped("grüße, 世界 🙂".as_bytes()), "grüße, 世界 🙂");
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(
            escaped(b"\x1b]0;owned\x07\x1b[2J\r\x08\x7f\x00"),
            "\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x08\\x7f\\x00"
        );
        // C1 CSI (U+009B) and a right-to-left override.
        assert_eq!(escaped("a\u{9b}31mb".as_bytes()), "a\\xc2\\x9b31mb");
        assert_eq!(escaped("x\u{202e}y".as_bytes()), "x\\xe2\\x80\\xaey");
    }

    #[test]
    fn invalid_utf8_and_backslashes_are_escaped() {
        assert_eq!(escaped(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        // A truncated sequence at the end, and one cut by another byte.
        assert_eq!(escaped(b"a\xe4\xb8"), "a\\xe4\\xb8");
        assert_eq!(escaped(b"a\xe4b"), "a\\xe4b");
        assert_eq!(escaped(b"C:\\x1b"), "C:\\\\x1b");
    }

    #[test]
    fn every_escaped_output_is_free_of_control_bytes() {
        let all: Vec<u8> = (0..=255u8).collect();
        let out = escaped(&all);
        assert!(
            out.bytes()
                .all(|b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)),
            "{out:?}"
        );
    }
}
