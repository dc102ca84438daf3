//! zgc patch (PATCHES.md, 1): zstd compression and decompression through contexts kept per
//! thread and reused. Upstream sled 0.34.7 makes and frees a context for
//! every message it writes (`zstd::block::compress`) and a streaming decoder
//! for every message it reads (`zstd::stream::decode_all`), which costs more
//! than compressing a small message does; and it panics on a frame that does
//! not decompress, where this returns an error.

use std::cell::RefCell;
use std::convert::TryFrom;
use std::io;

use zstd::zstd_safe::{self, CCtx, DCtx};

/// The largest content decompressed in one call into a buffer of its
/// declared size; a frame declaring more is streamed, so a damaged header
/// cannot make a read allocate its claim up front.
const MAX_ONE_SHOT: u64 = 64 << 20;

thread_local! {
    static CCTX: RefCell<Option<CCtx<'static>>> = RefCell::new(CCtx::try_create());
    static DCTX: RefCell<Option<DCtx<'static>>> = RefCell::new(DCtx::try_create());
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn zstd_error(code: usize) -> io::Error {
    invalid(zstd_safe::get_error_name(code))
}

/// `src` as one zstd frame (with its content size) at `level`.
pub(crate) fn compress(src: &[u8], level: i32) -> io::Result<Vec<u8>> {
    CCTX.with(|cell| {
        let mut cctx = cell.borrow_mut();
        match cctx.as_mut() {
            Some(cctx) => {
                let mut out =
                    Vec::with_capacity(zstd_safe::compress_bound(src.len()));
                cctx.compress(&mut out, src, level).map_err(zstd_error)?;
                Ok(out)
            }
            None => zstd::bulk::compress(src, level),
        }
    })
}

/// The content of the zstd frame `src`.
pub(crate) fn decompress(src: &[u8]) -> io::Result<Vec<u8>> {
    let size = zstd_safe::get_frame_content_size(src)
        .map_err(|_| invalid("not a zstd frame"))?;
    match size {
        Some(size) if size <= MAX_ONE_SHOT => DCTX.with(|cell| {
            let mut dctx = cell.borrow_mut();
            match dctx.as_mut() {
                Some(dctx) => {
                    let mut out = Vec::with_capacity(
                        usize::try_from(size).unwrap_or_default(),
                    );
                    dctx.decompress(&mut out, src).map_err(zstd_error)?;
                    Ok(out)
                }
                None => zstd::stream::decode_all(src),
            }
        }),
        _ => zstd::stream::decode_all(src),
    }
}
