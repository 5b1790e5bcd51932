//! Feature-page latency on loopback: `cargo run --release -p saelab-serve --example load --
//! URL [REQUESTS] [CONNECTIONS]` requests random feature pages of every dictionary of a
//! running `saelab serve` (keep-alive connections, default 1,000 requests on 1 connection)
//! and prints latency percentiles.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use saelab_serve::client::{self, Connection};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .ok_or("usage: load URL [REQUESTS] [CONNECTIONS]")?;
    let requests: usize = parse(args.get(1), 1000)?;
    let connections: usize = parse(args.get(2), 1)?.max(1);
    let addr = address(url)?;

    let list = client::get(addr, "/api/dictionaries").map_err(|e| e.to_string())?;
    let dicts: serde_json::Value = serde_json::from_str(&list.body).map_err(|e| e.to_string())?;
    let dicts: Vec<(String, u64)> = dicts
        .as_array()
        .ok_or("/api/dictionaries is not a list")?
        .iter()
        .filter_map(|d| Some((d["name"].as_str()?.to_string(), d["d_sae"].as_u64()?)))
        .filter(|d| d.1 > 0)
        .collect();
    if dicts.is_empty() {
        return Err("the database has no dictionaries".into());
    }

    let began = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|w| {
            let dicts = dicts.clone();
            let share = requests / connections + usize::from(w < requests % connections);
            std::thread::spawn(move || worker(addr, &dicts, share, w as u64 + 1))
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for w in workers {
        latencies.extend(w.join().map_err(|_| "a worker panicked")??);
    }
    let wall = began.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "{} feature pages over {connections} connection(s) in {:.2} s ({:.0} pages/s)",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "latency p50 {} · p90 {} · p99 {} · max {}",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    Ok(())
}

fn worker(
    addr: SocketAddr,
    dicts: &[(String, u64)],
    count: usize,
    seed: u64,
) -> Result<Vec<Duration>, String> {
    let mut conn = Connection::open(addr).map_err(|e| e.to_string())?;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (name, d_sae) = &dicts[(next() % dicts.len() as u64) as usize];
        let target = format!("/d/{name}/f/{}", next() % d_sae);
        let began = Instant::now();
        let r = conn.get(&target).map_err(|e| format!("{target}: {e}"))?;
        out.push(began.elapsed());
        if r.status != 200 {
            return Err(format!("{target}: status {}: {}", r.status, r.body));
        }
    }
    Ok(out)
}

fn parse(arg: Option<&String>, default: usize) -> Result<usize, String> {
    arg.map_or(Ok(default), |a| {
        a.parse().map_err(|_| format!("`{a}` is not a count"))
    })
}

fn address(url: &str) -> Result<SocketAddr, String> {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    host.to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
