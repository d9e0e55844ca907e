//! Who a node is: its Ed25519 identity, the node id derived from it, and
//! the signed descriptor it publishes.

mod address;
mod descriptor;
mod intro_claim;
mod introducer;
mod keys;
mod node_id;
mod service;

pub use address::{is_public, Address, AddressError, Transport};
pub use descriptor::{
    precheck_descriptor, verify_descriptor, DescriptorError, DescriptorPacket, DescriptorRepr,
    VerifiedDescriptor, DESCRIPTOR_DOMAIN, DESCRIPTOR_VERSION, HEADER_LEN, MAX_ADDRESSES,
    MAX_ADDRESSES_PER_TRANSPORT, MAX_CLOCK_SKEW_SECS, MAX_DESCRIPTOR_LEN,
    MAX_DESCRIPTOR_LIFETIME_SECS, MIN_DESCRIPTOR_LEN, SIGNATURE_LEN,
};
pub use intro_claim::{verify_intro_claim, IntroClaimError, INTRO_CLAIM_DOMAIN, INTRO_CLAIM_LEN};
pub use introducer::{Introducer, MAX_INTRODUCERS, MAX_INTRODUCER_LEN};
pub use keys::{Identity, IdentityKeyError, PublicIdentity, SignatureError, MAX_SIGNED_LEN};
pub use node_id::{NodeId, ParseNodeIdError, NODE_ID_DOMAIN};
pub use service::{
    service_id_for_key, IntroPoint, ServiceDescriptor, ServiceDescriptorError, ServiceKeys,
    MAX_INTRO_POINTS, MAX_INTRO_POINT_ADDRESSES, MAX_SERVICE_DESCRIPTOR_LEN,
    MIN_SERVICE_DESCRIPTOR_LEN, SERVICE_DESCRIPTOR_DOMAIN, SERVICE_DESCRIPTOR_VERSION,
    SERVICE_ID_DOMAIN,
};

#[cfg(test)]
mod descriptor_tests;
