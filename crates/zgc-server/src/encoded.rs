//! Unary answers made of bytes that already are a message's protobuf
//! encoding: a stored record served as it lies on disk, or an answer kept
//! encoded in a cache.
//!
//! tonic's generated servers decode and encode every message with prost.
//! [`EncodedMethod`] wraps a generated server and takes over one unary
//! method, whose handler answers with an [`Encoded`] message that goes on
//! the wire as is; every other path goes to the generated server. The
//! request is still decoded by prost, with the same size limit.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use http_body::Body;
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic_prost::ProstDecoder;
use tower_service::Service;

/// The encoding of a `T`, to be sent without encoding it again.
pub struct Encoded<T> {
    bytes: Bytes,
    message: PhantomData<fn() -> T>,
}

impl<T> Clone for Encoded<T> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            message: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Encoded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl<T: Message + Default> Encoded<T> {
    /// Encodes `message`.
    pub fn new(message: &T) -> Self {
        Self::trusted(Bytes::from(message.encode_to_vec()))
    }

    /// Bytes the caller knows to be a `T`'s encoding: written by encoding a
    /// `T` (a stored record) or by [`Encoded::new`]. They are not checked
    /// here; a client would find out when it decodes them.
    pub fn trusted(bytes: Bytes) -> Self {
        Self {
            bytes,
            message: PhantomData,
        }
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Decodes the message, for callers that want it as a value.
    pub fn decode(&self) -> Result<T, Status> {
        T::decode(self.bytes.clone())
            .map_err(|e| Status::internal(format!("an encoded answer did not decode: {e}")))
    }
}

/// The codec of an [`EncodedMethod`]: requests are decoded by prost,
/// answers are copied as they are.
pub struct EncodedCodec<T, R> {
    types: PhantomData<fn() -> (T, R)>,
}

impl<T, R> Default for EncodedCodec<T, R> {
    fn default() -> Self {
        Self { types: PhantomData }
    }
}

impl<T, R> Codec for EncodedCodec<T, R>
where
    T: Message + Default + Send + 'static,
    R: Message + Default + Send + 'static,
{
    type Encode = Encoded<T>;
    type Decode = R;
    type Encoder = EncodedEncoder<T>;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedEncoder {
            message: PhantomData,
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Writes an [`Encoded`] message's bytes into the response frame.
pub struct EncodedEncoder<T> {
    message: PhantomData<fn() -> T>,
}

impl<T: Message + Default> Encoder for EncodedEncoder<T> {
    type Item = Encoded<T>;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item.bytes);
        Ok(())
    }
}

/// A generated server `S` whose unary method at `path` is answered by `H`
/// with pre-encoded messages. Everything else, including the service name
/// for routing and reflection, is `S`'s.
pub struct EncodedMethod<S, H, R> {
    inner: S,
    path: &'static str,
    handler: H,
    max_decoding_message_size: usize,
    request: PhantomData<fn() -> R>,
}

impl<S: Clone, H: Clone, R> Clone for EncodedMethod<S, H, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            path: self.path,
            handler: self.handler.clone(),
            max_decoding_message_size: self.max_decoding_message_size,
            request: PhantomData,
        }
    }
}

impl<S, H, R> EncodedMethod<S, H, R> {
    /// Answers `path` (`/package.Service/Method`) with `handler`, decoding
    /// requests of at most `max_decoding_message_size` bytes; `inner`
    /// answers every other path.
    pub fn new(inner: S, path: &'static str, handler: H, max_decoding_message_size: usize) -> Self {
        Self {
            inner,
            path,
            handler,
            max_decoding_message_size,
            request: PhantomData,
        }
    }
}

impl<S: NamedService, H, R> NamedService for EncodedMethod<S, H, R> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<S, H, R, T, B> Service<http::Request<B>> for EncodedMethod<S, H, R>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    H: UnaryService<R, Response = Encoded<T>> + Clone + Send + 'static,
    H::Future: Send,
    R: Message + Default + Send + 'static,
    T: Message + Default + Send + 'static,
    B: Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != self.path {
            return Box::pin(self.inner.call(req));
        }
        let handler = self.handler.clone();
        let max = self.max_decoding_message_size;
        Box::pin(async move {
            let mut grpc = Grpc::new(EncodedCodec::<T, R>::default())
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(handler, req).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Duration;

    #[test]
    fn encoded_bytes_are_the_message_encoding_and_decode_back() {
        let message = Duration {
            seconds: 7,
            nanos: 9,
        };
        let encoded = Encoded::new(&message);
        assert_eq!(encoded.bytes().as_ref(), message.encode_to_vec().as_slice());
        assert_eq!(encoded.decode().ok(), Some(message));
    }

    #[test]
    fn bytes_that_are_not_the_message_fail_to_decode_as_internal() {
        let encoded = Encoded::<Duration>::trusted(Bytes::from_static(&[0xff, 0xff]));
        let status = encoded.decode().err();
        assert_eq!(status.map(|s| s.code()), Some(tonic::Code::Internal));
    }
}
