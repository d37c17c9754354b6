//! The media benchmark (`acdd bench media --streams N [--seconds S]`): N sessions of a real
//! [`MediaEngine`] (one pacing shard per core) on 127.0.0.1 each loop 10 s of synthesized hold
//! music to receivers on loopback, which record every stream's inter-packet gaps, keyed by
//! SSRC. Figures, not a pass/fail test
//! (DESIGN.md principle 7).
//!
//! CPU is read from `/proc` (user + system ticks, USER_HZ = 100 on Linux): the process total,
//! and the engine alone (the process minus the receiver threads, which are measurement
//! harness, not product). Memory per stream is the resident-set growth divided by N.
//! Receivers drain their sockets every 0.5 ms, so gaps are measured to about ±0.5 ms.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::prompt::{Prompt, SAMPLE_RATE};
use crate::{rtp, Codec, MediaEngine, MediaError};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchConfig {
    pub streams: usize,
    /// Measurement window, after one second of warm-up.
    pub seconds: u64,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub streams: usize,
    /// Pacing shards (threads) of the engine.
    pub shards: usize,
    pub seconds: f64,
    /// Whole process (engine + receivers), % of one core per 1,000 streams.
    pub cpu_total_per_1000: f64,
    /// The engine alone (process minus the receiver threads), % of one core per 1,000 streams.
    pub cpu_engine_per_1000: f64,
    /// Resident memory growth per stream, bytes (sessions, sockets' user-space side, tasks).
    pub memory_per_stream: f64,
    pub gap_p50_ms: f64,
    pub gap_p99_ms: f64,
    pub gap_max_ms: f64,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Sequence-number holes seen by the receivers.
    pub packets_lost: u64,
    /// Share of the machine's CPU time the hypervisor took during the window (`steal` in
    /// /proc/stat), %: on a shared VM, what makes two runs differ.
    pub steal_percent: f64,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "streams: {}", self.streams)?;
        writeln!(f, "pacing shards: {}", self.shards)?;
        writeln!(f, "measured seconds: {:.1}", self.seconds)?;
        writeln!(
            f,
            "CPU per 1000 streams, engine: {:.1} % of one core",
            self.cpu_engine_per_1000
        )?;
        writeln!(
            f,
            "CPU per 1000 streams, with receivers: {:.1} % of one core",
            self.cpu_total_per_1000
        )?;
        writeln!(
            f,
            "memory per stream: {:.1} KB",
            self.memory_per_stream / 1024.0
        )?;
        writeln!(f, "inter-packet gap p50: {:.2} ms", self.gap_p50_ms)?;
        writeln!(f, "inter-packet gap p99: {:.2} ms", self.gap_p99_ms)?;
        writeln!(f, "inter-packet gap max: {:.2} ms", self.gap_max_ms)?;
        writeln!(f, "packets sent: {}", self.packets_sent)?;
        writeln!(f, "packets received: {}", self.packets_received)?;
        writeln!(f, "packets lost: {}", self.packets_lost)?;
        write!(
            f,
            "CPU stolen by the hypervisor: {:.1} % of the machine",
            self.steal_percent
        )
    }
}

/// Runs the benchmark on its own thread and tokio runtime (so it can be called from inside
/// another runtime, e.g. the daemon's CLI).
pub fn run(cfg: &BenchConfig) -> Result<BenchReport, MediaError> {
    let cfg = *cfg;
    std::thread::Builder::new()
        .name("media-bench".into())
        .spawn(move || run_here(cfg))?
        .join()
        .map_err(|_| MediaError::NoRuntime("the benchmark thread panicked".into()))?
}

/// Engine worker threads: the machine's cores (the receivers share them).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// First RTP port of the engine; below Linux's ephemeral range, where receivers bind.
const BASE_PORT: u16 = 10_000;
/// Receiving sockets (one thread each).
pub(crate) const RECEIVERS: usize = 2;
/// How often receivers drain their sockets: the resolution of the measured gaps.
const POLL: Duration = Duration::from_micros(500);
/// Gap histogram: 10 µs buckets up to 500 ms.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 50_000;

fn run_here(cfg: BenchConfig) -> Result<BenchReport, MediaError> {
    let streams = cfg.streams.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()?;
    let music = Arc::new(Prompt::from_pcm("bench/music", synth_hold_music(10)));
    let rss_before = rss_bytes();

    // Receivers first: the engine needs their addresses.
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let (receivers, addrs) = start_receivers(&stop, &measuring)?;

    let end_port = u16::try_from(usize::from(BASE_PORT) + streams * 2 + 64).unwrap_or(u16::MAX);
    let (report_inputs, sessions) = runtime.block_on(async {
        let (engine, _events) =
            MediaEngine::start(IpAddr::V4(Ipv4Addr::LOCALHOST), BASE_PORT..=end_port)?;
        let shards = engine.shard_count();
        let mut sessions = Vec::with_capacity(streams);
        for i in 0..streams {
            let s = engine.open_session()?;
            s.set_remote(addrs[i % RECEIVERS], Codec::Pcma, 8);
            sessions.push(s);
        }
        // Start in 20 groups 1 ms apart, as calls arriving over time would, rather than
        // every stream on the same millisecond.
        for group in sessions.chunks(streams.div_ceil(20)) {
            for s in group {
                s.play(vec![music.clone()], true);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_running = rss_bytes();
        let cpu0 = process_cpu_ticks();
        let machine0 = machine_ticks();
        let sent0 = engine.packets_sent();
        let t0 = Instant::now();
        measuring.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(cfg.seconds.max(1))).await;
        measuring.store(false, Ordering::Release);
        let elapsed = t0.elapsed();
        let cpu1 = process_cpu_ticks();
        let machine1 = machine_ticks();
        let sent1 = engine.packets_sent();
        Ok::<_, MediaError>((
            (
                shards,
                rss_running,
                cpu1.saturating_sub(cpu0),
                sent1 - sent0,
                elapsed,
                (machine0, machine1),
            ),
            sessions,
        ))
    })?;
    let (shards, rss_running, cpu_ticks, sent, elapsed, steal) = report_inputs;
    stop.store(true, Ordering::Release);
    let stats = join_receivers(receivers);
    drop(sessions);
    runtime.shutdown_timeout(Duration::from_secs(1));

    Ok(report(
        streams,
        shards,
        elapsed,
        cpu_ticks,
        rss_running.saturating_sub(rss_before),
        sent,
        &stats,
        steal,
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    streams: usize,
    shards: usize,
    elapsed: Duration,
    cpu_ticks: u64,
    rss_growth: u64,
    sent: u64,
    stats: &ReceiverStats,
    steal: ((u64, u64), (u64, u64)),
) -> BenchReport {
    let ((steal0, total0), (steal1, total1)) = steal;
    let steal_percent =
        steal1.saturating_sub(steal0) as f64 * 100.0 / total1.saturating_sub(total0).max(1) as f64;
    let secs = elapsed.as_secs_f64();
    let per_1000 = |ticks: u64| ticks as f64 / 100.0 / secs * 100.0 * 1000.0 / streams as f64;
    BenchReport {
        streams,
        shards,
        seconds: secs,
        cpu_total_per_1000: per_1000(cpu_ticks),
        cpu_engine_per_1000: per_1000(cpu_ticks.saturating_sub(stats.cpu_ticks)),
        memory_per_stream: rss_growth as f64 / streams as f64,
        gap_p50_ms: stats.percentile(0.50),
        gap_p99_ms: stats.percentile(0.99),
        gap_max_ms: stats.max_gap_us as f64 / 1000.0,
        packets_sent: sent,
        packets_received: stats.received,
        packets_lost: stats.lost,
        steal_percent,
    }
}

type Receivers = Vec<std::thread::JoinHandle<ReceiverStats>>;

/// Binds the receiving sockets, each drained by its own thread.
fn start_receivers(
    stop: &Arc<AtomicBool>,
    measuring: &Arc<AtomicBool>,
) -> Result<(Receivers, Vec<SocketAddr>), MediaError> {
    let mut receivers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..RECEIVERS {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let sock2 = socket2::SockRef::from(&socket);
        // Loopback bursts of thousands of packets: a large buffer, capped by rmem_max.
        let _ = sock2.set_recv_buffer_size(64 << 20);
        // Non-blocking, drained every POLL: a blocking read would wake the thread for each
        // packet and preempt the sender on every loopback send (measured: the engine then
        // falls behind at 5,000 streams), which is the harness's cost, not the engine's.
        socket.set_nonblocking(true)?;
        addrs.push(socket.local_addr()?);
        let (stop, measuring) = (stop.clone(), measuring.clone());
        receivers.push(std::thread::spawn(move || {
            receive(socket, &stop, &measuring)
        }));
    }
    Ok((receivers, addrs))
}

/// Joins the receivers and merges their figures.
fn join_receivers(receivers: Receivers) -> ReceiverStats {
    let mut stats = ReceiverStats::default();
    for r in receivers {
        if let Ok(s) = r.join() {
            stats.merge(s);
        }
    }
    stats
}

#[derive(Debug)]
struct ReceiverStats {
    histogram: Vec<u64>,
    max_gap_us: u64,
    received: u64,
    lost: u64,
    cpu_ticks: u64,
}

impl Default for ReceiverStats {
    fn default() -> Self {
        ReceiverStats {
            histogram: vec![0; BUCKETS + 1],
            max_gap_us: 0,
            received: 0,
            lost: 0,
            cpu_ticks: 0,
        }
    }
}

impl ReceiverStats {
    fn merge(&mut self, o: ReceiverStats) {
        for (a, b) in self.histogram.iter_mut().zip(o.histogram) {
            *a += b;
        }
        self.max_gap_us = self.max_gap_us.max(o.max_gap_us);
        self.received += o.received;
        self.lost += o.lost;
        self.cpu_ticks += o.cpu_ticks;
    }

    fn percentile(&self, q: f64) -> f64 {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, &n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (i as u64 * BUCKET_US) as f64 / 1000.0;
            }
        }
        self.max_gap_us as f64 / 1000.0
    }
}

/// One receiving socket: per stream (SSRC), the last arrival and sequence number.
/// Datagrams read per `recvmmsg` call.
const BATCH: usize = 64;

fn receive(socket: UdpSocket, stop: &AtomicBool, measuring: &AtomicBool) -> ReceiverStats {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    let mut stats = ReceiverStats::default();
    let mut last: crate::idmap::IdMap<u32, (Instant, u16)> = Default::default();
    let mut bufs = vec![[0u8; 2048]; BATCH];
    // No source addresses: streams are told apart by SSRC.
    let mut headers = MultiHeaders::<()>::preallocate(BATCH, None);
    let mut cpu_start = None;
    while !stop.load(Ordering::Acquire) {
        // Batched reads (one system call for up to BATCH datagrams): these receivers
        // stand for the callers' phones, which are elsewhere in production, so the less
        // of the two cores they take from the engine, the more the figures are its own.
        let lens: Vec<usize> = {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(results) => results.map(|m| m.bytes).collect(),
                Err(_) => Vec::new(),
            }
        };
        if lens.is_empty() {
            std::thread::sleep(POLL);
            continue;
        }
        let now = Instant::now();
        let on = measuring.load(Ordering::Acquire);
        if on && cpu_start.is_none() {
            cpu_start = Some(thread_cpu_ticks());
        }
        if !on {
            if let Some(start) = cpu_start.take() {
                stats.cpu_ticks += thread_cpu_ticks().saturating_sub(start);
            }
        }
        for (buf, len) in bufs.iter().zip(lens) {
            let Some(datagram) = buf.get(..len) else {
                continue;
            };
            let Ok(p) = rtp::parse(datagram) else {
                continue;
            };
            // RTCP read as RTP shows payload types 72-76 (RFC 5761 §4): not a media
            // packet. The engine sends its RTCP to port + 1, which may be another
            // receiver's socket.
            if (72..=76).contains(&p.payload_type) {
                continue;
            }
            if let Some((at, seq)) = last.insert(p.ssrc, (now, p.sequence)) {
                if on {
                    stats.received += 1;
                    let gap = now.duration_since(at).as_micros() as u64;
                    stats.max_gap_us = stats.max_gap_us.max(gap);
                    let bucket = usize::try_from(gap / BUCKET_US).unwrap_or(BUCKETS);
                    stats.histogram[bucket.min(BUCKETS)] += 1;
                    let step = p.sequence.wrapping_sub(seq);
                    if (2..1000).contains(&step) {
                        stats.lost += u64::from(step - 1);
                    }
                }
            }
        }
    }
    if let Some(start) = cpu_start {
        stats.cpu_ticks += thread_cpu_ticks().saturating_sub(start);
    }
    stats
}

/// utime + stime of a `/proc/.../stat` line, in clock ticks (proc(5), fields 14 and 15).
fn cpu_ticks_of(stat: &str) -> u64 {
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// The machine's (steal, total) CPU ticks, from the first line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    std::fs::read_to_string("/proc/stat").map_or((0, 0), |s| machine_ticks_of(&s))
}

fn machine_ticks_of(stat: &str) -> (u64, u64) {
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total = fields.iter().take(8).sum();
    (fields.get(7).copied().unwrap_or(0), total)
}

fn process_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat").map_or(0, |s| cpu_ticks_of(&s))
}

fn thread_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/thread-self/stat").map_or(0, |s| cpu_ticks_of(&s))
}

/// Resident set size from `/proc/self/statm` (field 2, pages of 4 KiB on x86-64/aarch64).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Ten-ish seconds of hold music: a I-vi-IV-V progression of chords with harmonics, an
/// arpeggio and a breathy melody, at a comfortable level (about -20 dBov).
pub fn synth_hold_music(seconds: usize) -> Vec<i16> {
    let n = seconds * SAMPLE_RATE as usize;
    let note = |semitones: i32| 440.0 * 2f64.powf(f64::from(semitones) / 12.0);
    let chords: [[i32; 3]; 4] = [[-9, -5, -2], [-12, -9, -5], [-16, -12, -9], [-14, -10, -7]];
    let tau = 2.0 * std::f64::consts::PI;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            let bar = (t / 2.0) as usize % 4;
            let mut v = 0.0;
            for &semi in &chords[bar] {
                for h in 1..=4 {
                    v += 700.0 / f64::from(h) * (tau * note(semi) * f64::from(h) * t).sin();
                }
            }
            let step = (t / 0.25) as usize;
            let f = note(chords[bar][step % 3] + 12);
            v += (-((t % 0.25) * 8.0)).exp() * 2500.0 * (tau * f * t).sin();
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

mod raw;
pub use raw::run_raw;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_parsing() {
        let line = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0";
        assert_eq!(cpu_ticks_of(line), 281);
        assert_eq!(cpu_ticks_of("garbage"), 0);
        assert_eq!(cpu_ticks_of("1 (x) S"), 0);
    }

    #[test]
    fn machine_stat_parsing() {
        let stat =
            "cpu  679925 0 185860 1725624 9208 0 32285 57328 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let total = 679_925 + 185_860 + 1_725_624 + 9_208 + 32_285 + 57_328;
        assert_eq!(machine_ticks_of(stat), (57_328, total));
        // An old kernel without the steal column, and garbage: no steal.
        assert_eq!(machine_ticks_of("cpu 1 2 3 4").0, 0);
        assert_eq!(machine_ticks_of(""), (0, 0));
    }

    #[test]
    fn percentiles_from_the_histogram() {
        let mut s = ReceiverStats::default();
        s.histogram[2000] = 98; // 20 ms
        s.histogram[2100] = 2; // 21 ms
        s.max_gap_us = 21_000;
        assert_eq!(s.percentile(0.5), 20.0);
        assert_eq!(s.percentile(0.99), 21.0);
        assert_eq!(ReceiverStats::default().percentile(0.99), 0.0);
    }

    #[test]
    fn small_benchmark_runs_and_paces_at_20_ms() {
        let r = run(&BenchConfig {
            streams: 20,
            seconds: 1,
        })
        .unwrap();
        println!("{r}");
        assert_eq!(r.streams, 20);
        // 20 streams * 50 packets/s for about a second.
        assert!(r.packets_sent >= 900, "{r}");
        assert!(r.packets_received >= 900, "{r}");
        assert!((19.0..21.0).contains(&r.gap_p50_ms), "{r}");
        assert!(r.to_string().lines().count() >= 10);
    }

    #[test]
    fn raw_ceiling_benchmark_runs() {
        let r = run_raw(&BenchConfig {
            streams: 20,
            seconds: 1,
        })
        .unwrap();
        assert!(r.packets_sent >= 900, "{r}");
        assert!(r.packets_received >= 900, "{r}");
        assert!((19.0..21.0).contains(&r.gap_p50_ms), "{r}");
    }
}
