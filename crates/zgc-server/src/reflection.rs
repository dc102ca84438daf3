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

fn builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zgc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The v1 and v1alpha reflection services.
pub fn services() -> Result<(V1Server<impl V1>, V1AlphaServer<impl V1Alpha>), Error> {
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}
