//! The ACD against real peers (issue 5): Kamailio as the site PBX, SIPp desk
//! phones registered as agentN, SIPp citizens calling 3939, acdd registered
//! on the PBX and ringing the agents through it, one after another.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use ligne_directe_e2e::acdd::{self, Acdd};
use ligne_directe_e2e::agents::{self, journal, CallerSpec, Mode, QueueSpec, RtpPeer};
use ligne_directe_e2e::audio::RtpListener;
use ligne_directe_e2e::kamailio::Kamailio;
use ligne_directe_e2e::sipp::{Sipp, TracedMessage};
use ligne_directe_e2e::{serial, state_dir, wait_for};

/// Packets whose decoded RMS is above this carry speech, not silence.
const SPEECH_RMS: f64 = 300.0;

/// The PBX, the phones (registered before acdd starts, so that they are
/// reachable from its first offer), then acdd with the agents and the queue.
struct Site {
    state: PathBuf,
    pbx: Kamailio,
    acdd: Acdd,
}

fn site(
    test: &str,
    queue: QueueSpec,
    phones: &mut dyn FnMut(&std::path::Path) -> Vec<(u16, Sipp)>,
) -> (Site, Vec<(u16, Sipp)>) {
    site_with(test, queue, SiteOptions::default(), phones)
}

/// What a test changes in [`site`].
struct SiteOptions {
    /// Writes the dialplan into the state dir.
    plan: fn(&std::path::Path) -> PathBuf,
    /// Kamailio config defines (e.g. `AUTH_INVITE`).
    pbx_defines: &'static [&'static str],
    /// The control API on 127.0.0.1:5081.
    control_api: bool,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            plan: agents::queue_dialplan,
            pbx_defines: &[],
            control_api: false,
        }
    }
}

fn site_with(
    test: &str,
    queue: QueueSpec,
    options: SiteOptions,
    phones: &mut dyn FnMut(&std::path::Path) -> Vec<(u16, Sipp)>,
) -> (Site, Vec<(u16, Sipp)>) {
    let state = state_dir(test);
    let pbx = Kamailio::start(&state, options.pbx_defines);
    let phones = phones(&state);
    for (n, phone) in &phones {
        let aor = format!("agent{n}");
        assert!(
            pbx.wait_registered(&aor, Duration::from_secs(10)).is_some(),
            "{aor} never registered:\n{}",
            phone.describe()
        );
    }
    let plan = (options.plan)(&state);
    let cfg = acdd::config(&state, true, Some(&plan));
    agents::append_acd(&cfg, &queue);
    if options.control_api {
        let mut text = std::fs::read_to_string(&cfg).expect("read the config");
        text.push_str("\n[control]\nlisten = \"127.0.0.1:5081\"\n");
        std::fs::write(&cfg, text).expect("write the config");
    }
    let acdd = Acdd::start(&state, &cfg, &[]);
    pbx.wait_registered("acd", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("acdd never registered on the PBX:\n{}", acdd.log()));
    (Site { state, pbx, acdd }, phones)
}

impl Site {
    /// The end of acdd's log (it can be long), for failure messages.
    fn log_tail(&self) -> String {
        let log = self.acdd.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(150)..].join("\n")
    }

    /// Waits for acdd's 200 OK to the caller's INVITE; returns the audio
    /// address of its SDP (where the caller's phone sends its RTP).
    fn answered(&self, caller: &Sipp) -> std::net::SocketAddr {
        let answer = wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
            responses(caller, 200, true, "INVITE").into_iter().next()
        })
        .unwrap_or_else(|| {
            panic!(
                "never answered:\n{}\n{}",
                caller.describe(),
                self.log_tail()
            )
        });
        agents::sdp_audio_addr(answer.body())
            .unwrap_or_else(|| panic!("no audio address in the 200: {}", answer.text))
    }

    fn journal(&self) -> Vec<Value> {
        journal::read(&self.acdd.config)
    }

    /// The record of the call with this SIP Call-ID (written when it ends).
    fn record(&self, call_id: &str) -> Value {
        wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            self.acdd
                .report_calls()
                .into_iter()
                .find(|r| r["call_id"] == call_id)
        })
        .unwrap_or_else(|| {
            panic!(
                "no record for {call_id}: {:?}\n--- acdd\n{}",
                self.acdd.report_calls(),
                self.log_tail()
            )
        })
    }
}

fn phone_n(phones: &[(u16, Sipp)], n: u16) -> &Sipp {
    &phones.iter().find(|(m, _)| *m == n).expect("that phone").1
}

/// Requests of this method a SIPp process received, in order.
fn received(sipp: &Sipp, method: &str) -> Vec<TracedMessage> {
    sipp.trace()
        .into_iter()
        .filter(|m| m.received && m.first_line.starts_with(&format!("{method} ")))
        .collect()
}

/// Responses with this status a SIPp process sent or received.
fn responses(
    sipp: &Sipp,
    status: u16,
    was_received: bool,
    cseq_method: &str,
) -> Vec<TracedMessage> {
    sipp.trace()
        .into_iter()
        .filter(|m| m.received == was_received && m.status() == Some(status))
        .filter(|m| agents::header(&m.text, "CSeq").is_some_and(|c| c.ends_with(cseq_method)))
        .collect()
}

/// Waits until the caller's SIPp got `n` 200 OKs to its INVITEs: acdd
/// answered them, and (the dialplan's next node) put them in the queue.
fn wait_answered(sipp: &Sipp, n: usize, limit: Duration) -> bool {
    wait_for(limit, Duration::from_millis(20), || {
        (responses(sipp, 200, true, "INVITE").len() >= n).then_some(())
    })
    .is_some()
}

fn the_call_id(sipp: &Sipp) -> String {
    agents::sent_invite_call_ids(sipp)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no INVITE sent:\n{}", sipp.describe()))
}

fn time_of(record: &Value, key: &str) -> f64 {
    record[key]
        .as_str()
        .and_then(agents::epoch)
        .unwrap_or_else(|| panic!("{key} missing or unreadable in {record}"))
}

#[test]
fn agent1_no_answer_agent2_busy_agent3_answers_and_is_bridged_with_audio_both_ways() {
    let _ports = serial();
    // The phones' media ends: the test sends and receives on the ports the
    // caller's and agent3's SDP announce (what acdd relays arrives there,
    // whether it answers to the SDP address or to the packets' source).
    let mut caller_rtp = RtpPeer::bind(41000);
    let mut agent_rtp = RtpPeer::bind(42100);
    let (site, phones) = site(
        "acd-seq",
        QueueSpec::of(&["agent1", "agent2", "agent3"]),
        &mut |state| {
            vec![
                (1, agents::phone(state, 1, Mode::NoAnswer, None, None)),
                (2, agents::phone(state, 2, Mode::Busy, None, None)),
                (
                    3,
                    agents::phone(state, 3, Mode::answer(1000, 0), Some(agent_rtp.port), None),
                ),
            ]
        },
    );
    // The caller hangs up 20 s after acdd answered it: ~5 s of ringing
    // agent1 then agent3, then ~14 s bridged.
    let mut caller = agents::caller(
        &site.state,
        &CallerSpec {
            rtp_port: caller_rtp.port,
            hold_ms: 20_000,
            ..CallerSpec::citizen()
        },
    );
    // Once answered, the caller speaks all along (SIPp's sample played
    // backwards, 28 s) to acdd's SDP address.
    let acdd_caller_side = site.answered(&caller);
    let speech_bytes = agents::reversed_speech(4);
    caller_rtp.send_alaw(acdd_caller_side, speech_bytes.clone());
    // Once agent3 has the ACK, it speaks (SIPp's sample, twice) to acdd's
    // SDP address of the agent leg.
    let a3 = phone_n(&phones, 3);
    let offer3 = wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        let acked = !received(a3, "ACK").is_empty();
        received(a3, "INVITE").into_iter().next().filter(|_| acked)
    })
    .unwrap_or_else(|| {
        panic!(
            "agent3 never answered:\n{}\n{}",
            a3.describe(),
            site.log_tail()
        )
    });
    let acdd_agent_side = agents::sdp_audio_addr(offer3.body())
        .unwrap_or_else(|| panic!("no audio address in the INVITE to agent3: {}", offer3.text));
    let sample_bytes = agents::sample_alaw();
    agent_rtp.send_alaw(acdd_agent_side, sample_bytes.repeat(2));

    let ok = caller.wait_success(Duration::from_secs(90));
    let (a1, a2) = (phone_n(&phones, 1), phone_n(&phones, 2));
    assert!(
        ok,
        "the call failed:\n{}\n--- agent3\n{}\n--- acdd\n{}",
        caller.describe(),
        a3.describe(),
        site.log_tail()
    );

    // SIP, as the phones saw it: agent1 rang and was cancelled, agent2
    // answered 486, agent3 answered; in that order.
    let inv1 = received(a1, "INVITE");
    let inv2 = received(a2, "INVITE");
    let inv3 = received(a3, "INVITE");
    assert_eq!(
        (inv1.len(), inv2.len(), inv3.len()),
        (1, 1, 1),
        "one offer per agent:\n--- acdd\n{}",
        site.log_tail()
    );
    assert_eq!(
        received(a1, "CANCEL").len(),
        1,
        "agent1 is cancelled after the ring timeout"
    );
    assert_eq!(responses(a2, 486, false, "INVITE").len(), 1);
    assert!(
        inv1[0].at < inv2[0].at && inv2[0].at < inv3[0].at,
        "sequential: agent1, agent2, agent3"
    );
    let rang = inv2[0].at - inv1[0].at;
    assert!(
        (3.5..6.0).contains(&rang),
        "agent1 rang {rang:.1} s (ring_timeout 4 s)"
    );
    let ack3 = received(a3, "ACK")
        .first()
        .map(|m| m.at)
        .unwrap_or_else(|| panic!("agent3 never got the ACK:\n{}", a3.describe()));
    let trace = caller.trace();
    let caller_bye = trace
        .iter()
        .find(|m| !m.received && m.first_line.starts_with("BYE "))
        .map(|m| m.at)
        .unwrap_or_else(|| panic!("the caller never hung up:\n{}", caller.describe()));
    assert!(ack3 < caller_bye, "bridged before the caller hung up");

    // Audio, agent -> caller: agent3's speech (SIPp's sample) relayed by acdd
    // arrives where the caller's SDP points.
    let heard = caller_rtp.packets();
    let bridged: Vec<_> = heard
        .iter()
        .filter(|p| p.at > ack3 && p.at < caller_bye)
        .collect();
    let audible = bridged.iter().filter(|p| p.rms() > SPEECH_RMS).count();
    let from_agent = agents::packets_from(&bridged, &sample_bytes, SPEECH_RMS);
    assert!(
        audible >= 100 && from_agent >= 100,
        "caller side, while bridged: {} packets, {audible} audible, {from_agent} carrying agent3's speech",
        bridged.len()
    );
    // Audio, caller -> agent: the caller's speech relayed to agent3's SDP address.
    let to_agent = agent_rtp.packets();
    let to_agent: Vec<_> = to_agent.iter().filter(|p| p.at > ack3).collect();
    let audible = to_agent.iter().filter(|p| p.rms() > SPEECH_RMS).count();
    let from_caller = agents::packets_from(&to_agent, &speech_bytes, SPEECH_RMS);
    assert!(
        audible >= 150 && from_caller >= 150,
        "agent side: {} packets, {audible} audible, {from_caller} carrying the caller's speech",
        to_agent.len()
    );

    eprintln!(
        "bridged: caller heard {from_agent} packets of agent3's speech, agent3 heard {from_caller} of the caller's"
    );

    // The record and the journal.
    let call_id = the_call_id(&caller);
    let record = site.record(&call_id);
    assert_eq!(record["agent"], "agent3", "{record}");
    assert_eq!(record["queue"], "accueil", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["hangup_by"], "caller", "{record}");
    assert!(
        time_of(&record, "queued_at") <= time_of(&record, "connected_at"),
        "{record}"
    );
    let talk = record["talk_seconds"].as_f64().unwrap_or(0.0);
    assert!(talk >= 10.0, "talk {talk} s: {record}");
    let offers = journal::offers(&site.journal(), Some(&call_id));
    let expected: Vec<(String, String)> = [
        ("agent1", "no_answer"),
        ("agent2", "busy"),
        ("agent3", "answered"),
    ]
    .iter()
    .map(|(a, r)| (a.to_string(), r.to_string()))
    .collect();
    assert_eq!(
        offers,
        expected,
        "the journal's offers:\n{:#?}",
        site.journal()
    );
}

#[test]
fn ten_callers_and_three_agents_are_all_served_in_arrival_order() {
    let _ports = serial();
    let _caller_rtp = RtpListener::bind(41000);
    // Each agent answers after 1 s and hangs up 2 s later.
    let (site, phones) = site(
        "acd-fifo",
        QueueSpec::of(&["agent1", "agent2", "agent3"]),
        &mut |state| {
            (1..=3)
                .map(|n| {
                    (
                        n,
                        agents::phone(state, n, Mode::answer(1000, 2000), None, None),
                    )
                })
                .collect()
        },
    );
    // 10 citizens, one a second (the estimated-wait sentences differ by
    // < 0.6 s, so arrival order at acdd is queue order), each waiting for
    // acdd's BYE.
    let mut callers = agents::caller(
        &site.state,
        &CallerSpec {
            name: "callers",
            count: 10,
            ..CallerSpec::citizen()
        },
    );
    assert!(
        callers.wait_success(Duration::from_secs(150)),
        "some calls failed:\n{}\n--- acdd\n{}",
        callers.describe(),
        site.log_tail()
    );
    let ids = agents::sent_invite_call_ids(&callers);
    assert_eq!(ids.len(), 10);
    let mut records: Vec<Value> = ids.iter().map(|id| site.record(id)).collect();
    for r in &records {
        assert_eq!(r["outcome"], "answered", "{r}");
        assert_eq!(r["queue"], "accueil", "{r}");
        assert_eq!(r["hangup_by"], "agent", "{r}");
        assert!(
            ["agent1", "agent2", "agent3"].contains(&r["agent"].as_str().unwrap_or("")),
            "answered by an agent: {r}"
        );
    }
    records.sort_by(|a, b| time_of(a, "arrived_at").total_cmp(&time_of(b, "arrived_at")));
    let queued: Vec<f64> = records.iter().map(|r| time_of(r, "queued_at")).collect();
    let connected: Vec<f64> = records.iter().map(|r| time_of(r, "connected_at")).collect();
    let show = || {
        records
            .iter()
            .map(|r| {
                format!(
                    "{} arrived {} queued {} connected {} agent {}",
                    r["call_id"], r["arrived_at"], r["queued_at"], r["connected_at"], r["agent"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        queued.windows(2).all(|w| w[0] <= w[1]),
        "queued in arrival order:\n{}",
        show()
    );
    // Two agents answering in the same few milliseconds may swap their 200s:
    // a tolerance of 0.2 s, far below the 1 s between arrivals.
    assert!(
        connected.windows(2).all(|w| w[0] <= w[1] + 0.2),
        "connected in arrival order:\n{}",
        show()
    );
    // The ACD's own decisions: each caller's first offer in arrival order.
    let journal = site.journal();
    let first_offers: Vec<usize> = records
        .iter()
        .map(|r| {
            let id = r["call_id"].as_str().unwrap_or("");
            journal::first_offer_index(&journal, id).unwrap_or_else(|| panic!("no offer for {id}"))
        })
        .collect();
    assert!(
        first_offers.windows(2).all(|w| w[0] < w[1]),
        "offered in arrival order: journal indexes {first_offers:?}\n{}",
        show()
    );
    let used: std::collections::BTreeSet<&str> =
        records.iter().filter_map(|r| r["agent"].as_str()).collect();
    assert!(
        used.len() >= 2,
        "10 callers kept more than one agent busy: {used:?}"
    );
    let invites: usize = phones
        .iter()
        .map(|(_, p)| received(p, "INVITE").len())
        .sum();
    assert_eq!(invites, 10, "one offer per caller, all answered");
}

#[test]
fn an_agent_hanging_up_mid_call_ends_the_callers_leg() {
    let _ports = serial();
    let _caller_rtp = RtpListener::bind(41000);
    // agent1 answers after 0.5 s and hangs up 3 s later.
    let (site, phones) = site("acd-agent-bye", QueueSpec::of(&["agent1"]), &mut |state| {
        vec![(
            1,
            agents::phone(state, 1, Mode::answer(500, 3000), None, None),
        )]
    });
    // The caller waits for acdd's BYE (at most the 60 s below).
    let mut caller = agents::caller(&site.state, &CallerSpec::citizen());
    let ok = caller.wait_success(Duration::from_secs(60));
    let agent = phone_n(&phones, 1);
    assert!(
        ok,
        "the caller's leg was not ended:\n{}\n--- agent1\n{}\n--- acdd\n{}",
        caller.describe(),
        agent.describe(),
        site.log_tail()
    );
    let agent_bye = agent
        .trace()
        .into_iter()
        .find(|m| !m.received && m.first_line.starts_with("BYE "))
        .map(|m| m.at)
        .unwrap_or_else(|| panic!("agent1 never hung up:\n{}", agent.describe()));
    assert_eq!(
        responses(agent, 200, true, "BYE").len(),
        1,
        "acdd answers the agent's BYE"
    );
    let caller_bye = received(&caller, "BYE")
        .first()
        .map(|m| m.at)
        .unwrap_or_else(|| panic!("the caller got no BYE:\n{}", caller.describe()));
    assert!(
        caller_bye >= agent_bye && caller_bye - agent_bye < 2.0,
        "the caller's BYE {:.3} s after the agent's",
        caller_bye - agent_bye
    );
    assert!(
        responses(&caller, 200, false, "BYE").len() == 1,
        "the caller answered 200 to the BYE"
    );
    let record = site.record(&the_call_id(&caller));
    assert_eq!(record["agent"], "agent1", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["hangup_by"], "agent", "{record}");
    let talk = record["talk_seconds"].as_f64().unwrap_or(0.0);
    assert!((2.0..6.0).contains(&talk), "talk {talk} s: {record}");
}

#[test]
fn a_callback_requested_at_position_3_is_placed_when_its_turn_comes() {
    let _ports = serial();
    let _listeners: Vec<RtpListener> = (0..3).map(|i| RtpListener::bind(41000 + 2 * i)).collect();
    // Caller 3's phone media end: it presses 2 from there (RFC 4733) and
    // hears the confirmation there.
    let mut c3_rtp = RtpPeer::bind(41006);
    // agent1, the only member: answers after 0.5 s; a first long call
    // (40 s: time for three more callers to arrive, ~9 s of early media
    // each), then 5 s calls. agent6 plays the citizen's phone, called back:
    // answers after 0.5 s, hangs up 2 s later.
    let (site, phones) = site("acd-callback", QueueSpec::of(&["agent1"]), &mut |state| {
        vec![
            (
                1,
                agents::phone(
                    state,
                    1,
                    Mode::Answer {
                        ring_ms: 500,
                        first_talk_ms: 40_000,
                        talk_ms: 5000,
                    },
                    None,
                    None,
                ),
            ),
            (
                6,
                agents::phone(state, 6, Mode::answer(500, 2000), None, None),
            ),
        ]
    });
    let agent = phone_n(&phones, 1);
    let citizen = phone_n(&phones, 6);
    let spec = |i: u16, name: &'static str, from_user: &'static str| CallerSpec {
        name,
        from_user,
        sip_port: 5090 + i,
        media_port: 41100 + 10 * i,
        rtp_port: 41000 + 2 * i,
        ..CallerSpec::citizen()
    };

    // Caller 0 keeps agent1 busy.
    let mut c0 = agents::caller(&site.state, &spec(0, "caller0", "+33600000000"));
    let busy = wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
        (!received(agent, "ACK").is_empty()).then_some(())
    });
    assert!(
        busy.is_some(),
        "agent1 never took caller 0:\n{}\n--- acdd\n{}",
        c0.describe(),
        site.log_tail()
    );
    // Callers 1 and 2 wait at positions 1 and 2; each starts once the one
    // before is answered by acdd (= in the queue), so the order is certain.
    let mut c1 = agents::caller(&site.state, &spec(1, "caller1", "+33600000001"));
    assert!(
        wait_answered(&c1, 1, Duration::from_secs(30)),
        "caller 1 never queued:\n{}",
        c1.describe()
    );
    let mut c2 = agents::caller(&site.state, &spec(2, "caller2", "+33600000002"));
    assert!(
        wait_answered(&c2, 1, Duration::from_secs(30)),
        "caller 2 never queued:\n{}",
        c2.describe()
    );
    // Caller 3 calls from agent6's number (a phone the PBX can reach) and
    // presses 2 once in the line, at position 3.
    let mut c3 = agents::caller(&site.state, &spec(3, "caller3", "agent6"));
    let acdd_side = site.answered(&c3);
    let c3_id = the_call_id(&c3);
    let queued3 = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        journal::arrival_position(&site.journal(), &c3_id)
    });
    assert_eq!(queued3, Some(3), "caller 3 joins the line at position 3");
    let pressed = agents::epoch_now();
    c3_rtp.send_digit(acdd_side, '2');
    assert!(
        c3.wait_success(Duration::from_secs(60)),
        "caller 3 was not told and hung up by acdd:\n{}\n--- acdd\n{}",
        c3.describe(),
        site.log_tail()
    );
    let c3_bye = received(&c3, "BYE")
        .first()
        .map(|m| m.at)
        .expect("caller 3's BYE");
    let confirmation = c3_rtp
        .packets()
        .iter()
        .filter(|p| p.at > pressed && p.at < c3_bye && p.rms() > SPEECH_RMS)
        .count();
    // "C'est noté : un conseiller vous rappellera…" lasts 6.5 s.
    assert!(
        confirmation >= 150,
        "caller 3 heard {confirmation} audible packets between the key and acdd's BYE"
    );

    // Callers 0, 1, 2 are served; then the callback.
    for c in [&mut c0, &mut c1, &mut c2] {
        assert!(
            c.wait_success(Duration::from_secs(90)),
            "a waiting caller was not served:\n{}\n--- acdd\n{}",
            c.describe(),
            site.log_tail()
        );
    }
    let citizen_invite = wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
        received(citizen, "INVITE").into_iter().next()
    })
    .unwrap_or_else(|| {
        panic!(
            "the citizen (agent6) was never called back:\n{}\n--- journal\n{:#?}\n--- acdd\n{}",
            citizen.describe(),
            site.journal(),
            site.log_tail()
        )
    });
    assert!(
        citizen_invite.first_line.contains("agent6")
            || agents::header(&citizen_invite.text, "To").is_some_and(|t| t.contains("agent6")),
        "called back at the number caller 3 called from: {}",
        citizen_invite.text
    );
    let c2_end = received(&c2, "BYE")
        .first()
        .map(|m| m.at)
        .expect("caller 2's BYE");
    assert!(
        citizen_invite.at > c2_end,
        "the callback waited for its turn: placed {:.1} s after caller 2's call ended",
        citizen_invite.at - c2_end
    );
    let agent_invites = received(agent, "INVITE");
    assert_eq!(
        agent_invites.len(),
        4,
        "agent1: callers 0, 1, 2, then the callback offer"
    );
    assert!(
        agent_invites[3].at < citizen_invite.at,
        "the agent first, then the citizen"
    );

    // The journal: promised at position 3, placed, completed.
    let steps = wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
        let steps = journal::callback_steps(&site.journal());
        steps.contains(&"completed".to_string()).then_some(steps)
    })
    .unwrap_or_else(|| {
        panic!(
            "no callback_completed in the journal:\n{:#?}",
            site.journal()
        )
    });
    assert_eq!(
        steps,
        ["promised", "placed", "completed"],
        "{:#?}",
        site.journal()
    );
    let journal = site.journal();
    assert_eq!(
        journal::callback_position(&journal),
        Some(3),
        "{journal:#?}"
    );
    let positions: Vec<Option<u64>> = [&c1, &c2, &c3]
        .iter()
        .map(|c| journal::arrival_position(&journal, &the_call_id(c)))
        .collect();
    assert_eq!(positions, [Some(1), Some(2), Some(3)], "{journal:#?}");
    // Promised while agent1 was still on caller 0's call.
    let promised = journal::first(&journal, "callback_promised")
        .and_then(|e| e["at"].as_str())
        .and_then(agents::epoch)
        .expect("when the callback was promised");
    let first_call_end = agent
        .trace()
        .into_iter()
        .find(|m| !m.received && m.first_line.starts_with("BYE "))
        .map(|m| m.at)
        .expect("agent1 hung up caller 0's call");
    assert!(
        promised < first_call_end,
        "promised {:.1} s after caller 0's call ended",
        promised - first_call_end
    );
    let placed = journal::index_of(&journal, "callback_placed").expect("placed");
    assert!(
        journal::answers(&journal)
            .iter()
            .filter(|i| **i < placed)
            .count()
            >= 3,
        "callers 0, 1, 2 answered before the callback was placed: {journal:#?}"
    );

    // The records: callers 1 and 2 served by agent1; caller 3's call ended by
    // acdd after the confirmation, not abandoned.
    for c in [&c1, &c2] {
        let r = site.record(&the_call_id(c));
        assert_eq!(r["agent"], "agent1", "{r}");
        assert_eq!(r["outcome"], "answered", "{r}");
    }
    let r3 = site.record(&the_call_id(&c3));
    assert_eq!(r3["hangup_by"], "system", "{r3}");
    assert_ne!(
        r3["outcome"], "abandoned",
        "a promised callback is not an abandon: {r3}"
    );
}

/// The status of one agent through the control API.
fn agent_status(port: u16, agent: &str) -> (String, bool) {
    let (code, body) = agents::http(port, "GET", "/api/v1/status");
    assert_eq!(code, 200, "{body}");
    let a = body["agents"]
        .as_array()
        .and_then(|v| v.iter().find(|a| a["id"] == agent))
        .cloned()
        .unwrap_or_else(|| panic!("{agent} not in {body}"));
    (
        a["status"].as_str().unwrap_or("").to_string(),
        a["reachable"].as_bool().unwrap_or(false),
    )
}

#[test]
fn feature_codes_and_the_control_api_pause_and_resume_an_agent() {
    let _ports = serial();
    let (site, phones) = site_with(
        "acd-features",
        QueueSpec::of(&["agent1"]),
        SiteOptions {
            pbx_defines: &[],
            control_api: true,
            ..SiteOptions::default()
        },
        &mut |state| {
            vec![(
                1,
                agents::phone(state, 1, Mode::answer(500, 2000), None, None),
            )]
        },
    );
    let (state, acdd, phone) = (&site.state, &site.acdd, phone_n(&phones, 1));
    // The phone answers the reachability probes.
    let reachable =
        ligne_directe_e2e::wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
            let (status, reachable) = agent_status(5081, "agent1");
            (status == "available" && reachable).then_some(())
        });
    assert!(
        reachable.is_some(),
        "agent1 never available and reachable:\n{}",
        acdd.log()
    );

    // agent1 dials *52 from a desk phone (From user agent1): paused.
    let mut code = agents::caller_to(
        state,
        &CallerSpec {
            name: "pause-code",
            from_user: "agent1",
            sip_port: 5095,
            media_port: 41020,
            rtp_port: 41030,
            ..CallerSpec::citizen()
        },
        "*52",
    );
    assert!(
        code.wait_success(Duration::from_secs(30)),
        "the feature code call failed:\n{}\n{}",
        code.describe(),
        acdd.log()
    );
    assert_eq!(agent_status(5081, "agent1").0, "paused");

    // A caller arrives: the paused agent is not rung.
    let _caller_rtp = RtpListener::bind(41000);
    let mut caller = agents::caller(state, &CallerSpec::citizen());
    let (code_waiting, waiting) =
        ligne_directe_e2e::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
            let (code, body) = agents::http(5081, "GET", "/api/v1/status");
            (body["queues"][0]["waiting"] == 1).then_some((code, body))
        })
        .unwrap_or_else(|| panic!("the caller never waited:\n{}", acdd.log()));
    assert_eq!(code_waiting, 200, "{waiting}");
    assert!(
        !phone
            .trace()
            .iter()
            .any(|m| m.received && m.first_line.starts_with("INVITE")),
        "a paused agent must not be rung"
    );

    // The API resumes the agent: the caller is put through.
    let (code_resume, body) = agents::http(5081, "POST", "/api/v1/agents/agent1/resume");
    assert_eq!(code_resume, 200, "{body}");
    assert!(
        caller.wait_success(Duration::from_secs(60)),
        "{}\n{}",
        caller.describe(),
        acdd.log()
    );
    let records = acdd.report_calls();
    let served = records
        .iter()
        .find(|r| r["caller"] == "+33612345678")
        .unwrap_or_else(|| panic!("no record: {records:?}"));
    assert_eq!(served["agent"], "agent1", "{served}");
    let feature = records
        .iter()
        .find(|r| r["called"] == "*52")
        .unwrap_or_else(|| panic!("no record of the feature code call: {records:?}"));
    assert_eq!(feature["outcome"], "answered");

    // Errors are answered, not ignored.
    assert_eq!(
        agents::http(5081, "POST", "/api/v1/agents/agent9/pause").0,
        404
    );
    assert_eq!(
        agents::http(5081, "POST", "/api/v1/agents/agent1/dance").0,
        404
    );
}

#[test]
fn an_agent_transfers_the_caller_by_refer_to_a_partner() {
    let _ports = serial();
    let _caller_rtp = RtpListener::bind(41000);
    // agent1 answers after 0.5 s and transfers to agent5 (a SIPp phone that
    // answers after 0.5 s and hangs up 2 s later).
    let (site, phones) = site("acd-transfer", QueueSpec::of(&["agent1"]), &mut |state| {
        vec![
            (
                1,
                agents::phone_refer(
                    state,
                    1,
                    Mode::Transfer { ring_ms: 500 },
                    None,
                    None,
                    "sip:agent5@127.0.0.1",
                ),
            ),
            (
                5,
                agents::phone(state, 5, Mode::answer(500, 2000), None, None),
            ),
        ]
    });
    let mut caller = agents::caller(&site.state, &CallerSpec::citizen());
    let ok = caller.wait_success(Duration::from_secs(60));
    let agent = phone_n(&phones, 1);
    let partner = phone_n(&phones, 5);
    assert!(
        ok,
        "the caller's call failed:\n{}\n--- agent1\n{}\n--- agent5\n{}\n--- acdd\n{}",
        caller.describe(),
        agent.describe(),
        partner.describe(),
        site.log_tail()
    );
    assert!(
        agent
            .trace()
            .iter()
            .any(|m| m.received && m.status() == Some(202)),
        "the REFER was not accepted:\n{}",
        agent.describe()
    );
    assert!(
        partner
            .trace()
            .iter()
            .any(|m| m.received && m.first_line.starts_with("INVITE sip:agent5")),
        "the partner was never called:\n{}",
        partner.describe()
    );
    let record = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        site.acdd
            .report_calls()
            .into_iter()
            .find(|r| r["caller"] == "+33612345678")
    })
    .unwrap_or_else(|| panic!("no record:\n{}", site.log_tail()));
    assert_eq!(record["outcome"], "transferred", "{record}");
    assert_eq!(record["agent"], "agent1", "{record}");
    assert_eq!(record["hangup_by"], "partner", "{record}");
    assert_eq!(
        record["variables"]["transferred_to"],
        "sip:agent5@127.0.0.1"
    );
    let journal = site.journal();
    assert!(
        journal.iter().any(|e| e["event"] == "transferred"),
        "the journal says so: {journal:?}"
    );
}

#[test]
fn agents_are_rung_through_a_pbx_that_challenges_invites() {
    let _ports = serial();
    let (site, phones) = site_with(
        "acd-407",
        QueueSpec::of(&["agent1"]),
        SiteOptions {
            pbx_defines: &["AUTH_INVITE"],
            control_api: false,
            ..SiteOptions::default()
        },
        &mut |state| {
            vec![(
                1,
                agents::phone(state, 1, Mode::answer(500, 2000), None, None),
            )]
        },
    );
    // AUTH_INVITE: the PBX answers 407 to INVITEs from its own users (acd).
    let (state, acdd, pbx, phone) = (&site.state, &site.acdd, &site.pbx, phone_n(&phones, 1));
    let _caller_rtp = RtpListener::bind(41000);
    let mut caller = agents::caller(state, &CallerSpec::citizen());
    assert!(
        caller.wait_success(Duration::from_secs(60)),
        "{}\n--- agent1\n{}\n--- acdd\n{}",
        caller.describe(),
        phone.describe(),
        acdd.log()
    );
    // The first INVITE got the 407; the second (CSeq 2) carried the
    // credentials (Kamailio logs "{branch CSeq method Call-ID}").
    let kamailio = pbx.proc.log_text();
    let invites: Vec<&str> = kamailio
        .lines()
        .filter(|l| l.contains("REQ INVITE sip:agent1@127.0.0.1"))
        .collect();
    assert!(
        invites.iter().any(|l| l.contains(" 1 INVITE "))
            && invites.iter().any(|l| l.contains(" 2 INVITE ")),
        "expected a challenged INVITE and its authenticated retry:\n{}",
        invites.join("\n")
    );
    let records = acdd.report_calls();
    assert_eq!(records[0]["agent"], "agent1", "{records:?}");
    assert_eq!(records[0]["outcome"], "answered");
}

#[test]
fn the_control_api_transfers_a_connected_call() {
    let _ports = serial();
    let (site, phones) = site_with(
        "acd-api-transfer",
        QueueSpec::of(&["agent1"]),
        SiteOptions {
            pbx_defines: &[],
            control_api: true,
            ..SiteOptions::default()
        },
        &mut |state| {
            vec![
                // agent1 answers and stays; agent5 (the partner) answers and hangs up 2 s later.
                (1, agents::phone(state, 1, Mode::answer(500, 0), None, None)),
                (
                    5,
                    agents::phone(state, 5, Mode::answer(500, 2000), None, None),
                ),
            ]
        },
    );
    let (state, acdd, partner) = (&site.state, &site.acdd, phone_n(&phones, 5));
    let _caller_rtp = RtpListener::bind(41000);
    let mut caller = agents::caller(state, &CallerSpec::citizen());
    // Connected to agent1: the API says on_call.
    let connected = wait_for(Duration::from_secs(40), Duration::from_millis(200), || {
        (agent_status(5081, "agent1").0 == "on_call").then_some(())
    });
    assert!(connected.is_some(), "never connected:\n{}", acdd.log());
    let call_id = agents::sent_invite_call_ids(&caller)
        .into_iter()
        .next()
        .expect("the caller's Call-ID");
    let (code, body) = agents::http(
        5081,
        "POST",
        &format!("/api/v1/calls/{call_id}/transfer?target=sip:agent5@127.0.0.1"),
    );
    assert_eq!(code, 200, "{body}\n{}", acdd.log());
    assert!(
        caller.wait_success(Duration::from_secs(40)),
        "{}\n--- partner\n{}\n{}",
        caller.describe(),
        partner.describe(),
        acdd.log()
    );
    let record = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        acdd.report_calls()
            .into_iter()
            .find(|r| r["call_id"] == call_id.as_str())
    })
    .unwrap_or_else(|| panic!("no record:\n{}", acdd.log()));
    assert_eq!(record["outcome"], "transferred", "{record}");
    assert_eq!(record["agent"], "agent1", "{record}");
    assert_eq!(
        record["variables"]["transferred_to"],
        "sip:agent5@127.0.0.1"
    );
    // A call that is not there is a 404, not a silent success.
    assert_eq!(
        agents::http(
            5081,
            "POST",
            "/api/v1/calls/nope/transfer?target=sip:x@127.0.0.1"
        )
        .0,
        404
    );
}

/// The queue plan with a post-call survey: when the agent hangs up first,
/// the caller is asked for a mark (the question is the information message,
/// a shipped prompt: no speech synthesis in the test).
fn survey_dialplan(state: &std::path::Path) -> PathBuf {
    let path = state.join("survey-plan.toml");
    std::fs::write(
        &path,
        r#"[entries]
default = "accueil"

[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "file"

[nodes.file]
type = "queue"
queue = "accueil"
after = "enquete"

[nodes.enquete]
type = "survey"
prompts = ["fr/information"]
variable = "satisfaction"
thanks = ["fr/rappel-confirme"]
timeout = "10s"
"#,
    )
    .expect("write the survey dialplan");
    path
}

#[test]
fn after_the_agent_hangs_up_the_caller_is_asked_for_a_mark() {
    let _ports = serial();
    let mut caller_rtp = RtpPeer::bind(41000);
    // agent1 answers after 0.5 s and hangs up 2 s later.
    let (site, phones) = site_with(
        "acd-survey",
        QueueSpec::of(&["agent1"]),
        SiteOptions {
            plan: survey_dialplan,
            ..SiteOptions::default()
        },
        &mut |state| {
            vec![(
                1,
                agents::phone(state, 1, Mode::answer(500, 2000), None, None),
            )]
        },
    );
    // The caller waits for acdd's BYE.
    let mut caller = agents::caller(
        &site.state,
        &CallerSpec {
            rtp_port: caller_rtp.port,
            ..CallerSpec::citizen()
        },
    );
    let acdd_side = site.answered(&caller);
    // The agent's hang-up, as the ACD journals it.
    let ended = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let j = site.journal();
        journal::first(&j, "call_ended")
            .filter(|e| e["detail"]["by"] == "agent")
            .and_then(|e| agents::epoch(e["at"].as_str()?))
    })
    .unwrap_or_else(|| panic!("agent1 never hung up:\n{}", site.log_tail()));
    // The caller is still there and hears the question (energy after the
    // agent left), then presses 4.
    let heard = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        let loud = caller_rtp
            .packets()
            .iter()
            .filter(|p| p.at > ended && p.rms() > 300.0)
            .count();
        (loud >= 50).then_some(loud)
    });
    assert!(
        heard.is_some(),
        "no survey question after the agent hung up:\n{}",
        site.log_tail()
    );
    caller_rtp.send_digit(acdd_side, '4');
    assert!(
        caller.wait_success(Duration::from_secs(30)),
        "the caller was not thanked and hung up by acdd:\n{}\n--- agent1\n{}\n--- acdd\n{}",
        caller.describe(),
        phone_n(&phones, 1).describe(),
        site.log_tail()
    );
    let record = site.record(&the_call_id(&caller));
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["agent"], "agent1", "{record}");
    assert_eq!(record["variables"]["satisfaction"], "4", "{record}");
    let path: Vec<&str> = record["ivr_path"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(path, ["accueil", "file", "enquete"], "{record}");
}
