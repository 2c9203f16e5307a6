//! The swarm DHT in a deterministic discrete-event simulation (fossa_net::dht::sim).
//!
//! cargo run --release -p fossa-net --example dht_sim -- --nodes N --seed S [--kill F]
//!   [--churn-half-life H] [--lookups L] [--disjoint D] [--loss P] [--check] --json
//!
//! Prints one JSON object: the run's `Report` plus `wall_s` and `events_per_sec` (the only
//! figures that depend on the machine). Without `--json`, a short human summary.

use std::process::ExitCode;
use std::time::Instant;

use fossa_net::dht::sim::{SimConfig, run};

const USAGE: &str = "usage: dht_sim --nodes N --seed S [--kill F] [--churn-half-life H] \
[--lookups L] [--disjoint D] [--loss P] [--check] [--json]";

struct Args {
    cfg: SimConfig,
    json: bool,
}

fn parse() -> Result<Args, String> {
    let mut cfg = SimConfig::new(1000, 1);
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => cfg.nodes = num(&value()?)?,
            "--seed" => cfg.seed = num(&value()?)?,
            "--lookups" => cfg.lookups = num(&value()?)?,
            "--kill" => cfg.kill = Some(num(&value()?)?),
            "--churn-half-life" => cfg.churn_half_life_h = Some(num(&value()?)?),
            "--disjoint" => cfg.disjoint = Some(num(&value()?)?),
            "--loss" => cfg.loss = num(&value()?)?,
            "--check" => cfg.check = true,
            "--json" => json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args { cfg, json })
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let report = match run(&args.cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dht_sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wall_s = started.elapsed().as_secs_f64();
    let json = match serde_json::to_string(&report) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("dht_sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The report's fields in their order, then the two machine-dependent ones.
    let events_per_sec = (report.events as f64 / wall_s.max(1e-9)).round();
    let body = json.strip_suffix('}').unwrap_or(&json);
    let value = format!("{body},\"wall_s\":{wall_s:.3},\"events_per_sec\":{events_per_sec}}}");
    if args.json {
        println!("{value}");
    } else {
        println!(
            "{} nodes: hops median {} p90 {} p99 {}, latency median {} ms p90 {} ms \
             (RTT median {} ms), success {:.4}, {:.1} messages/lookup, {} events in {:.1} s",
            report.nodes,
            report.hops_median,
            report.hops_p90,
            report.hops_p99,
            report.latency_ms_median,
            report.latency_ms_p90,
            report.rtt_ms_median,
            report.success,
            report.messages_per_lookup,
            report.events,
            wall_s
        );
    }
    ExitCode::SUCCESS
}
