//! Compiles `proto/` with protox (no system `protoc`) and generates prost
//! messages and tonic stubs, keeping the descriptor set for reflection.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "zgc/type/v1/date.proto",
    "zgc/type/v1/location.proto",
    "zgc/registry/v1/park.proto",
    "zgc/registry/v1/company.proto",
    "zgc/registry/v1/change.proto",
    "zgc/registry/v1/registry_service.proto",
    "zgc/stats/v1/stats_service.proto",
    // Not compiled to Rust (tonic-types has them); kept in the descriptor
    // set so reflection clients can decode error details.
    "google/rpc/error_details.proto",
    "google/rpc/status.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.display());

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(FILES)?;
    let descriptors = compiler.file_descriptor_set();
    let encoded = prost::Message::encode_to_vec(&descriptors);
    std::fs::write(out.join("zgc_descriptor.bin"), &encoded)?;

    // Maps are BTreeMaps so that a message always encodes to the same bytes
    // (request fingerprints for idempotency depend on it). The `google.rpc`
    // code generated here goes unused: tonic-types provides those types.
    let mut config = tonic_prost_build::Config::new();
    config.btree_map(["."]);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
