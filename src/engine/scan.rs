//! The scan pipeline: inputs in, one [`ScanRecord`] per input out, in input order, pushed into
//! the caller's [`ScanSink`]. Every front end (the CLI, a service, a binding) scans through
//! this, so what one measures is what the others run.
//!
//! One matcher per store handed in (each on its own thread with its own index connection: SQLite
//! readers run side by side). Each input is decoded on a thread of its own that hands its prints
//! over a short channel, so a long upload streams through with flat memory; its SHA-256 is taken
//! on a third thread while the decoder reads the same file. Matchers run at most
//! [`LOOKAHEAD`] inputs ahead of the first record not yet delivered.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::report::{ErrorKind, MatchRecord, ScanRecord};
use super::{sha256_file, stream_file, Budget, Error, Scanner};
use crate::fingerprint::{FingerprintParams, Prints, Side};
use crate::index::Store;
use crate::matching::MatchParams;

/// Where scan results go. The pipeline calls [`ScanSink::record`] once per input, in input
/// order, from the caller's thread.
pub trait ScanSink {
    /// Takes one input's record. An error stops the scan (a closed pipe, a full disk) and is
    /// handed back by [`scan_inputs`] as [`ScanError::Sink`].
    fn record(&mut self, record: ScanRecord) -> std::io::Result<()>;
}

/// One input to scan.
#[derive(Debug, Clone)]
pub struct ScanInput {
    /// The name its record carries (as given: a path, or `-` for stdin).
    pub name: PathBuf,
    /// The file to read (a spooled copy for stdin and streams), or why there is none: the
    /// record then carries that one-line error.
    pub file: Result<PathBuf, InputError>,
}

/// Why an input has no file to read: its record's `error` and `error_kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// One line naming the input.
    pub message: String,
}

impl InputError {
    /// A failure of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        InputError {
            kind,
            message: message.into(),
        }
    }
}

impl ScanInput {
    /// An input read from the file it names.
    pub fn file(path: PathBuf) -> Self {
        ScanInput {
            name: path.clone(),
            file: Ok(path),
        }
    }
}

/// Why a scan stopped before its last input.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The index failed (an unreadable input is not this: its record carries the error).
    #[error(transparent)]
    Engine(#[from] Error),
    /// The sink refused a record.
    #[error("writing results: {0}")]
    Sink(std::io::Error),
}

/// Matchers worth running for `inputs` inputs: one per core, no more than inputs.
pub fn matchers_for(inputs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(inputs).max(1)
}

/// Inputs a matcher may run ahead of the first one not yet delivered.
pub const LOOKAHEAD: usize = 32;

/// Scans `inputs` with one matcher per store in `stores` (all over the same index, built with
/// `params`), delivering every record to `sink` in input order.
pub fn scan_inputs(
    stores: &mut [Box<dyn Store + Send>],
    inputs: &[ScanInput],
    params: &FingerprintParams,
    match_params: &MatchParams,
    budget: &Budget,
    sink: &mut dyn ScanSink,
) -> Result<(), ScanError> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let order = InOrder::new(LOOKAHEAD);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<ScanRecord, Error>)>();
    std::thread::scope(|scope| {
        for store in stores.iter_mut() {
            let (tx, next, stop, order) = (tx.clone(), &next, &stop, &order);
            scope.spawn(move || {
                let scanner = Scanner::new(&**store, params, match_params);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else {
                        break;
                    };
                    // Not too far ahead of the sink: a slow input holds back its successors'
                    // records, and they wait in memory.
                    if !order.wait_turn(i, stop) {
                        break;
                    }
                    let record = scan_one(&scanner, input, params, budget, stop);
                    if tx.send((i, record)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let result = (|| {
            for (i, record) in rx.iter() {
                for record in order.arrived(i, record) {
                    sink.record(record?).map_err(ScanError::Sink)?;
                }
            }
            Ok(())
        })();
        // Whatever ended the loop, the matchers stop taking inputs.
        stop.store(true, Ordering::Relaxed);
        order.release();
        drop(rx);
        result
    })
}

/// Scans one input with the matchers in `stores` (see [`scan_inputs`]); its record, or `None`
/// if the scan ended without one.
pub fn scan_input(
    stores: &mut [Box<dyn Store + Send>],
    input: &ScanInput,
    params: &FingerprintParams,
    match_params: &MatchParams,
    budget: &Budget,
) -> Result<Option<ScanRecord>, ScanError> {
    /// Takes the one record.
    struct One(Option<ScanRecord>);
    impl ScanSink for One {
        fn record(&mut self, record: ScanRecord) -> std::io::Result<()> {
            self.0 = Some(record);
            Ok(())
        }
    }
    let mut one = One(None);
    scan_inputs(
        stores,
        std::slice::from_ref(input),
        params,
        match_params,
        budget,
        &mut one,
    )?;
    Ok(one.0)
}

/// Puts results that arrive in any order back into input order, and holds matchers back from
/// running more than `lookahead` inputs ahead of the sink.
struct InOrder<T> {
    state: std::sync::Mutex<(usize, std::collections::BTreeMap<usize, T>)>,
    turn: std::sync::Condvar,
    lookahead: usize,
}

impl<T> InOrder<T> {
    fn new(lookahead: usize) -> Self {
        InOrder {
            state: std::sync::Mutex::new((0, std::collections::BTreeMap::new())),
            turn: std::sync::Condvar::new(),
            lookahead,
        }
    }

    /// Blocks until input `i` is within the lookahead; false if the scan is stopping.
    fn wait_turn(&self, i: usize, stop: &AtomicBool) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        while i >= state.0 + self.lookahead && !stop.load(Ordering::Relaxed) {
            state = match self.turn.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        !stop.load(Ordering::Relaxed)
    }

    /// Takes result `i`; returns the results now due, in input order.
    fn arrived(&self, i: usize, item: T) -> Vec<T> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        state.1.insert(i, item);
        let mut due = Vec::new();
        loop {
            let next = state.0;
            let Some(item) = state.1.remove(&next) else {
                break;
            };
            due.push(item);
            state.0 += 1;
        }
        self.turn.notify_all();
        due
    }

    /// Wakes every waiting matcher (the scan is stopping).
    fn release(&self) {
        let _guard = self.state.lock();
        self.turn.notify_all();
    }
}

/// Decodes, fingerprints and matches one input. An index error is the only `Err`; an
/// unreadable input is a record with its error.
fn scan_one(
    scanner: &Scanner,
    input: &ScanInput,
    params: &FingerprintParams,
    budget: &Budget,
    stop: &AtomicBool,
) -> Result<ScanRecord, Error> {
    std::thread::scope(|scope| {
        let sha = input
            .file
            .as_ref()
            .ok()
            .map(|path| scope.spawn(move || sha256_file(path).ok()));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(4);
        let shown = input.name.display().to_string();
        scope.spawn(move || produce(&input.file, &shown, params, budget, tx));
        let mut stream = scanner.stream();
        let mut end = Err(InputError::new(ErrorKind::Unreadable, "decoder stopped"));
        for piece in rx {
            if stop.load(Ordering::Relaxed) {
                // The scan is ending: the decoder stops sending and runs out its file.
                break;
            }
            match piece {
                Piece::Prints(prints, done) => stream.push(prints, done)?,
                Piece::End(e) => end = e,
            }
        }
        let sha256 = sha.and_then(|h| h.join().ok().flatten());
        Ok(match end {
            Ok((frames, duration_s)) => {
                let found = stream.finish(frames, duration_s)?;
                ScanRecord {
                    duration_s: (duration_s * 1000.0).round() / 1000.0,
                    sha256,
                    matches: found.iter().map(MatchRecord::from).collect(),
                    ..ScanRecord::named(&input.name)
                }
            }
            Err(e) => ScanRecord {
                error: Some(e.message),
                error_kind: Some(e.kind),
                sha256,
                ..ScanRecord::named(&input.name)
            },
        })
    })
}

/// What an input's decoding thread hands the matcher.
enum Piece {
    /// Prints final before the given frame.
    Prints(Prints, u32),
    /// The end: (frames, seconds) or a one-line error naming the input.
    End(Result<(u32, f64), InputError>),
}

/// Decodes and fingerprints one input, sending its prints as they come. If the matcher hung up
/// (the scan is ending) it stops sending and runs out the file.
fn produce(
    file: &Result<PathBuf, InputError>,
    name: &str,
    params: &FingerprintParams,
    budget: &Budget,
    tx: std::sync::mpsc::SyncSender<Piece>,
) {
    let end = match file {
        Ok(path) => {
            let mut open = true;
            stream_file(path, params, Side::Query, budget, &mut |prints, done| {
                open = open && tx.send(Piece::Prints(prints, done)).is_ok();
            })
            .map(|fp| (fp.frames, fp.duration_s))
            .map_err(|e| InputError::new(e.input_kind(), rename(&e.to_string(), path, name)))
        }
        Err(e) => Err(e.clone()),
    };
    let _ = tx.send(Piece::End(end));
}

/// Error messages name the file read, which for stdin is a spooled copy: show the input's name.
fn rename(msg: &str, path: &Path, name: &str) -> String {
    msg.replace(&path.display().to_string(), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_out_in_input_order_and_matchers_wait_their_turn() {
        let order = InOrder::new(2);
        let stop = AtomicBool::new(false);
        assert!(order.arrived(2, 'c').is_empty());
        assert!(order.arrived(1, 'b').is_empty());
        assert_eq!(order.arrived(0, 'a'), vec!['a', 'b', 'c']);
        assert_eq!(order.arrived(3, 'd'), vec!['d']);
        // Input 6 is two past the first unprinted one (4): it waits until 4 arrives.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| order.wait_turn(6, &stop));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "input 6 ran ahead of the lookahead");
            assert_eq!(order.arrived(4, 'e'), vec!['e']);
            assert!(waiter.join().unwrap_or(false));
        });
        // A stopping scan releases waiting matchers, and they give up.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| order.wait_turn(9, &stop));
            stop.store(true, Ordering::Relaxed);
            order.release();
            assert!(!waiter.join().unwrap_or(true));
        });
    }
}
