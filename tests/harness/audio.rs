//! An RTP listener that stands where a peer's SDP says its media goes, and
//! measures what arrives (G.711 decoded, energy per packet).

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Arrival, seconds since the Unix epoch (comparable with SIPp traces).
    pub at: f64,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

impl Packet {
    /// RMS of the decoded G.711 payload (PT 8 A-law, PT 0 µ-law).
    pub fn rms(&self) -> f64 {
        let decode: fn(u8) -> i16 = match self.payload_type {
            8 => alaw_decode,
            0 => ulaw_decode,
            _ => return 0.0,
        };
        if self.payload.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .payload
            .iter()
            .map(|b| {
                let s = f64::from(decode(*b));
                s * s
            })
            .sum();
        (sum / self.payload.len() as f64).sqrt()
    }
}

pub struct RtpListener {
    pub port: u16,
    packets: Arc<Mutex<Vec<Packet>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RtpListener {
    pub fn bind(port: u16) -> RtpListener {
        let sock = UdpSocket::bind(("127.0.0.1", port)).expect("bind the RTP listener");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (packets.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, _from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let at = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                if let Some(pkt) = parse(&buf[..n], at) {
                    if let Ok(mut v) = p.lock() {
                        v.push(pkt);
                    }
                }
            }
        });
        RtpListener {
            port,
            packets,
            stop,
            thread: Some(thread),
        }
    }

    pub fn packets(&self) -> Vec<Packet> {
        self.packets.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for RtpListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// RFC 3550 §5.1, just enough for the tests.
fn parse(b: &[u8], at: f64) -> Option<Packet> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(b[0] & 0x0f);
    let start = 12 + 4 * cc;
    if b.len() < start {
        return None;
    }
    Some(Packet {
        at,
        payload_type: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b[start..].to_vec(),
    })
}

/// ITU-T G.711 A-law expansion (independent of the daemon's own codec).
pub fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = i16::from(a & 0x0f) << 4;
    t += 8;
    if seg >= 1 {
        t += 0x100;
    }
    if seg > 1 {
        t <<= seg - 1;
    }
    if a & 0x80 != 0 {
        t
    } else {
        -t
    }
}

/// ITU-T G.711 µ-law expansion.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let t = ((i16::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 {
        0x84 - t
    } else {
        t - 0x84
    }
}

#[test]
fn g711_reference_points() {
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0x00), -32124);
}
