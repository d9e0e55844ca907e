//! The device-specific part of the vector table (cortex-m-rt's `device`
//! feature). Without it cortex-m-rt puts in a table for all 240 interrupts
//! an ARMv7-M can have (960 bytes of flash). The image enables no interrupt,
//! so one entry (the least cortex-m-rt's linker script accepts) is enough;
//! a board's image takes its table from its peripheral access crate.

extern "C" {
    /// cortex-m-rt's handler for everything not handled otherwise.
    fn DefaultHandler();
}

/// Interrupt vectors: IRQ 0 only, to the default handler. `no_mangle` and
/// `link_section` put the table where cortex-m-rt's `link.x` expects it,
/// right after the sixteen exception vectors.
#[allow(unsafe_code)]
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];
