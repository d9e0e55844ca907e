//! What makes a link's bytes look random (transport spec §2): ephemeral
//! keys sent as Elligator2 representatives, the first message marked with
//! the responder's node id, every later length masked by a keystream only
//! the two ends know, and random padding in the handshake.
//!
//! The inner Noise handshake is untouched: both sides hash and use the real
//! ephemeral public key (the point), never its representative, so the
//! published Noise vectors still describe the handshake byte for byte.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use rand_core::{Rng, SeedableRng};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::noise::StaticKeypair;

/// Bytes of an Elligator2 representative: the 32 that stand for an
/// ephemeral public key on the wire.
pub const REPRESENTATIVE_LEN: usize = 32;
/// Bytes of the mark after the initiator's representative.
pub const MARK_LEN: usize = 16;
/// The most padding one handshake message carries. Every handshake message
/// then still fits the smallest receive buffer a node may have (one cell
/// message, [`MIN_MAX_MESSAGE_LEN`](super::MIN_MAX_MESSAGE_LEN)).
pub const MAX_HANDSHAKE_PADDING: usize = 256;
/// The most padding a `CELLS` frame carries (link spec §4.1): two cells'
/// worth, so that a message's length fits at least two cell counts and does
/// not tell an observer how many cells it carries.
pub const MAX_CELLS_PADDING: usize = 2 * super::frame::CELL_LEN;
/// Domain of the first message's mark.
const MARK_DOMAIN: &[u8] = b"veil-obfs-v2 mark\0";
/// HKDF salt of the length keys.
const LENGTH_SALT: &[u8] = b"veil-obfs-v2 lengths\0";
/// Draws of a representable ephemeral key before the seed counts as broken:
/// each draw succeeds with probability 1/2 (see `elligator2::MAX_ATTEMPTS`).
const MAX_KEY_DRAWS: usize = elligator2::MAX_ATTEMPTS;

/// A link's ephemeral key pair with the representative that stands for its
/// public key on the wire, and the handshake's padding choices: everything
/// random a session needs, drawn from one seed so that the same seed gives
/// the same bytes.
pub struct HiddenEphemeral {
    /// The key pair: its public key is the point Noise uses.
    pub keypair: StaticKeypair,
    /// What goes on the wire in the public key's place.
    pub representative: [u8; REPRESENTATIVE_LEN],
    /// Padding of this side's handshake messages: the first (message 1 or
    /// 2) and, for the initiator, the second (message 3).
    pub padding: [u16; 2],
    /// Keys the clear padding bytes of message 1.
    pub padding_key: Zeroizing<[u8; 32]>,
}

impl HiddenEphemeral {
    /// Draws from a ChaCha20 generator seeded with `seed` (32 bytes of the
    /// node's CSPRNG): a torsion-dirty, Elligator2-representable key pair,
    /// then the padding. `None` only if 64 draws in a row were not
    /// representable, which with a working CSPRNG has probability 2⁻⁶⁴.
    pub fn generate(seed: [u8; 32]) -> Option<Self> {
        let mut rng = chacha20::ChaCha20Rng::from_seed(seed);
        let mut key = None;
        for _ in 0..MAX_KEY_DRAWS {
            if let Some(found) = elligator2::generate(&mut rng) {
                key = Some(found);
                break;
            }
        }
        let key = key?;
        let mut secret = *key.secret_bytes();
        let keypair = StaticKeypair::from_dirty_parts(secret, *key.point());
        secret.zeroize();
        let mut padding_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(padding_key.as_mut());
        let padding = [padding_len(&mut rng), padding_len(&mut rng)];
        Some(HiddenEphemeral {
            keypair,
            representative: *key.representative(),
            padding,
            padding_key,
        })
    }
}

/// A padding length, uniform in `0..=MAX_HANDSHAKE_PADDING`.
fn padding_len(rng: &mut chacha20::ChaCha20Rng) -> u16 {
    let span = u32::try_from(MAX_HANDSHAKE_PADDING)
        .unwrap_or(0)
        .saturating_add(1);
    // Rejection sampling keeps the draw uniform.
    let zone = u32::MAX.saturating_sub(u32::MAX.wrapping_rem(span).wrapping_add(1));
    loop {
        let draw = rng.next_u32();
        if draw <= zone || zone == 0 {
            return u16::try_from(draw.checked_rem(span).unwrap_or(0)).unwrap_or(0);
        }
    }
}

/// The public point a representative stands for.
pub fn point_of(representative: &[u8; REPRESENTATIVE_LEN]) -> [u8; 32] {
    elligator2::from_representative(representative)
}

/// Seconds of one mark epoch. A mark covers the epoch of the dialler's
/// wall clock, and a responder takes marks of its own epoch and the one
/// either side: clocks may differ by up to one epoch (twice the descriptor
/// rules' 300 s of skew), and a recorded first message is useless once
/// its epoch is two behind, so the replay filter only has to remember the
/// marks of the last three epochs (link spec §2.2).
pub const MARK_EPOCH_SECS: u64 = 600;

/// The mark epoch of a wall-clock time, in Unix seconds.
pub fn mark_epoch(unix_time: u64) -> u64 {
    unix_time.checked_div(MARK_EPOCH_SECS).unwrap_or(0)
}

/// The first message's mark and the mask of its padding length, keyed by
/// the responder's node id (all zeros when the dialler does not know it):
/// `HMAC-SHA256(key, "veil-obfs-v2 mark\0" ‖ representative ‖ epoch)`,
/// `epoch` as 8 bytes big-endian ([`mark_epoch`]), whose first 16 bytes are
/// the mark and next 2 the mask.
pub fn first_message_mark(
    key: &[u8; 32],
    representative: &[u8; REPRESENTATIVE_LEN],
    epoch: u64,
) -> ([u8; MARK_LEN], [u8; 2]) {
    let mut mark = [0u8; MARK_LEN];
    let mut mask = [0u8; 2];
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return (mark, mask);
    };
    mac.update(MARK_DOMAIN);
    mac.update(representative);
    mac.update(&epoch.to_be_bytes());
    let out = mac.finalize().into_bytes();
    if let Some((m, rest)) = out.split_first_chunk::<MARK_LEN>() {
        mark = *m;
        if let Some(k) = rest.first_chunk::<2>() {
            mask = *k;
        }
    }
    (mark, mask)
}

/// Bytes of message 1 before its padding: the initiator's representative,
/// the mark and the masked padding length (32 + 16 + 2, link spec §2.5).
pub const FIRST_HEADER_LEN: usize = 50;

/// Message 1's header (link spec §2.5): `representative`, its mark under
/// `key` (the responder's node id, or zeros) for mark epoch `epoch`, and
/// `padding_len` masked. The padding bytes follow it on the wire.
pub fn first_message_header(
    key: &[u8; 32],
    representative: &[u8; REPRESENTATIVE_LEN],
    epoch: u64,
    padding_len: u16,
) -> [u8; FIRST_HEADER_LEN] {
    let (mark, mask) = first_message_mark(key, representative, epoch);
    let mut header = [0u8; FIRST_HEADER_LEN];
    if let Some((repr_out, rest)) = header.split_first_chunk_mut::<REPRESENTATIVE_LEN>() {
        *repr_out = *representative;
        if let Some((mark_out, rest)) = rest.split_first_chunk_mut::<MARK_LEN>() {
            *mark_out = mark;
            if let Some(len_out) = rest.first_chunk_mut::<2>() {
                *len_out = masked(padding_len.to_be_bytes(), mask);
            }
        }
    }
    header
}

/// The clear padding bytes of message 1: the ChaCha20 keystream of the
/// initiator's padding key (they must look random, and need no secrecy).
pub fn fill_padding(key: &[u8; 32], out: &mut [u8]) {
    out.fill(0);
    let mut cipher = ChaCha20::new(key.into(), &[0u8; 12].into());
    // At most MAX_HANDSHAKE_PADDING bytes: far from the 256 GiB limit.
    let _ = cipher.try_apply_keystream(out);
}

/// Eight bytes for a refusal's read-on (how many bytes, how long), from
/// the responder's padding key, which a refusing responder never uses for
/// padding: ChaCha20 keystream under the nonce `01 00 … 00`.
pub(crate) fn refusal_draw(key: &[u8; 32]) -> [u8; 8] {
    let mut out = [0u8; 8];
    let mut nonce = [0u8; 12];
    if let Some(first) = nonce.first_mut() {
        *first = 1;
    }
    let mut cipher = ChaCha20::new(key.into(), &nonce.into());
    let _ = cipher.try_apply_keystream(&mut out);
    out
}

/// The two length keys of a link, from the `ee` Diffie-Hellman value and
/// both representatives: `HKDF-SHA256(salt = "veil-obfs-v2 lengths\0",
/// ikm = ee, info = initiator's ‖ responder's representative)`, 64 bytes,
/// the first 32 for initiator → responder.
pub fn length_keys(
    ee: &[u8; 32],
    initiator: &[u8; REPRESENTATIVE_LEN],
    responder: &[u8; REPRESENTATIVE_LEN],
) -> (LengthMask, LengthMask) {
    let mut info = [0u8; 64];
    let (a, b) = info.split_at_mut(REPRESENTATIVE_LEN);
    a.copy_from_slice(initiator);
    b.copy_from_slice(responder);
    let mut okm = Zeroizing::new([0u8; 64]);
    // Cannot fail: 64 bytes is far below HKDF-SHA256's limit.
    let _ = Hkdf::<Sha256>::new(Some(LENGTH_SALT), ee).expand(&info, okm.as_mut());
    let mut i2r = [0u8; 32];
    let mut r2i = [0u8; 32];
    if let Some((x, y)) = okm.split_first_chunk::<32>() {
        i2r.copy_from_slice(x);
        r2i.copy_from_slice(y);
    }
    (LengthMask::new(i2r), LengthMask::new(r2i))
}

/// Masks the lengths of one direction: the length of that direction's
/// `n`-th masked message (from 0) is XORed with the first two bytes of
/// ChaCha20 block 0 under the direction's key and the 12-byte nonce
/// `0u32 ‖ n as u64 (little-endian)`. Keeping only the key and a count,
/// not a keystream buffer, keeps a link slot small.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LengthMask {
    key: [u8; 32],
    next: u64,
}

impl LengthMask {
    fn new(key: [u8; 32]) -> Self {
        LengthMask { key, next: 0 }
    }

    /// The mask of the next message, `None` once 2⁶⁴ − 1 messages went
    /// (the AEAD's nonces run out first).
    pub fn next_mask(&mut self) -> Option<[u8; 2]> {
        self.next_mask_and_draw().map(|(mask, _)| mask)
    }

    /// The mask of the next message and bytes 6–21 of the same keystream
    /// block, from which the sender draws its next idle-padding wait
    /// (transport spec §4.3): one block gives both.
    pub fn next_mask_and_draw(&mut self) -> Option<([u8; 2], [u8; 16])> {
        let n = self.next;
        self.next = n.checked_add(1)?;
        let block = self.block_start(n);
        let (mask, rest) = block.split_first_chunk::<2>()?;
        let draw = rest.get(4..)?.first_chunk::<16>()?;
        Some((*mask, *draw))
    }

    /// The padding length of the next message, if it is a `CELLS` frame:
    /// bytes 2–5 of the same keystream block as its mask, read as a
    /// big-endian `u32`, modulo `MAX_CELLS_PADDING + 1` (link spec §4.1).
    /// Only the sender draws it; a receiver takes whatever padding comes.
    pub fn cells_padding(&self) -> usize {
        let block = self.block_start(self.next);
        let draw = block
            .get(2..)
            .and_then(|b| b.first_chunk::<4>())
            .copied()
            .unwrap_or_default();
        let span = u32::try_from(MAX_CELLS_PADDING)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let padding = u32::from_be_bytes(draw).checked_rem(span).unwrap_or(0);
        usize::try_from(padding).unwrap_or(0)
    }

    /// The first 22 bytes of ChaCha20 block 0 under the direction's key and
    /// the nonce of message `n`: the mask (0–1), the `CELLS` padding draw
    /// (2–5) and the idle-padding draw (6–21).
    fn block_start(&self, n: u64) -> [u8; 22] {
        let mut nonce = [0u8; 12];
        if let Some(tail) = nonce.get_mut(4..) {
            tail.copy_from_slice(&n.to_le_bytes());
        }
        let mut out = [0u8; 22];
        let mut cipher = ChaCha20::new((&self.key).into(), &nonce.into());
        let _ = cipher.try_apply_keystream(&mut out);
        out
    }
}

impl core::fmt::Debug for HiddenEphemeral {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HiddenEphemeral")
            .field("representative", &self.representative)
            .field("padding", &self.padding)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for LengthMask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LengthMask")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// XORs a 2-byte length with a mask (masking and unmasking alike).
pub fn masked(len: [u8; 2], mask: [u8; 2]) -> [u8; 2] {
    let [a, b] = len;
    let [x, y] = mask;
    [a ^ x, b ^ y]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_representative_stands_for_the_key_the_handshake_uses() {
        for seed in 0..32u8 {
            let hidden = HiddenEphemeral::generate([seed; 32]).expect("a key");
            assert_eq!(point_of(&hidden.representative), hidden.keypair.public());
            assert!(hidden
                .padding
                .iter()
                .all(|&p| usize::from(p) <= MAX_HANDSHAKE_PADDING));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_key_and_padding() {
        let a = HiddenEphemeral::generate([7; 32]).expect("a key");
        let b = HiddenEphemeral::generate([7; 32]).expect("a key");
        let c = HiddenEphemeral::generate([8; 32]).expect("a key");
        assert_eq!(a.representative, b.representative);
        assert_eq!(a.padding, b.padding);
        assert_ne!(a.representative, c.representative);
    }

    #[test]
    fn a_dirty_ephemeral_agrees_with_a_clean_static_key() {
        // The torsion part of the published point is annihilated by the
        // peer's clamped scalar, so DH gives the same secret both ways.
        let hidden = HiddenEphemeral::generate([3; 32]).expect("a key");
        let other = StaticKeypair::from_secret_bytes([9; 32]);
        let one = hidden.keypair.diffie_hellman(&other.public()).expect("dh");
        let two = other.diffie_hellman(&hidden.keypair.public()).expect("dh");
        assert_eq!(one, two);
    }

    #[test]
    fn the_mark_depends_on_the_key_and_the_representative() {
        let (m1, k1) = first_message_mark(&[1; 32], &[2; 32], 7);
        let (m2, _) = first_message_mark(&[0; 32], &[2; 32], 7);
        let (m3, _) = first_message_mark(&[1; 32], &[3; 32], 7);
        let (m4, _) = first_message_mark(&[1; 32], &[2; 32], 8);
        assert_ne!(m1, m2);
        assert_ne!(m1, m3);
        assert_ne!(m1, m4);
        assert_eq!(first_message_mark(&[1; 32], &[2; 32], 7), (m1, k1));
    }

    #[test]
    fn a_first_header_is_the_representative_the_mark_and_the_masked_length() {
        let (mark, mask) = first_message_mark(&[1; 32], &[2; 32], 9);
        let header = first_message_header(&[1; 32], &[2; 32], 9, 5);
        assert_eq!(header[..32], [2; 32]);
        assert_eq!(header[32..48], mark);
        assert_eq!(masked([header[48], header[49]], mask), [0, 5]);
    }

    #[test]
    fn each_message_gets_its_own_mask_and_the_two_directions_differ() {
        let (mut i2r, mut r2i) = length_keys(&[5; 32], &[1; 32], &[2; 32]);
        let a = i2r.next_mask().expect("mask");
        let b = i2r.next_mask().expect("mask");
        let c = r2i.next_mask().expect("mask");
        let masks = [a, b, c];
        // Two bytes can collide by chance; these fixed inputs do not.
        assert_ne!(masks[0], masks[1]);
        assert_ne!(masks[0], masks[2]);
        let (mut again, _) = length_keys(&[5; 32], &[1; 32], &[2; 32]);
        assert_eq!(again.next_mask(), Some(a));
        assert_eq!(masked(masked([1, 2], a), a), [1, 2]);
    }

    #[test]
    fn padding_lengths_cover_the_range() {
        let mut rng = chacha20::ChaCha20Rng::from_seed([4; 32]);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..4096 {
            let p = usize::from(padding_len(&mut rng));
            assert!(p <= MAX_HANDSHAKE_PADDING);
            seen_low |= p < 16;
            seen_high |= p > MAX_HANDSHAKE_PADDING - 16;
        }
        assert!(seen_low && seen_high);
    }

    fn hex(bytes: &[u8]) -> std::string::String {
        bytes.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    /// The epoch of the spec's worked example: 2026-12-06 00:00 UTC.
    const WORKED_EPOCH: u64 = 1_796_515_200 / MARK_EPOCH_SECS;

    #[test]
    fn cells_padding_is_uniform_over_two_cells_and_follows_the_mask_count() {
        let (mut mask, _) = length_keys(&[9; 32], &[1; 32], &[2; 32]);
        let mut seen = std::vec![0u32; MAX_CELLS_PADDING + 1];
        for _ in 0..20_000 {
            let padding = mask.cells_padding();
            // Drawn without advancing: the same until the mask is taken.
            assert_eq!(mask.cells_padding(), padding);
            mask.next_mask().unwrap();
            seen[padding] += 1;
        }
        // 20,000 draws over 1,029 values: about 19 each.
        assert!(seen.iter().all(|&n| n < 60), "{:?}", seen.iter().max());
        assert!(seen.iter().filter(|&&n| n == 0).count() < 5);
    }

    #[test]
    fn epochs_are_ten_minutes_of_unix_time() {
        assert_eq!(mark_epoch(0), 0);
        assert_eq!(mark_epoch(599), 0);
        assert_eq!(mark_epoch(600), 1);
        assert_eq!(mark_epoch(1_796_515_200), WORKED_EPOCH);
    }

    /// The figures of transport spec §9, which an implementation written
    /// from the spec alone (`scripts/check_link_example.py`) reproduces.
    #[test]
    fn the_worked_example_of_the_spec() {
        let initiator = HiddenEphemeral::generate([0x01; 32]).expect("a key");
        let responder = HiddenEphemeral::generate([0x02; 32]).expect("a key");
        assert_eq!(
            hex(&initiator.representative),
            "122fc2ce38dcda5960ef41eb1a9b58883a5560b525fea4ddc002764ca84f3cda"
        );
        assert_eq!(
            hex(&initiator.keypair.public()),
            "5ee8023bdf79cd90797aa1ae02f1318f1efc2aa817d64f752c6a83e83dd8083f"
        );
        assert_eq!(
            hex(&*initiator.keypair.secret_bytes()),
            "b60ee3b84b6c7d321d70d5c06e9dac63a4d0a79d731b17c0d04d030d01274dd1"
        );
        assert_eq!(
            hex(&responder.representative),
            "8d4b7487a36ec231632a2d062166079e31958325e1edc28c2e9b009ed1be631e"
        );
        assert_eq!(
            hex(&point_of(&responder.representative)),
            "94622681d47e30b4f9917f68c26988d09ab3a96d4eafcb4b1c891766245ef512"
        );
        let (mark, mask) = first_message_mark(&[0x11; 32], &initiator.representative, WORKED_EPOCH);
        assert_eq!(hex(&mark), "7b98bca30cf454899e40617300e739be");
        assert_eq!(hex(&mask), "011d");
        let (mark, mask) = first_message_mark(&[0; 32], &initiator.representative, WORKED_EPOCH);
        assert_eq!(hex(&mark), "db8caa0a35fa02dbea5e6b8e7c17be38");
        assert_eq!(hex(&mask), "8d3a");
        let ee = initiator
            .keypair
            .diffie_hellman(&responder.keypair.public())
            .expect("dh");
        assert_eq!(
            hex(&ee),
            "f19215556d992e2627911eef4f8788d8b4f3909fe7336319b7c5e4e813995e07"
        );
        let (mut i2r, mut r2i) =
            length_keys(&ee, &initiator.representative, &responder.representative);
        assert_eq!(
            hex(&i2r.key),
            "49a37cbee22f7dde302f28db775455c3a94e89869015dde8698d72bbee645c49"
        );
        assert_eq!(
            hex(&r2i.key),
            "4d71310003a5ee9bf6ca013bbba778a73397bdf7ee5690d1b8184830f002e8de"
        );
        // §4.2: the padding a `CELLS` frame with mask number 1 draws,
        // read before that mask is taken.
        let mut padding = [0; 2];
        let mut masks = [None; 4];
        for (k, keys) in [&mut i2r, &mut r2i].into_iter().enumerate() {
            masks[2 * k] = keys.next_mask();
            padding[k] = keys.cells_padding();
            masks[2 * k + 1] = keys.next_mask();
        }
        assert_eq!(padding, [333, 426]);
        assert_eq!(
            masks,
            [
                Some([0xf4, 0x13]),
                Some([0x53, 0x6f]),
                Some([0x39, 0xeb]),
                Some([0x5b, 0x12])
            ]
        );
    }
}
