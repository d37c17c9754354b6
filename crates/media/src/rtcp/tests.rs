use super::*;

fn block() -> ReportBlock {
    ReportBlock {
        ssrc: 0x1234_5678,
        fraction_lost: 25,
        cumulative_lost: -3,
        highest_seq: 0x0001_0005,
        jitter: 42,
        lsr: 0xAABB_CCDD,
        dlsr: 65_536,
    }
}

#[test]
fn sr_with_sdes_and_bye_round_trips() {
    let info = SenderInfo {
        ntp: 0xE000_0000_8000_0000,
        rtp_ts: 160_000,
        packets: 1000,
        octets: 160_000,
    };
    let mut out = Vec::new();
    write_report(
        &mut out,
        0xCAFE,
        Some(&info),
        &[block()],
        "abc@ligne-directe",
    );
    write_bye(&mut out, 0xCAFE, Some("fin d'appel"));
    assert_eq!(out.len() % 4, 0);
    // SR: 4 header + 24 sender part + 24 block = 52 bytes; length field counts words - 1.
    assert_eq!(&out[..4], &[0x81, 200, 0, 12]);
    let packets = parse_compound(&out).unwrap();
    assert_eq!(packets.len(), 3);
    assert_eq!(
        packets[0],
        RtcpPacket::SenderReport {
            ssrc: 0xCAFE,
            info,
            reports: vec![block()],
        }
    );
    assert_eq!(
        packets[1],
        RtcpPacket::Other {
            packet_type: PT_SDES
        }
    );
    assert_eq!(
        packets[2],
        RtcpPacket::Bye {
            sources: vec![0xCAFE],
            reason: Some("fin d'appel".into()),
        }
    );
}

#[test]
fn rr_without_blocks_and_bye_without_reason() {
    let mut out = Vec::new();
    write_report(&mut out, 7, None, &[], "x");
    write_bye(&mut out, 7, None);
    let packets = parse_compound(&out).unwrap();
    assert_eq!(
        packets[0],
        RtcpPacket::ReceiverReport {
            ssrc: 7,
            reports: vec![]
        }
    );
    assert_eq!(
        packets[2],
        RtcpPacket::Bye {
            sources: vec![7],
            reason: None
        }
    );
    // At most 31 blocks fit the 5-bit count.
    let mut out = Vec::new();
    write_report(&mut out, 7, None, &[block(); 40], "x");
    match &parse_compound(&out).unwrap()[0] {
        RtcpPacket::ReceiverReport { reports, .. } => assert_eq!(reports.len(), 31),
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    assert_eq!(parse_compound(&[]), Err(RtcpError::TooShort));
    assert_eq!(parse_compound(&[0x80, 200]), Err(RtcpError::TooShort));
    assert_eq!(
        parse_compound(&[0x40, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::BadVersion(1))
    );
    // Length says 3 words after the header, datagram has 1.
    assert_eq!(
        parse_compound(&[0x80, 201, 0, 3, 0, 0, 0, 1]),
        Err(RtcpError::LengthOverrun)
    );
    // RR claiming 2 blocks with none present.
    assert_eq!(
        parse_compound(&[0x82, 201, 0, 1, 0, 0, 0, 1]),
        Err(RtcpError::Truncated("RR"))
    );
    // BYE claiming 3 sources with one present.
    assert_eq!(
        parse_compound(&[0x83, 203, 0, 1, 0, 0, 0, 1]),
        Err(RtcpError::Truncated("BYE"))
    );
    // Padding in a packet that is not the last one.
    let mut p = vec![0xA0, 201, 0, 1, 0, 0, 0, 4];
    p.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 1]);
    assert_eq!(parse_compound(&p), Err(RtcpError::BadPadding));
    // Padding count larger than the body, and zero.
    assert_eq!(
        parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 9]),
        Err(RtcpError::BadPadding)
    );
    assert_eq!(
        parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::BadPadding)
    );
    // A BYE whose reason length overruns is read without the reason.
    let p = [0x81, 203, 0, 2, 0, 0, 0, 9, 200, b'a', b'b', 0];
    assert_eq!(
        parse_compound(&p).unwrap(),
        vec![RtcpPacket::Bye {
            sources: vec![9],
            reason: None
        }]
    );
    // Exhaustive-ish: every prefix of a valid compound, and byte flips, never panic.
    let mut out = Vec::new();
    write_report(
        &mut out,
        1,
        Some(&SenderInfo {
            ntp: 1,
            rtp_ts: 2,
            packets: 3,
            octets: 4,
        }),
        &[block()],
        "c",
    );
    write_bye(&mut out, 1, Some("r"));
    for len in 0..out.len() {
        let _ = parse_compound(&out[..len]);
        for flip in [0x01u8, 0x1F, 0x20, 0x80, 0xFF] {
            let mut m = out.clone();
            m[len] ^= flip;
            let _ = parse_compound(&m);
        }
    }
}

#[test]
fn ntp_timestamps_and_intervals() {
    // 1970-01-01 is 2,208,988,800 s after the NTP epoch; half a second is 2^31.
    assert_eq!(ntp_timestamp(Duration::ZERO), 2_208_988_800u64 << 32);
    assert_eq!(
        ntp_timestamp(Duration::from_millis(1500)),
        ((2_208_988_801u64) << 32) | (1 << 31)
    );
    assert_eq!(report_interval(0.0), Duration::from_millis(2500));
    assert_eq!(report_interval(0.5), Duration::from_secs(5));
    assert_eq!(report_interval(7.0), Duration::from_millis(7500));
}

#[test]
fn reception_stats_count_loss_wraparound_and_jitter() {
    let t0 = Instant::now();
    let mut s = ReceptionStats::new();
    assert_eq!(s.report_block(t0), None);
    // 65530..=65535, then 0..=9 with 3 and 4 lost: 14 received of 16 expected, across a wrap.
    let seqs: Vec<u16> = (65_530..=65_535)
        .chain((0..10).filter(|&q| q != 3 && q != 4))
        .collect();
    for (k, &seq) in seqs.iter().enumerate() {
        let at = t0 + Duration::from_millis(20 * k as u64);
        // Perfectly paced: no jitter.
        s.on_rtp(at, 0xABC, seq, 1000 + 160 * k as u32, 8000);
    }
    let b = s.report_block(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(b.ssrc, 0xABC);
    assert_eq!(b.highest_seq, 0x0001_0009);
    assert_eq!(b.cumulative_lost, 2);
    assert_eq!(b.fraction_lost, (2 * 256 / 16) as u8);
    assert_eq!(b.jitter, 0);
    assert_eq!((b.lsr, b.dlsr), (0, 0));
    // The next report counts only what happened since: nothing lost.
    s.on_rtp(
        t0 + Duration::from_millis(400),
        0xABC,
        10,
        1000 + 160 * 20,
        8000,
    );
    let b = s.report_block(t0 + Duration::from_secs(2)).unwrap();
    assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 2));

    // Arrivals alternating 10 ms early and late: the jitter estimate climbs toward 80 units.
    let mut j = ReceptionStats::new();
    for k in 0..200u32 {
        let wobble = if k % 2 == 0 { 0 } else { 10 };
        let at = t0 + Duration::from_millis(u64::from(20 * k + wobble));
        j.on_rtp(at, 1, k as u16, 160 * k, 8000);
    }
    let jitter = j.report_block(t0).unwrap().jitter;
    assert!((60..=80).contains(&jitter), "jitter {jitter}");

    // LSR/DLSR: the middle 32 bits of the SR's NTP time and the delay since, in 1/65536 s.
    s.on_sender_report(t0, 0x1122_3344_5566_7788);
    let b = s.report_block(t0 + Duration::from_millis(500)).unwrap();
    assert_eq!(b.lsr, 0x3344_5566);
    assert_eq!(b.dlsr, 32_768);

    // A new SSRC restarts the statistics.
    s.on_rtp(t0, 0xDEF, 500, 0, 8000);
    let b = s.report_block(t0).unwrap();
    assert_eq!((b.ssrc, b.highest_seq, b.cumulative_lost), (0xDEF, 500, 0));
}
