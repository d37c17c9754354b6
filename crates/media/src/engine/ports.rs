//! The RTP/RTCP port pool and the bound socket pair of a session.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use rustix::net::sockopt::Ipv4PathMtuDiscovery;
use socket2::{SockAddr, SockRef};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::MediaError;

/// A bound RTP socket and its RTCP neighbour (RFC 3550 §11: RTCP on the next odd port).
/// Field order matters: the sockets are closed before the ports return to the pool, so a
/// new session never fails to bind a port the pool calls free.
#[derive(Debug)]
pub(super) struct Bound {
    /// RTP, registered with the tokio reactor for READING ONLY. The pacing threads send on the
    /// same descriptor with a plain non-blocking `sendto`. Registering write interest (as
    /// `tokio::net::UdpSocket` does) would make every sent packet, once the kernel frees it,
    /// signal "writable" through epoll and wake a runtime worker: measured, that costs more
    /// than the pacing itself at a few thousand streams. (tokio's `try_send_to` would also
    /// report WouldBlock until the reactor has seen the socket writable, dropping the first
    /// packet of a fresh session, its marker packet.)
    pub socket: AsyncFd<StdUdpSocket>,
    /// RTCP, owned by the session's receive task.
    pub rtcp: UdpSocket,
    _lease: PortLease,
}

impl Bound {
    /// Must be called inside the runtime that will poll the sockets.
    pub fn new(rtp: StdUdpSocket, rtcp: StdUdpSocket, lease: PortLease) -> std::io::Result<Bound> {
        // `with_interest` is deprecated because an `AsRawFd` type need not own its
        // descriptor; a std `UdpSocket` does, and the `AsyncFd` owns the socket, so the
        // descriptor stays open and the same while registered: the condition of the `unsafe`
        // `register_with_interest` holds, without `unsafe` in this crate.
        if rtp.local_addr()?.is_ipv4() {
            // Don't Fragment on every RTP packet: a 20 ms frame is far below any path MTU,
            // and an unconnected socket sending without DF makes the kernel draw a fresh IP
            // identification for each packet from a hashed table shared by all cores
            // (`__ip_select_ident`, a cache line bouncing between the pacing threads);
            // with DF the ID is left at 0 (RFC 6864 §4.1: the ID of an atomic datagram has
            // no meaning).
            rustix::net::sockopt::set_ip_mtu_discover(&rtp, Ipv4PathMtuDiscovery::DO)?;
        }
        #[allow(deprecated)]
        let rtp = AsyncFd::with_interest(rtp, Interest::READABLE)?;
        Ok(Bound {
            socket: rtp,
            rtcp: UdpSocket::from_std(rtcp)?,
            _lease: lease,
        })
    }

    /// One non-blocking send: a full socket buffer drops the packet rather than delaying
    /// every other stream of the shard.
    pub fn send_rtp(&self, packet: &[u8], dest: &SockAddr) -> std::io::Result<usize> {
        SockRef::from(self.socket.get_ref()).send_to(packet, dest)
    }

    /// Waits for one RTP datagram.
    pub async fn recv_rtp(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.socket.readable().await?;
            // WouldBlock clears the readiness and waits again; anything else is the answer.
            if let Ok(result) = ready.try_io(|s| s.get_ref().recv_from(buf)) {
                return result;
            }
        }
    }
}

#[derive(Debug)]
pub(super) struct Ports {
    pub ip: IpAddr,
    /// Even ports p with p + 1 in the range.
    candidates: Vec<u16>,
    state: Mutex<PortState>,
    range: (u16, u16),
}

#[derive(Debug, Default)]
struct PortState {
    used: BTreeSet<u16>,
    /// Where the next search starts: rotating avoids reusing a just-freed port, whose late
    /// packets from the previous call would otherwise reach the next one.
    cursor: usize,
}

impl Ports {
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Result<Ports, MediaError> {
        let (start, end) = (*range.start(), *range.end());
        let candidates: Vec<u16> = (start..end).filter(|p| p % 2 == 0).collect();
        if candidates.is_empty() {
            return Err(MediaError::PortsExhausted { start, end });
        }
        Ok(Ports {
            ip,
            candidates,
            state: Mutex::new(PortState::default()),
            range: (start, end),
        })
    }

    /// Binds a free even port for RTP and the odd port above it for RTCP (RFC 3550 §11).
    pub fn bind(self: &Arc<Self>) -> Result<(StdUdpSocket, StdUdpSocket, PortLease), MediaError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.candidates.len();
        for k in 0..n {
            let i = (state.cursor + k) % n;
            let port = self.candidates[i];
            if state.used.contains(&port) {
                continue;
            }
            // Another process may hold either port: then try the next pair.
            let Ok(rtp) = StdUdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            let Ok(rtcp) = StdUdpSocket::bind(SocketAddr::new(self.ip, port + 1)) else {
                continue;
            };
            rtp.set_nonblocking(true)?;
            rtcp.set_nonblocking(true)?;
            state.used.insert(port);
            state.cursor = (i + 1) % n;
            let lease = PortLease {
                ports: self.clone(),
                port,
            };
            return Ok((rtp, rtcp, lease));
        }
        Err(MediaError::PortsExhausted {
            start: self.range.0,
            end: self.range.1,
        })
    }
}

#[derive(Debug)]
pub(super) struct PortLease {
    ports: Arc<Ports>,
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut state = self.ports.state.lock().unwrap_or_else(|e| e.into_inner());
        state.used.remove(&self.port);
    }
}
