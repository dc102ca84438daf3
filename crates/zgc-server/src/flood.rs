//! A guard against HTTP/2 control-frame floods, read off the bytes a client
//! sends (no I/O here).
//!
//! The HTTP/2 server (h2, under hyper and tonic) already ends the floods
//! the recent attacks are made of: rapid reset (CVE-2023-44487) and
//! CONTINUATION floods with GOAWAY `ENHANCE_YOUR_CALM`, oversized header
//! blocks at its header-list limit. What it answers without limit is a
//! SETTINGS or PING frame: each costs an acknowledgement, so a client
//! sending them in a loop costs the server a write per frame. RFC 9113
//! (section 10.5) lets a server treat such use as abuse; this guard counts
//! those frames against a budget that refills over time (a token bucket)
//! and tells the connection to close when a client overdraws it.
//! Legitimate clients send a SETTINGS frame or two per connection and a
//! keepalive PING every few seconds at most.

use std::time::{Duration, Instant};

/// Frames that must be answered a client may send at once.
pub const BURST: u32 = 1_000;

/// How fast the budget refills: [`BURST`] frames per this long.
pub const REFILL: Duration = Duration::from_secs(10);

/// The connection preface every HTTP/2 client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of an HTTP/2 frame header.
const HEADER: usize = 9;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// The client overdrew its budget of frames that need an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("HTTP/2 control frame flood: more SETTINGS and PING frames than {BURST} per {REFILL:?}")]
pub struct Flood;

/// Where the parser is in the client's byte stream.
#[derive(Debug)]
enum At {
    /// Within the connection preface; this many bytes of it to go.
    Preface(usize),
    /// Within a frame header; this many of its bytes read.
    Header(usize),
    /// Within a frame's payload; this many bytes to skip.
    Payload(usize),
}

/// Follows one connection's incoming bytes frame by frame.
#[derive(Debug)]
pub struct FrameGuard {
    at: At,
    header: [u8; HEADER],
    /// Answerable frames still allowed, and when it was last refilled.
    budget: f64,
    refilled: Instant,
}

impl FrameGuard {
    /// A guard for a connection that starts now.
    pub fn new(now: Instant) -> Self {
        Self {
            at: At::Preface(PREFACE.len()),
            header: [0; HEADER],
            budget: f64::from(BURST),
            refilled: now,
        }
    }

    /// Reads the next `bytes` the client sent, at `now`.
    pub fn inspect(&mut self, mut bytes: &[u8], now: Instant) -> Result<(), Flood> {
        while !bytes.is_empty() {
            match self.at {
                At::Preface(left) => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    self.at = if n == left {
                        At::Header(0)
                    } else {
                        At::Preface(left - n)
                    };
                }
                At::Payload(left) => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    self.at = if n == left {
                        At::Header(0)
                    } else {
                        At::Payload(left - n)
                    };
                }
                At::Header(have) => {
                    let n = (HEADER - have).min(bytes.len());
                    self.header[have..have + n].copy_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if have + n < HEADER {
                        self.at = At::Header(have + n);
                        continue;
                    }
                    let length = usize::from(self.header[0]) << 16
                        | usize::from(self.header[1]) << 8
                        | usize::from(self.header[2]);
                    let (kind, flags) = (self.header[3], self.header[4]);
                    if matches!(kind, SETTINGS | PING) && flags & ACK == 0 {
                        self.spend(now)?;
                    }
                    self.at = if length == 0 {
                        At::Header(0)
                    } else {
                        At::Payload(length)
                    };
                }
            }
        }
        Ok(())
    }

    /// Takes one frame from the budget, refilled for the time passed.
    fn spend(&mut self, now: Instant) -> Result<(), Flood> {
        let elapsed = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        let rate = f64::from(BURST) / REFILL.as_secs_f64();
        self.budget = (self.budget + elapsed.as_secs_f64() * rate).min(f64::from(BURST));
        if self.budget < 1.0 {
            return Err(Flood);
        }
        self.budget -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    fn ping() -> Vec<u8> {
        frame(PING, 0, &[7; 8])
    }

    #[test]
    fn a_burst_of_answerable_frames_passes_and_one_more_is_a_flood() {
        let now = Instant::now();
        let mut guard = FrameGuard::new(now);
        guard.inspect(PREFACE, now).unwrap();
        for _ in 0..BURST {
            guard.inspect(&ping(), now).unwrap();
        }
        assert_eq!(guard.inspect(&frame(SETTINGS, 0, &[]), now), Err(Flood));
    }

    #[test]
    fn acknowledgements_and_other_frames_cost_nothing() {
        let now = Instant::now();
        let mut guard = FrameGuard::new(now);
        guard.inspect(PREFACE, now).unwrap();
        let data = frame(0x0, 0, &[1; 100]);
        let mut stream = Vec::new();
        for _ in 0..(2 * BURST) {
            stream.extend(frame(PING, ACK, &[0; 8]));
            stream.extend(frame(SETTINGS, ACK, &[]));
            stream.extend(&data);
        }
        guard.inspect(&stream, now).unwrap();
    }

    #[test]
    fn the_budget_refills_with_time() {
        let start = Instant::now();
        let mut guard = FrameGuard::new(start);
        guard.inspect(PREFACE, start).unwrap();
        for _ in 0..BURST {
            guard.inspect(&ping(), start).unwrap();
        }
        // After a tenth of the refill period, a tenth of the burst again.
        let later = start + REFILL / 10;
        for _ in 0..BURST / 10 {
            guard.inspect(&ping(), later).unwrap();
        }
        assert_eq!(guard.inspect(&ping(), later), Err(Flood));
        // A steady keepalive never runs out.
        let mut at = later + REFILL;
        let mut guard = FrameGuard::new(at);
        guard.inspect(PREFACE, at).unwrap();
        for _ in 0..10 * BURST {
            at += REFILL / BURST;
            guard.inspect(&ping(), at).unwrap();
        }
    }

    #[test]
    fn frames_split_anywhere_across_reads_are_followed() {
        let now = Instant::now();
        let mut stream = PREFACE.to_vec();
        // A large payload whose bytes look like PING headers must not count.
        let decoy: Vec<u8> = ping().into_iter().cycle().take(9 * 5000).collect();
        stream.extend(frame(0x0, 0, &decoy));
        for _ in 0..BURST {
            stream.extend(ping());
        }
        for chunk in [1, 2, 7, 9, 10, 4096] {
            let mut guard = FrameGuard::new(now);
            for piece in stream.chunks(chunk) {
                guard.inspect(piece, now).unwrap();
            }
            assert_eq!(guard.inspect(&ping(), now), Err(Flood), "chunks of {chunk}");
        }
    }
}
