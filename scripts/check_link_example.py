#!/usr/bin/env python3
"""Recomputes the worked example of docs/transport_layer_spec.md §9 from the
spec alone: the Elligator2 map, the first message's mark, the length keys
and masks, the padding of the first `CELLS` message, and `ee`. Standard
library only, except X25519 and ChaCha20, which come from the
`cryptography` package when it is installed.

    python3 scripts/check_link_example.py
"""

import hashlib
import hmac
import sys

P = 2**255 - 19
A = 486662

REP_I = "122fc2ce38dcda5960ef41eb1a9b58883a5560b525fea4ddc002764ca84f3cda"
SECRET_I = "b60ee3b84b6c7d321d70d5c06e9dac63a4d0a79d731b17c0d04d030d01274dd1"
# §9: the mark epoch of 2026-12-06 00:00:00 UTC (Unix time 1,796,515,200).
EPOCH = 1796515200 // 600
REP_R = "8d4b7487a36ec231632a2d062166079e31958325e1edc28c2e9b009ed1be631e"
EXPECTED = {
    "point_i": "5ee8023bdf79cd90797aa1ae02f1318f1efc2aa817d64f752c6a83e83dd8083f",
    "point_r": "94622681d47e30b4f9917f68c26988d09ab3a96d4eafcb4b1c891766245ef512",
    "mark_under_id": "7b98bca30cf454899e40617300e739be",
    "len_mask_under_id": "011d",
    "mark_under_zero": "db8caa0a35fa02dbea5e6b8e7c17be38",
    "len_mask_under_zero": "8d3a",
    "ee": "f19215556d992e2627911eef4f8788d8b4f3909fe7336319b7c5e4e813995e07",
    "key_i2r": "49a37cbee22f7dde302f28db775455c3a94e89869015dde8698d72bbee645c49",
    "key_r2i": "4d71310003a5ee9bf6ca013bbba778a73397bdf7ee5690d1b8184830f002e8de",
    "masks_i2r": "f413 536f",
    "masks_r2i": "39eb 5b12",
    "padding_n1": "333 426",
    "first_cells_length_i2r": "500e",
}


def is_square(x):
    return pow(x, (P - 1) // 2, P) in (0, 1)


def point_of(representative):
    """§2.1: the point a representative decodes to."""
    b = bytearray(representative)
    b[31] &= 0x3F
    r = int.from_bytes(b, "little") % P
    d = (-A * pow(1 + 2 * r * r, P - 2, P)) % P
    u = d if is_square((d**3 + A * d * d + d) % P) else (-d - A) % P
    return u.to_bytes(32, "little")


def mark(key, representative, epoch):
    """§2.2: the mark and the padding length's mask."""
    message = b"veil-obfs-v2 mark\0" + representative + epoch.to_bytes(8, "big")
    h = hmac.new(key, message, hashlib.sha256).digest()
    return h[:16], h[16:18]


def length_keys(ee, rep_i, rep_r):
    """§2.3: HKDF-SHA256 (RFC 5869) to 64 bytes."""
    prk = hmac.new(b"veil-obfs-v2 lengths\0", ee, hashlib.sha256).digest()
    okm, block = b"", b""
    for i in (1, 2):
        block = hmac.new(prk, block + rep_i + rep_r + bytes([i]), hashlib.sha256).digest()
        okm += block
    return okm[:32], okm[32:]


def main():
    rep_i, rep_r = bytes.fromhex(REP_I), bytes.fromhex(REP_R)
    got = {
        "point_i": point_of(rep_i).hex(),
        "point_r": point_of(rep_r).hex(),
    }
    m, k = mark(b"\x11" * 32, rep_i, EPOCH)
    got["mark_under_id"], got["len_mask_under_id"] = m.hex(), k.hex()
    m, k = mark(bytes(32), rep_i, EPOCH)
    got["mark_under_zero"], got["len_mask_under_zero"] = m.hex(), k.hex()
    try:
        from cryptography.hazmat.primitives.asymmetric.x25519 import (
            X25519PrivateKey,
            X25519PublicKey,
        )
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    except ImportError:
        print("skipped ee and the masks: the `cryptography` package is not installed")
        ee = bytes.fromhex(EXPECTED["ee"])
        Cipher = None
    else:
        secret = X25519PrivateKey.from_private_bytes(bytes.fromhex(SECRET_I))
        ee = secret.exchange(X25519PublicKey.from_public_bytes(point_of(rep_r)))
        got["ee"] = ee.hex()
    key_i2r, key_r2i = length_keys(ee, rep_i, rep_r)
    got["key_i2r"], got["key_r2i"] = key_i2r.hex(), key_r2i.hex()
    if Cipher is not None:
        def mask(key, n):
            # `cryptography` takes the 32-bit block counter (0) then the
            # 12-byte nonce 00000000 ‖ LE64(n) as one 16-byte value.
            nonce = bytes(8) + n.to_bytes(8, "little")
            return Cipher(algorithms.ChaCha20(key, nonce), None).encryptor().update(b"\0\0").hex()

        got["masks_i2r"] = f"{mask(key_i2r, 0)} {mask(key_i2r, 1)}"
        got["masks_r2i"] = f"{mask(key_r2i, 0)} {mask(key_r2i, 1)}"

        def padding(key, n):
            # §4.2: bytes 2..6 of the mask's block, big-endian, mod 1029.
            nonce = bytes(8) + n.to_bytes(8, "little")
            block = Cipher(algorithms.ChaCha20(key, nonce), None).encryptor().update(bytes(6))
            return int.from_bytes(block[2:6], "big") % 1029

        got["padding_n1"] = f"{padding(key_i2r, 1)} {padding(key_r2i, 1)}"
        # One cell padded by the draw: kind, count, cell, padding, tag.
        length = 1 + 1 + 514 + padding(key_i2r, 1) + 16
        masked = length ^ int(mask(key_i2r, 1), 16)
        got["first_cells_length_i2r"] = masked.to_bytes(2, "big").hex()
    bad = [name for name, value in got.items() if EXPECTED[name] != value]
    for name in bad:
        print(f"{name}: spec says {EXPECTED[name]}, computed {got[name]}")
    print(f"{len(got) - len(bad)} of {len(got)} values match the spec")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
