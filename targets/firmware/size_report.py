#!/usr/bin/env python3
"""Where the firmware image's flash and static RAM go, by part.

Usage: python3 size_report.py ELF [--crates]   (needs `pip install pyelftools`
and arm-none-eabi-c++filt)

Every byte of flash (.vector_table, .text, .rodata, .data's initial values)
and of static RAM (.data, .bss) is given to exactly one part, so the rows add
up to the section sizes that `.ci/firmware` checks:

- Code goes to the crate whose source it was written in, from the debug
  info: an inlined function counts for the crate that defined it, except
  that generic code of Rust's `core` library (iterators, slices, `Option`)
  counts for the crate that inlined it. Code without debug info goes by its
  symbol's crate; what no function covers is alignment padding.
- Constants (.rodata) go to the crate whose code (or whose constant, for
  strings inside a panic location or a table) refers to them; a constant
  runs from one referenced address to the next.
- Static RAM goes by symbol.

Build the image with debug info (the release profile keeps it; it takes no
flash).
"""

import bisect
import collections
import re
import struct
import subprocess
import sys

from elftools.elf.elffile import ELFFile

# Crate -> part. Crates not listed are shown under their own name.
PARTS = {
    "veil_core": "veil-core", "heapless": "veil-core", "hash32": "veil-core",
    "veil_smoltcp": "veil-smoltcp",
    "smoltcp": "smoltcp", "managed": "smoltcp", "byteorder": "smoltcp",
    "veil_firmware": "self-test", "static_cell": "self-test",
    "core": "runtime", "compiler_builtins": "runtime", "cortex_m": "runtime",
    "cortex_m_rt": "runtime", "cortex_m_semihosting": "runtime",
    "defmt": "runtime", "critical_section": "runtime", "panic": "runtime",
    "portable_atomic": "runtime",
}
# Static RAM: self-test statics -> what they hold.
RAM_PARTS = {
    "NODE_A": "nodes (3 x Node)", "NODE_B": "nodes (3 x Node)", "NODE_C": "nodes (3 x Node)",
    "LINKS": "link slots (4)", "MESSAGE_POOLS": "message slots (6)",
    "TCP_RX_BUFFERS": "TCP sockets (5)", "TCP_TX_BUFFERS": "TCP sockets (5)",
    "SOCKET_STORAGE": "TCP sockets (5)", "SLOTS": "TCP sockets (5)",
    "MEDIUM": "in-RAM medium", "STATE": "defmt logger", "NOW_MS": "defmt logger",
    "NODE": "defmt logger",
}
CRYPTO = {
    "curve25519_dalek", "ed25519_dalek", "ed25519", "x25519_dalek", "sha2",
    "chacha20", "chacha20poly1305", "poly1305", "aes", "ctr", "polyval",
    "hkdf", "hmac", "digest", "cipher", "universal_hash", "rand_chacha",
    "rand_core", "ppv_lite86", "subtle", "zeroize", "generic_array",
    "block_buffer", "aead", "crypto_common", "signature", "cpufeatures",
    "inout", "opaque_debug", "zerocopy", "typenum",
    # Since the RustCrypto 0.11/0.13 releases (issue 15):
    "hybrid_array", "ctutils", "cmov", "cpubits", "fiat_crypto",
}
# Crates whose generic code counts for the crate that inlined it.
LIBRARY = {"core", "alloc"}


def part(crate):
    if crate in CRYPTO:
        return "crypto"
    return PARTS.get(crate, crate)


def crate_of_symbol(name):
    """The crate of a demangled symbol (`<a::B as c::D>::f` -> `a`)."""
    name = name.lstrip("<&*")
    name = re.sub(r"^(mut |dyn |const )+", "", name)
    name = name.split("[")[0]
    if name.startswith(("__aeabi", "__", "compiler_builtins", "memcpy", "memset",
                        "memmove", "memcmp", "OUTLINED_FUNCTION")):
        return "compiler_builtins" if not name.startswith("OUTLINED_FUNCTION") else "?outlined"
    if name in ("main", "Reset", "DefaultHandler", "DefaultHandler_", "HardFault",
                "HardFault_", "DefaultPreInit", "__pre_init"):
        return "cortex_m_rt"
    return re.split(r"::|<| ", name)[0] or "?"


def demangle(names):
    out = subprocess.run(["arm-none-eabi-c++filt"], input="\n".join(names),
                         capture_output=True, text=True, check=True).stdout
    return [re.sub(r"::h[0-9a-f]{16}$", "", n) for n in out.split("\n")]


class Image:
    def __init__(self, path):
        self.elf = ELFFile(open(path, "rb"))
        self.sections = {s.name: s for s in self.elf.iter_sections()}

    def section(self, name):
        s = self.sections.get(name)
        if s is None:
            return 0, 0, b""
        data = b"" if s["sh_type"] == "SHT_NOBITS" else s.data()
        return s["sh_addr"], s["sh_size"], data

    def symbols(self):
        symtab = self.sections[".symtab"]
        raw = [(s["st_value"], s["st_size"], s.name) for s in symtab.iter_symbols()
               if s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT") and s.name
               and not s.name.startswith(".L")]
        names = demangle([r[2] for r in raw])
        return [(v & ~1, size, n) for (v, size, _), n in zip(raw, names)]


def crate_of_die(die, cache):
    """The crate a subprogram DIE belongs to: the outermost namespace."""
    key = die.offset
    if key in cache:
        return cache[key]
    target = die
    for attr in ("DW_AT_abstract_origin", "DW_AT_specification"):
        while attr in target.attributes:
            target = target.get_DIE_from_attribute(attr)
    crate = None
    p = target.get_parent()
    while p is not None and p.tag != "DW_TAG_compile_unit":
        if p.tag == "DW_TAG_namespace" and "DW_AT_name" in p.attributes:
            crate = p.attributes["DW_AT_name"].value.decode()
        p = p.get_parent()
    cache[key] = crate
    return crate


def ranges_of(die, dwarf, cu):
    a = die.attributes
    if "DW_AT_low_pc" in a and "DW_AT_high_pc" in a:
        lo = a["DW_AT_low_pc"].value
        hi = a["DW_AT_high_pc"]
        hi = hi.value if hi.form == "DW_FORM_addr" else lo + hi.value
        return [(lo, hi)]
    if "DW_AT_ranges" in a:
        rl = dwarf.range_lists()
        base = cu.get_top_DIE().attributes.get("DW_AT_low_pc")
        base = base.value if base else 0
        out = []
        for r in rl.get_range_list_at_offset(a["DW_AT_ranges"].value, cu=cu):
            if hasattr(r, "begin_offset"):
                out.append((base + r.begin_offset, base + r.end_offset))
            elif hasattr(r, "base_address"):
                base = r.base_address
        return out
    return []


def code_owners(img, lo, size):
    """Crate of every byte of [lo, lo + size), from the debug info."""
    owner = [None] * size
    dwarf = img.elf.get_dwarf_info()
    cache = {}
    for cu in dwarf.iter_CUs():
        # (depth, ranges, effective crate), outermost first.
        def walk(die, depth, effective):
            for child in die.iter_children():
                eff = effective
                if child.tag in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
                    rs = ranges_of(child, dwarf, cu)
                    crate = crate_of_die(child, cache)
                    if crate and (crate not in LIBRARY or effective is None):
                        eff = crate
                    if rs and eff:
                        for a, b in rs:
                            for i in range(max(a, lo), min(b, lo + size)):
                                owner[i - lo] = eff
                walk(child, depth + 1, eff)
        walk(cu.get_top_DIE(), 0, None)
    return owner


def branch_targets(text, base):
    """(offset, target address) of every Thumb-2 BL and B.W."""
    for i in range(0, len(text) - 3, 2):
        hw1, hw2 = struct.unpack_from("<HH", text, i)
        if hw1 & 0xF800 != 0xF000 or hw2 & 0xD000 not in (0xD000, 0x9000):
            continue
        s = (hw1 >> 10) & 1
        j1, j2 = (hw2 >> 13) & 1, (hw2 >> 11) & 1
        i1, i2 = 1 - (j1 ^ s), 1 - (j2 ^ s)
        off = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
        if s:
            off -= 1 << 25
        yield i, base + i + 4 + off


def code_references(text):
    """(offset, value) of every 32-bit value the code can load: aligned
    literal-pool words and MOVW/MOVT pairs (Thumb-2, same register, at most
    16 instructions apart)."""
    for i in range(0, len(text) - 3, 2):
        yield i, struct.unpack_from("<I", text, i)[0]
    movw = {}  # register -> (offset, low half)
    for i in range(0, len(text) - 3, 2):
        hw1, hw2 = struct.unpack_from("<HH", text, i)
        op = hw1 & 0xFBF0
        if op not in (0xF240, 0xF2C0) or hw2 & 0x8000:
            continue
        imm = ((hw1 & 0xF) << 12) | (((hw1 >> 10) & 1) << 11) | (((hw2 >> 12) & 7) << 8) | (hw2 & 0xFF)
        rd = (hw2 >> 8) & 0xF
        if op == 0xF240:
            movw[rd] = (i, imm)
        elif rd in movw and i - movw[rd][0] <= 64:
            yield movw[rd][0], (imm << 16) | movw[rd][1]


def main():
    path = sys.argv[1]
    by_crate = "--crates" in sys.argv
    img = Image(path)
    syms = img.symbols()
    vec_lo, vec_size, _ = img.section(".vector_table")
    text_lo, text_size, text = img.section(".text")
    ro_lo, ro_size, ro = img.section(".rodata")
    data_lo, data_size, _ = img.section(".data")
    bss_lo, bss_size, _ = img.section(".bss")

    flash = collections.Counter()
    flash["runtime"] += vec_size  # the vector table (cortex-m-rt)

    # Code.
    owner = code_owners(img, text_lo, text_size)
    for addr, size, name in syms:
        if size and text_lo <= addr < text_lo + text_size:
            crate = crate_of_symbol(name)
            for i in range(addr - text_lo, min(addr - text_lo + size, text_size)):
                if owner[i] is None:
                    owner[i] = crate
    # Fragments the machine outliner made (shared tails of code, no debug
    # info) count for the crate that calls them most.
    outlined = {a: size for a, size, n in syms if n.startswith("OUTLINED_FUNCTION")}
    callers = collections.defaultdict(collections.Counter)
    for i, target in branch_targets(text, text_lo):
        if target in outlined and owner[i] is not None:
            callers[target][owner[i]] += 1
    for a, size in outlined.items():
        if callers[a]:
            crate = callers[a].most_common(1)[0][0]
            for i in range(a - text_lo, min(a - text_lo + size, text_size)):
                owner[i] = crate
    # Anything else unnamed: give each gap to the code just before it,
    # except for zero padding between functions.
    last = None
    for i in range(text_size):
        if owner[i] is None:
            is_pad = text[i] == 0 and (i % 4 != 0 or text[i:i + 2] == b"\0\0")
            owner[i] = "padding" if is_pad and last != "?" else (last or "?")
        else:
            last = owner[i]
    for o in owner:
        flash[o if by_crate else part(o) if o != "padding" else "padding"] += 1

    # Constants: referenced from code (literal pools, MOVW/MOVT pairs) or
    # from other constants.
    refs = collections.defaultdict(set)  # rodata address -> referring crates
    for i, v in code_references(text):
        if ro_lo <= v < ro_lo + ro_size:
            refs[v].add(owner[i])
    named = {a: crate_of_symbol(n) for a, s, n in syms if ro_lo <= a < ro_lo + ro_size}
    for a, c in named.items():
        refs[a].add(c)
    # Constants that point at constants (panic locations, tables): two rounds.
    for _ in range(2):
        starts = sorted(refs)
        for i in range(0, ro_size - 3, 4):
            (v,) = struct.unpack_from("<I", ro, i)
            if ro_lo <= v < ro_lo + ro_size and v not in refs:
                j = bisect.bisect_right(starts, ro_lo + i) - 1
                if j >= 0:
                    refs[v] |= refs[starts[j]]
    starts = sorted(refs)
    if not starts or starts[0] != ro_lo:
        starts.insert(0, ro_lo)
    for k, a in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else ro_lo + ro_size
        crates = refs.get(a, set()) or {"?"}
        # Shared by several crates: the first in name order, so runs repeat.
        crate = sorted(crates)[0]
        flash[crate if by_crate else part(crate)] += end - a

    ram = collections.Counter()
    covered = 0
    for addr, size, name in syms:
        for lo, sz in ((data_lo, data_size), (bss_lo, bss_size)):
            if size and lo <= addr < lo + sz:
                if name.startswith("veil_firmware"):
                    label = name.split("::")[-1]
                    label = label if by_crate else RAM_PARTS.get(label, label)
                else:
                    label = part(crate_of_symbol(name))
                ram[label] += size
                covered += size
    ram["padding"] += data_size + bss_size - covered

    total_flash = vec_size + text_size + ro_size + data_size
    flash["runtime"] += data_size  # .data's initial values
    print("flash %d B (.vector_table %d, .text %d, .rodata %d, .data %d)" %
          (total_flash, vec_size, text_size, ro_size, data_size))
    for k, v in flash.most_common():
        print("  %-16s %7d B  %5.1f KiB" % (k, v, v / 1024))
    assert sum(flash.values()) == total_flash, (sum(flash.values()), total_flash)
    print("static RAM %d B (.data %d, .bss %d)" % (data_size + bss_size, data_size, bss_size))
    for k, v in ram.most_common():
        print("  %-16s %7d B  %5.1f KiB" % (k, v, v / 1024))


if __name__ == "__main__":
    main()
