//! The live page's board keeps every second of a run (a page opened an hour in draws the whole
//! run; `flashcrowd watch` may ask for every second's histograms) without the process growing
//! with the run's length: an hour of seconds, each with the 12 request × client histograms of
//! bench/soak.sh's scenario, adds well under 1 MiB to the heap, because the seconds are kept on
//! an unlinked file in the run directory. Before, each second was two JSON trees in memory:
//! the hour soak grew from 70 to over 110 MiB. Counted exactly, with a counting allocator (this
//! file is its own test binary, and its one test runs alone in it).

use flashcrowd::ops::board::{Board, BoardInfo, Second};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only the sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const TAGS: [&str; 12] = [
    "GET%20/api/items|app",
    "item-detail|app",
    "POST%20/api/cart|app",
    "create-order|app",
    "GET%20/api/items|web",
    "item-detail|web",
    "POST%20/api/cart|web",
    "create-order|web",
    "GET%20/api/items|bot",
    "item-detail|bot",
    "POST%20/api/cart|bot",
    "create-order|bot",
];

/// The 12 histograms of a second like the soak's: about 2,000 requests, latencies 0.1–20 ms
/// (made once: the test measures the board, not the making).
fn hists() -> &'static [(String, Histogram<u64>)] {
    static H: std::sync::OnceLock<Vec<(String, Histogram<u64>)>> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        TAGS.iter()
            .enumerate()
            .map(|(k, tag)| {
                let mut h = Histogram::<u64>::new(3).unwrap();
                for i in 0..170u64 {
                    h.record(100 + (i * 7919 + k as u64 * 104_729) % 20_000)
                        .unwrap();
                }
                (tag.to_string(), h)
            })
            .collect()
    })
}

fn second(t: u64) -> Second {
    let hists = hists().to_vec();
    let mut all = Histogram::<u64>::new(3).unwrap();
    for (_, h) in &hists {
        all.add(h).unwrap();
    }
    Second {
        t,
        planned: 1000.0,
        started: 1000,
        requests: 2040,
        errors: Default::default(),
        in_flight: 100,
        dropped: 0,
        paused: 0,
        lag_p99_ms: Some(3.2),
        rate_factor: 1.0,
        phase: 0,
        monitor: Vec::new(),
        latency: all,
        hists,
        burst: Histogram::<u64>::new(3).unwrap(),
    }
}

/// What the board kept per second before: the same two objects, as JSON trees.
fn as_trees(s: &Second) -> (Value, Value) {
    let row = json!({
        "t": s.t, "planned": s.planned, "started": s.started, "requests": s.requests,
        "errors": 0, "by_kind": {}, "in_flight": s.in_flight, "dropped": s.dropped,
        "paused": s.paused, "p50": 1.2, "p99": 9.9, "max": 20.1, "lag_p99": s.lag_p99_ms,
        "factor": s.rate_factor, "phase": s.phase, "monitor": {},
    });
    let hists: Vec<Value> = s
        .hists
        .iter()
        .map(|(tag, h)| json!({"tag": tag, "hist": flashcrowd::report::state::encode_histogram(h)}))
        .collect();
    let interval = json!({
        "t": s.t, "planned": s.planned, "started": s.started, "requests": s.requests,
        "errors": s.errors.to_vec(), "in_flight": s.in_flight, "dropped": s.dropped,
        "paused": s.paused, "lag_p99": s.lag_p99_ms, "factor": s.rate_factor,
        "phase": s.phase, "hists": hists,
    });
    (row, interval)
}

const HOUR: u64 = 3600;

#[test]
fn an_hour_of_seconds_on_the_live_board_stays_off_the_heap() {
    // The board of a local run: its seconds on an unlinked file in the run directory.
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(
        BoardInfo::default(),
        None,
        Arc::new(|s: &str| s.to_string()),
    );
    board.spill_to(dir.path());
    for t in 0..60 {
        board.push(second(t));
    }
    let before = live();
    for t in 60..HOUR {
        board.push(second(t));
    }
    let grew = live() - before;
    let per_s = grew as f64 / (HOUR - 60) as f64;
    eprintln!(
        "board on file: +{:.1} KiB over {} seconds ({per_s:.1} bytes a second)",
        grew as f64 / 1024.0,
        HOUR - 60
    );
    // Two offsets a second (16 bytes), and the vectors' doubling.
    assert!(grew < 256 * 1024, "the board grew by {grew} bytes");
    // Nothing is left in the run directory, and every second is still served.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let iv: Value = serde_json::from_str(&board.intervals(0)).unwrap();
    let iv = iv["intervals"].as_array().unwrap();
    assert_eq!(iv.len(), HOUR as usize);
    assert_eq!(iv[1234]["t"], 1234);
    assert_eq!(iv[1234]["hists"].as_array().unwrap().len(), 12);
    let st: Value = serde_json::from_str(&board.state(HOUR as usize - 10)).unwrap();
    let series = st["series"].as_array().unwrap();
    assert_eq!(series.len(), 10);
    assert_eq!(series[9]["t"], HOUR - 1);
    assert_eq!(st["from"], HOUR - 10);
    drop(board);

    // For the record: the same hour as JSON trees in memory (the board before), and as text in
    // memory (a watcher's board, which has no run directory).
    let before = live();
    let mut trees = Vec::new();
    for t in 0..300 {
        trees.push(as_trees(&second(t)));
    }
    let per_s_trees = (live() - before) as f64 / 300.0;
    drop(trees);
    let board = Board::new(
        BoardInfo::default(),
        None,
        Arc::new(|s: &str| s.to_string()),
    );
    let before = live();
    for t in 0..300 {
        board.push(second(t));
    }
    let per_s_text = (live() - before) as f64 / 300.0;
    eprintln!(
        "per second: JSON trees {:.1} KiB ({:.0} MiB an hour), text in memory {:.1} KiB, on file {per_s:.1} bytes",
        per_s_trees / 1024.0,
        per_s_trees * 3600.0 / 1048576.0,
        per_s_text / 1024.0
    );
    assert!(per_s_text < per_s_trees, "{per_s_text} vs {per_s_trees}");
}
