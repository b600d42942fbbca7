//! The workload of the Rust global-allocator benchmark. Each binary in
//! `src/bin/` sets its global allocator and calls [`main`].
//!
//! Phases, each timed on its own and run on `threads` threads at once
//! (every thread does the same work on its own data; the JSON document
//! is shared, read-only):
//! - `hashmap`: build a `HashMap<u64, String>` of 400k entries, look up,
//!   remove a third, drop;
//! - `btreemap`: build a `BTreeMap<String, Vec<u32>>` of 100k keys from
//!   300k inserts (the vectors grow), drop;
//! - `json`: parse a generated JSON document (about 8 MB) into a
//!   `serde_json::Value`, walk it, drop it (three times);
//! - `strings`: many short-lived `String`s and `Vec`s (format, split,
//!   collect).
//!
//! Output: one line per phase, `phase seconds checksum`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::hint::black_box;
use std::time::Instant;

fn hashmap(seed: u64) -> u64 {
    let n = 400_000u64;
    let mut m: HashMap<u64, String> = HashMap::new();
    for i in 0..n {
        let k = (i ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        m.insert(k, format!("v{i}"));
    }
    let mut sum = 0u64;
    for i in 0..n {
        let k = (i ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        sum += m.get(&k).map_or(0, |s| s.len() as u64);
    }
    m.retain(|k, _| k % 3 != 0);
    sum + m.len() as u64
}

fn btreemap(seed: u64) -> u64 {
    let mut m: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for i in 0..300_000u32 {
        let k = (i as u64 ^ seed).wrapping_mul(0x2545_f491_4f6c_dd1d) % 100_000;
        m.entry(format!("key{k:08}")).or_default().push(i);
    }
    m.values().map(|v| v.len() as u64).sum::<u64>() + m.len() as u64
}

/// A JSON document of about `records` objects with nested arrays and
/// strings (a few hundred bytes each).
pub fn document(records: usize) -> String {
    let mut s = String::from("{\"records\":[");
    for i in 0..records {
        if i > 0 {
            s.push(',');
        }
        write!(
            s,
            "{{\"id\":{i},\"name\":\"user-{i}\",\"email\":\"user{i}@example.com\",\
             \"active\":{},\"score\":{}.{},\"tags\":[\"t{}\",\"t{}\",\"t{}\"],\
             \"address\":{{\"street\":\"{} Main Street\",\"city\":\"City{}\",\"zip\":\"{:05}\"}},\
             \"history\":[{},{},{},{},{}]}}",
            i % 2 == 0,
            i % 100,
            i % 7,
            i % 11,
            i % 13,
            i % 17,
            i,
            i % 50,
            i % 100_000,
            i,
            i * 2,
            i * 3,
            i * 5,
            i * 7
        )
        .unwrap();
    }
    s.push_str("]}");
    s
}

fn walk(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::Array(a) => a.iter().map(walk).sum::<u64>() + 1,
        serde_json::Value::Object(o) => o.iter().map(|(k, v)| k.len() as u64 + walk(v)).sum(),
        serde_json::Value::String(s) => s.len() as u64,
        _ => 1,
    }
}

fn json(doc: &str) -> u64 {
    let mut sum = 0;
    for _ in 0..3 {
        let v: serde_json::Value = serde_json::from_str(doc).unwrap();
        sum += walk(&v);
    }
    sum
}

fn strings(seed: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..200_000u64 {
        let s = format!("{} {} {}", i ^ seed, i * 3, "some words here");
        let parts: Vec<&str> = s.split(' ').collect();
        let joined = parts.concat();
        sum += joined.len() as u64 + parts.len() as u64;
    }
    sum
}

/// Runs `f(thread_index)` on `threads` threads at once; seconds and the
/// sum of the results.
fn timed(threads: usize, f: impl Fn(u64) -> u64 + Sync) -> (f64, u64) {
    let t0 = Instant::now();
    let sum = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || black_box(f(t as u64)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    (t0.elapsed().as_secs_f64(), sum)
}

/// Runs every phase once and prints `phase seconds checksum`. Arguments:
/// `[threads]` (default: the number of CPUs, at least 2).
pub fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        });
    let doc = document(25_000);
    let phases: [(&str, &(dyn Fn(u64) -> u64 + Sync)); 4] = [
        ("hashmap", &hashmap),
        ("btreemap", &btreemap),
        ("json", &|_| json(&doc)),
        ("strings", &strings),
    ];
    for (name, f) in phases {
        let (secs, sum) = timed(threads, f);
        println!("{name} {secs:.6} {sum}");
    }
}
