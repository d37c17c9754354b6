//! The machine's ceiling, for comparison with the engine: the same N streams, the same
//! receivers and measurements, but sent by the simplest possible loop (one thread per core,
//! each walking its share of the sockets every 20 ms with a plain `sendto`, no pacer, no
//! engine). What the engine cannot do when this loop cannot either is the machine's limit.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    join_receivers, machine_ticks, process_cpu_ticks, report, rss_bytes, start_receivers, workers,
    BenchConfig, BenchReport, RECEIVERS,
};
use crate::rtp::RtpHeader;
use crate::MediaError;

/// Start phases: streams are spread over 20 groups 1 ms apart, as in the engine benchmark.
const GROUPS: u64 = 20;

/// Runs the raw-loop benchmark (`bench_media N S raw`).
pub fn run_raw(cfg: &BenchConfig) -> Result<BenchReport, MediaError> {
    let streams = cfg.streams.max(1);
    let rss_before = rss_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let (receivers, addrs) = start_receivers(&stop, &measuring)?;
    let threads = workers();
    let mut shares: Vec<Vec<(UdpSocket, SocketAddr)>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..streams {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        s.set_nonblocking(true)?;
        // Like the engine's RTP sockets (see engine/ports.rs): Don't Fragment set.
        rustix::net::sockopt::set_ip_mtu_discover(
            &s,
            rustix::net::sockopt::Ipv4PathMtuDiscovery::DO,
        )
        .map_err(std::io::Error::from)?;
        shares[i % threads].push((s, addrs[i % RECEIVERS]));
    }
    let sent = Arc::new(AtomicU64::new(0));
    let halt = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let senders: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(k, share)| {
            let (sent, halt) = (sent.clone(), halt.clone());
            std::thread::spawn(move || send_loop(k, threads, share, t0, &sent, &halt))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let rss_running = rss_bytes();
    let cpu0 = process_cpu_ticks();
    let machine0 = machine_ticks();
    let sent0 = sent.load(Ordering::Relaxed);
    let m0 = Instant::now();
    measuring.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_secs(cfg.seconds.max(1)));
    measuring.store(false, Ordering::Release);
    let elapsed = m0.elapsed();
    let cpu_ticks = process_cpu_ticks().saturating_sub(cpu0);
    let machine1 = machine_ticks();
    let sent_n = sent.load(Ordering::Relaxed) - sent0;
    halt.store(true, Ordering::Release);
    for s in senders {
        let _ = s.join();
    }
    stop.store(true, Ordering::Release);
    let stats = join_receivers(receivers);
    Ok(report(
        streams,
        threads,
        elapsed,
        cpu_ticks,
        rss_running.saturating_sub(rss_before),
        sent_n,
        &stats,
        (machine0, machine1),
    ))
}

/// One sender thread: stream j of the whole run (global index `k + j * threads`) sends its
/// frame n at t0 + n * 20 ms + its group's phase.
fn send_loop(
    k: usize,
    threads: usize,
    share: Vec<(UdpSocket, SocketAddr)>,
    t0: Instant,
    sent: &AtomicU64,
    halt: &AtomicBool,
) {
    let payload = [0xD5u8; 160];
    let mut packet = Vec::with_capacity(172);
    let mut seq = vec![0u16; share.len()];
    // Tick t covers 1 ms: group t % 20 of frame t / 20.
    let mut tick: u64 = 0;
    while !halt.load(Ordering::Acquire) {
        let due = t0 + Duration::from_millis(tick);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let group = tick % GROUPS;
        let mut n = 0;
        for (j, (socket, dest)) in share.iter().enumerate() {
            let global = (k + j * threads) as u64;
            if global % GROUPS != group {
                continue;
            }
            let header = RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: seq[j],
                timestamp: u32::from(seq[j]).wrapping_mul(160),
                ssrc: global as u32,
            };
            seq[j] = seq[j].wrapping_add(1);
            if header.write_packet(&payload, &mut packet).is_ok()
                && socket.send_to(&packet, dest).is_ok()
            {
                n += 1;
            }
        }
        sent.fetch_add(n, Ordering::Relaxed);
        tick += 1;
    }
}
