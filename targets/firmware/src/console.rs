//! Plain-text lines to the host's console through semihosting, without
//! `core::fmt` (its machinery costs kilobytes of flash): a line is a list
//! of string and number pieces.

use cortex_m_semihosting::hio;

/// One piece of a console line.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// Text, written as it is.
    Text(&'a str),
    /// An unsigned number, written in decimal.
    Number(u64),
}

/// Writes `pieces` and a newline to the host's standard output. Output is
/// best effort: without a host (no debugger attached) there is no one to
/// tell.
pub fn line(pieces: &[Piece<'_>]) {
    let Ok(mut out) = hio::hstdout() else {
        return;
    };
    for piece in pieces {
        let _ = match *piece {
            Piece::Text(text) => out.write_all(text.as_bytes()),
            Piece::Number(n) => {
                let mut digits = [0u8; 20];
                out.write_all(decimal(n, &mut digits))
            }
        };
    }
    let _ = out.write_all(b"\n");
}

/// `n` in decimal, in the tail of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        // `n % 10 < 10`: the cast cannot truncate.
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}
