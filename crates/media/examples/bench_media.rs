//! `cargo run -p ld-media --release --example bench_media -- [streams] [seconds]`
//! (the same benchmark as `acdd bench media --streams N --seconds S`).

fn main() {
    let mut args = std::env::args().skip(1);
    let streams = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    match ld_media::bench::run(&ld_media::bench::BenchConfig { streams, seconds }) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
