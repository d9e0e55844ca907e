#![no_main]

// The control socket's binary frames as a node reads them from a client:
// lengths over the limits, truncated frames and headers that are not JSON
// must be refused with an error, never panic or allocate past the limits.
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_node::control_frame::fuzz_frames(data));
