//! `cargo run -p ld-media --release --example bench_media -- [streams] [seconds] [raw]`
//! (the same benchmark as `acdd bench media --streams N --seconds S`). With `raw`, the same
//! streams and measurements are driven by a bare `sendto` loop instead of the engine: the
//! machine's ceiling, to compare the engine with.

fn main() {
    let mut args = std::env::args().skip(1);
    let streams = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let raw = args.next().is_some_and(|a| a == "raw");
    let cfg = ld_media::bench::BenchConfig { streams, seconds };
    let result = if raw {
        ld_media::bench::run_raw(&cfg)
    } else {
        ld_media::bench::run(&cfg)
    };
    match result {
        Ok(report) => println!(
            "{}{report}",
            if raw {
                "raw sendto loop (no engine)\n"
            } else {
                ""
            }
        ),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
