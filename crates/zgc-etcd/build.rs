//! Compiles the vendored etcd v3 API (`proto/`, see its README) with protox
//! (no system `protoc`) into prost messages and tonic client stubs.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "etcd/mvcc/mvccpb/kv.proto",
    "etcd/auth/authpb/auth.proto",
    "etcd/etcdserver/etcdserverpb/rpc.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true);
    compiler.open_files(FILES)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
