//! The fuzz targets of `fuzz/targets/` on stable Rust: each target runs its
//! seeds (`fuzz/corpus/<target>/`), then generated inputs — the seeds
//! mutated byte by byte (flips, interesting bytes, inserts, deletions,
//! duplicated ranges, truncations, splices of two seeds, numbers changed)
//! and with tokens taken from the seeds (XML tags, TOML keys, words), so
//! most inputs keep enough structure to reach past the first check.
//!
//! The environment steers a run (docs/performance.md, "Fuzzing"):
//! - `FUZZ_INPUTS`: generated inputs per target (default 1000, the CI smoke);
//! - `FUZZ_SECONDS`: run each target this long instead (a long run);
//! - `FUZZ_SEED`: the generator's seed, a number or `random` (default 1);
//!   it is printed, and the same seed generates the same inputs;
//! - `FUZZ_REPLAY`: a file to run through the selected target(s) alone.
//!
//! An input that panics a target is saved under
//! `target/tmp/fuzz-crashes/<target>-<hash>`; the test fails naming the file
//! and how to replay it. The nightly cargo-fuzz crate in `fuzz/` runs the
//! same targets coverage-guided.

#[path = "../fuzz/targets/mod.rs"]
mod targets;

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Generated inputs per target when `FUZZ_INPUTS` is not set.
const DEFAULT_INPUTS: u64 = 1000;
/// Longest generated input.
const MAX_LEN: usize = 64 << 10;
/// Crashes kept per target before a run stops.
const MAX_CRASHES: usize = 8;

/// Bytes a mutation likes to write: bounds, digits, markup, separators.
const INTERESTING: &[u8] = b"\x00\x01\x03\x7f\x80\xff09-+.<>&;\"'=/,:#[]{}\n\r\t ";

/// SplitMix64: small, seedable, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A position in `0..=len`.
    fn at(&mut self, len: usize) -> usize {
        self.below(len + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What the environment asks for.
struct Plan {
    inputs: u64,
    time: Option<Duration>,
    seed: u64,
}

impl Plan {
    fn from_env() -> Plan {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, text: String| -> u64 {
            text.parse()
                .unwrap_or_else(|_| panic!("{name}={text:?} is not a number"))
        };
        let time = var("FUZZ_SECONDS").map(|s| Duration::from_secs(number("FUZZ_SECONDS", s)));
        let inputs = match var("FUZZ_INPUTS") {
            Some(n) => number("FUZZ_INPUTS", n),
            None if time.is_some() => u64::MAX,
            None => DEFAULT_INPUTS,
        };
        let seed = match var("FUZZ_SEED").as_deref() {
            None => 1,
            Some("random") => {
                let mut h = DefaultHasher::new();
                (std::process::id(), Instant::now()).hash(&mut h);
                std::time::SystemTime::now().hash(&mut h);
                h.finish()
            }
            Some(n) => number("FUZZ_SEED", n.to_owned()),
        };
        Plan { inputs, time, seed }
    }
}

/// The seeds of a target and the tokens found in them.
struct Corpus {
    seeds: Vec<Vec<u8>>,
    tokens: Vec<Vec<u8>>,
}

impl Corpus {
    fn load(name: &str) -> Corpus {
        let dir = targets::repo().join("fuzz/corpus").join(name);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        paths.sort();
        let seeds: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect();
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        let tokens = tokens(&seeds).into_iter().collect();
        Corpus { seeds, tokens }
    }
}

/// Tokens of the seeds: markup (`<…>`), words (letters, digits, `_-.:@`),
/// and words with the character that follows (`key =`, `name:`), 2 to 64
/// bytes each.
fn tokens(seeds: &[Vec<u8>]) -> BTreeSet<Vec<u8>> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b"_-.:@".contains(&b);
    let mut found = BTreeSet::new();
    for seed in seeds {
        let mut start = None;
        for (i, &b) in seed.iter().enumerate() {
            if b == b'<'
                && let Some(end) = seed[i..].iter().take(64).position(|&c| c == b'>')
            {
                found.insert(seed[i..=i + end].to_vec());
            }
            match (start, word(b)) {
                (None, true) => start = Some(i),
                (Some(s), false) => {
                    found.insert(seed[s..i].to_vec());
                    found.insert(seed[s..=i].to_vec());
                    start = None;
                }
                _ => {}
            }
        }
    }
    found.retain(|t| (2..=64).contains(&t.len()));
    found
}

/// One generated input: a seed mutated 1 to 8 times, or now and then bytes
/// from nowhere.
fn generate(rng: &mut Rng, corpus: &Corpus) -> Vec<u8> {
    if rng.below(32) == 0 {
        return (0..rng.below(64)).map(|_| rng.next() as u8).collect();
    }
    let mut data = rng.pick(&corpus.seeds).clone();
    for _ in 0..=rng.below(8) {
        mutate(rng, corpus, &mut data);
    }
    data.truncate(MAX_LEN);
    data
}

fn mutate(rng: &mut Rng, corpus: &Corpus, data: &mut Vec<u8>) {
    let len = data.len();
    match rng.below(11) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING);
        }
        2 => {
            let at = rng.at(len);
            let bytes: Vec<u8> = (0..=rng.below(8)).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let from = rng.below(len);
            let to = from + 1 + rng.below((len - from).min(64));
            data.drain(from..to);
        }
        4 if len > 0 => {
            let from = rng.below(len);
            let to = from + 1 + rng.below((len - from).min(256));
            let copy = data[from..to].to_vec();
            let at = rng.at(len);
            data.splice(at..at, copy);
        }
        5 => data.truncate(rng.at(len)),
        6 => {
            let other = rng.pick(&corpus.seeds);
            let (at, from) = (rng.at(len), rng.at(other.len()));
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        7 | 8 if !corpus.tokens.is_empty() => {
            let token = rng.pick(&corpus.tokens).clone();
            let at = rng.at(len);
            if rng.below(2) == 0 {
                data.splice(at..at, token);
            } else {
                let end = (at + token.len()).min(len);
                data.splice(at..end, token);
            }
        }
        9 => change_number(rng, data),
        _ => data.push(*rng.pick(INTERESTING)),
    }
}

/// Replaces a run of digits (a length, an amount, a count) with another
/// number, one digit shorter or longer now and then.
fn change_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    if starts.is_empty() {
        return;
    }
    let start = *rng.pick(&starts);
    let end = start
        + data[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(data.len() - start);
    let width = match rng.below(4) {
        0 => (end - start).saturating_sub(1),
        1 => end - start + 1,
        _ => end - start,
    };
    let digits: Vec<u8> = match rng.below(3) {
        0 => vec![b'0'; width],
        1 => vec![b'9'; width],
        _ => (0..width).map(|_| b'0' + rng.below(10) as u8).collect(),
    };
    data.splice(start..end, digits);
}

/// Runs `input`; a panic saves it and returns where.
fn run_one(name: &str, target: targets::Target, input: &[u8]) -> Option<PathBuf> {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_ok() {
        return None;
    }
    let mut h = DefaultHasher::new();
    input.hash(&mut h);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    std::fs::create_dir_all(&dir).expect("crash folder");
    let path = dir.join(format!("{name}-{:016x}", h.finish()));
    std::fs::write(&path, input).expect("crash file");
    Some(path)
}

/// Runs a target's seeds, then generated inputs as the environment says.
fn fuzz(name: &str, target: targets::Target) {
    if let Ok(replay) = std::env::var("FUZZ_REPLAY") {
        let input = std::fs::read(&replay).unwrap_or_else(|e| panic!("{replay}: {e}"));
        target(&input);
        return;
    }
    let plan = Plan::from_env();
    let corpus = Corpus::load(name);
    let mut rng = Rng(plan.seed);
    let started = Instant::now();
    let mut crashes = BTreeSet::new();
    let mut slowest = (Duration::ZERO, Vec::new());
    let mut run = |input: &[u8], crashes: &mut BTreeSet<PathBuf>| {
        let at = Instant::now();
        crashes.extend(run_one(name, target, input));
        let took = at.elapsed();
        if took > slowest.0 {
            slowest = (took, input.to_vec());
        }
    };
    for seed in &corpus.seeds {
        run(seed, &mut crashes);
    }
    let mut generated = 0;
    while generated < plan.inputs
        && crashes.len() < MAX_CRASHES
        && plan.time.is_none_or(|t| started.elapsed() < t)
    {
        let input = generate(&mut rng, &corpus);
        run(&input, &mut crashes);
        generated += 1;
    }
    println!(
        "fuzz {name}: seed {}, {} seeds + {generated} generated inputs in {:.1?} \
         (slowest {:.1?}, {} bytes), {} crash(es)",
        plan.seed,
        corpus.seeds.len(),
        started.elapsed(),
        slowest.0,
        slowest.1.len(),
        crashes.len()
    );
    let shown: Vec<String> = crashes.iter().map(|p| p.display().to_string()).collect();
    assert!(
        crashes.is_empty(),
        "fuzz {name}: {} input(s) panicked (seed {}): {}\nreplay one with \
         FUZZ_REPLAY=<file> cargo test --test fuzz {name}",
        crashes.len(),
        plan.seed,
        shown.join(", ")
    );
}

macro_rules! fuzz_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                fuzz(stringify!($name), targets::$name::target);
            }
        )*
    };
}

fuzz_tests!(
    adapter_answer,
    adapter_file,
    answer,
    balance_file,
    card_file,
    config,
    decode,
    dialect,
    frame,
    hub_request,
    refsys_request,
    template,
);

/// Every target has a test above, seeds, and a cargo-fuzz bin.
#[test]
fn every_target_has_seeds_and_a_cargo_fuzz_bin() {
    let manifest =
        std::fs::read_to_string(targets::repo().join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in targets::ALL {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "no cargo-fuzz bin {name} in fuzz/Cargo.toml"
        );
        assert!(!Corpus::load(name).seeds.is_empty());
    }
}

/// The generator is reproducible and mutates: the same seed gives the same
/// inputs, inputs differ from the seeds.
#[test]
fn the_generator_is_seeded_and_mutates() {
    let corpus = Corpus {
        seeds: vec![b"<a x=\"1\">hello 1234</a>".to_vec()],
        tokens: tokens(&[b"<b>key = 5".to_vec()]).into_iter().collect(),
    };
    assert!(corpus.tokens.contains(&b"<b>".to_vec()));
    assert!(corpus.tokens.contains(&b"key ".to_vec()));
    let inputs = |seed| {
        let mut rng = Rng(seed);
        (0..200)
            .map(|_| generate(&mut rng, &corpus))
            .collect::<Vec<_>>()
    };
    assert_eq!(inputs(7), inputs(7));
    assert_ne!(inputs(7), inputs(8));
    let distinct: BTreeSet<Vec<u8>> = inputs(7).into_iter().collect();
    assert!(
        distinct.len() > 150,
        "{} distinct inputs of 200",
        distinct.len()
    );
}
