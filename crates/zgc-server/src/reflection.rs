//! Server reflection, both `grpc.reflection.v1` and the older
//! `grpc.reflection.v1alpha` (which grpcurl 1.8 speaks), serving the zgc
//! API with its doc comments and every import, the `google.rpc` error
//! details, and the health service.

use tonic_reflection::server::v1::{ServerReflection as V1, ServerReflectionServer as V1Server};
use tonic_reflection::server::v1alpha::{
    ServerReflection as V1Alpha, ServerReflectionServer as V1AlphaServer,
};

/// Why reflection could not be built (a broken descriptor set: a bug).
pub type Error = tonic_reflection::server::Error;

/// Services every zgc server serves besides its own.
const COMMON: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn builder(served: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zgc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in served.iter().chain(COMMON) {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// The v1 and v1alpha reflection services, listing `served` (the server's
/// own services, e.g. `zgc.registry.v1.RegistryService`) plus health and
/// reflection. Every type of the API stays resolvable by symbol.
pub fn services(
    served: &[&str],
) -> Result<(V1Server<impl V1>, V1AlphaServer<impl V1Alpha>), Error> {
    Ok((
        builder(served).build_v1()?,
        builder(served).build_v1alpha()?,
    ))
}
