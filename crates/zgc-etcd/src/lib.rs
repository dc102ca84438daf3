//! An etcd v3 client for the registry's etcd backend.
//!
//! - [`pb`]: etcd's messages and stubs, generated from its vendored protos
//!   with protox, so building needs no `protoc`.
//! - [`Client`]: every call fails over between the cluster's members, as
//!   far as is safe for what the call does (see `client.rs`); auth tokens
//!   and TLS as etcd's own clients have them.
//! - [`Watch`]: a watch that resumes on another member, from the first
//!   revision it has not delivered, when its member fails.
//!
//! Nothing here knows about parks or companies: keys and values are bytes.

mod client;
#[cfg(feature = "cluster")]
pub mod cluster;
mod error;
pub mod pb;
mod watch;

pub use client::{Client, Config, Credentials};
pub use error::EtcdError;
pub use watch::{Watch, WatchBatch, WatchOptions};

/// The end of the range of every key that starts with `prefix` (etcd's
/// `clientv3.GetPrefixRangeEnd`): the prefix with its last byte below
/// 0xff incremented and what follows dropped; `[0]` (every key) when
/// there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_range_ends_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"zgc/"), b"zgc0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
