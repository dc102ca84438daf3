//! Generated protobuf messages and gRPC stubs for the zgc API.
//!
//! The `.proto` files live in `proto/` at the workspace root and are compiled
//! by `build.rs` with `protox` (a pure-Rust protobuf compiler), so no system
//! `protoc` is needed. [`FILE_DESCRIPTOR_SET`] holds every compiled file and
//! every import, with source info (doc comments), for server reflection.

#![allow(clippy::all, missing_docs)]

/// The encoded `google.protobuf.FileDescriptorSet` of the zgc API, its
/// imports, and the `google.rpc` error-detail types, with doc comments.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zgc_descriptor.bin"));

/// `zgc.type.v1`: shared value types (also reachable as [`types`]).
pub mod r#type {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/zgc.r#type.v1.rs"));
    }
}

pub use r#type as types;

/// `zgc.registry.v1`: the registry service.
pub mod registry {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/zgc.registry.v1.rs"));
    }
}

/// `zgc.stats.v1`: the stats service.
pub mod stats {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/zgc.stats.v1.rs"));
    }
}

pub mod json;
pub mod wire;
