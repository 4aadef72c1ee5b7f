//! Inputs: the paths a user names, folders walked (sorted, loops and duplicates passed over),
//! streams and stdin spooled to files a decoder can seek in.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::report::ErrorKind;
use super::scan::{InputError, ScanInput};
use super::Error;

/// One input found by [`expand_inputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A regular file (or a path that does not exist: opening it reports the error).
    File(PathBuf),
    /// A named input that is not a regular file (FIFO, character device, socket): it can be read
    /// only once and may never end, so a caller reads it with a bound.
    Stream(PathBuf),
    /// Standard input, named `-`: like a stream.
    Stdin,
}

impl Input {
    /// The path as given or found (`-` for stdin).
    pub fn path(&self) -> &Path {
        match self {
            Input::File(p) | Input::Stream(p) => p,
            Input::Stdin => Path::new("-"),
        }
    }
}

/// Why a folder walk passed over an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Not a regular file (a FIFO could block the walk forever, a device never end).
    NotRegular(&'static str),
    /// A symbolic link back to a folder the walk is inside.
    Loop(PathBuf),
    /// The same file (device and inode) as one already listed under another path.
    SameFile(PathBuf),
}

/// An entry a folder walk passed over, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", path.display(), match reason {
    SkipReason::NotRegular(kind) => format!("not a regular file ({kind})"),
    SkipReason::Loop(to) => format!("symbolic link loop back to {}", to.display()),
    SkipReason::SameFile(first) => format!("the same file as {}", first.display()),
})]
pub struct Skipped {
    /// The entry.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// The inputs named on a command line, folders expanded.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Files to read, in order (folders sorted by name, depth first); an `Err` is an entry that
    /// could not be read (it names the path) and counts as an input.
    pub inputs: Vec<Result<Input, Error>>,
    /// Entries passed over, for the caller to report.
    pub skipped: Vec<Skipped>,
    /// Folders named on the command line in which the walk found no file at all.
    pub empty_folders: Vec<PathBuf>,
}

/// Expands files and folders into inputs. Folders are walked recursively following symbolic
/// links, with loop detection; each file is listed once (by device and inode), whatever its
/// name or extension (the decoder's probe decides what is audio); only regular files are taken
/// from folders. Named paths are always listed: a non-regular one as [`Input::Stream`], `-` as
/// [`Input::Stdin`].
pub fn expand_inputs(inputs: &[PathBuf]) -> Expanded {
    let mut out = Expanded::default();
    let mut seen = Seen::default();
    for p in inputs {
        if p.as_os_str() == "-" {
            out.inputs.push(Ok(Input::Stdin));
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let before = out.inputs.len() + out.skipped.len();
                if walk(p, &mut seen, &mut out) && out.inputs.len() + out.skipped.len() == before {
                    out.empty_folders.push(p.clone());
                }
            }
            Ok(m) if !m.is_file() => out.inputs.push(Ok(Input::Stream(p.clone()))),
            Ok(m) => {
                seen.first(&m, p);
                out.inputs.push(Ok(Input::File(p.clone())));
            }
            Err(_) => out.inputs.push(Ok(Input::File(p.clone()))),
        }
    }
    out
}

/// Files and folders already listed, by device and inode.
#[derive(Default)]
struct Seen(HashMap<(u64, u64), PathBuf>);

impl Seen {
    /// `None` the first time a file is met; else the path it was first listed under.
    fn first(&mut self, meta: &std::fs::Metadata, path: &Path) -> Option<PathBuf> {
        match self.0.entry(file_key(meta, path)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(path.to_path_buf());
                None
            }
        }
    }
}

#[cfg(unix)]
fn file_key(meta: &std::fs::Metadata, _path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Without inodes, the canonical path stands in for the file's identity.
#[cfg(not(unix))]
fn file_key(_meta: &std::fs::Metadata, path: &Path) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .hash(&mut h);
    (0, h.finish())
}

/// What a non-regular file is, for the skip message.
fn special_kind(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "device";
        }
    }
    let _ = ft;
    "special file"
}

/// Walks one folder; false if it had been walked already (it adds nothing then).
fn walk(dir: &Path, seen: &mut Seen, out: &mut Expanded) -> bool {
    let mut it = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                if let Some(to) = e.loop_ancestor() {
                    let reason = SkipReason::Loop(to.to_path_buf());
                    out.skipped.push(Skipped { path, reason });
                } else {
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk"));
                    out.inputs.push(Err(Error::Io {
                        path: path.display().to_string(),
                        source,
                    }));
                }
                continue;
            }
        };
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("cannot stat"));
                out.inputs.push(Err(Error::Io {
                    path: entry.path().display().to_string(),
                    source,
                }));
                continue;
            }
        };
        let first = seen.first(&meta, entry.path());
        if meta.is_dir() {
            // A folder reached a second time through a link: its files are listed already.
            if first.is_some() {
                if entry.depth() == 0 {
                    return false;
                }
                it.skip_current_dir();
            }
            continue;
        }
        let path = entry.into_path();
        if let Some(first) = first {
            let reason = SkipReason::SameFile(first);
            out.skipped.push(Skipped { path, reason });
        } else if meta.is_file() {
            out.inputs.push(Ok(Input::File(path)));
        } else {
            let reason = SkipReason::NotRegular(special_kind(meta.file_type()));
            out.skipped.push(Skipped { path, reason });
        }
    }
    true
}

/// A private temporary file removed when dropped, also on an error or a broken pipe (not when
/// the process is killed). Stdin, named streams (FIFOs, devices) and a service's uploads are
/// copied into one: the decoder needs a file it can seek in, and a stream can be read only once.
#[derive(Debug)]
pub struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Spool {
    /// A new, empty file in the temp folder that only this user can read (uploads are
    /// sensitive), opened for writing; its name starts with `nasheed-{what}-`.
    pub fn create(what: &str) -> std::io::Result<(Spool, std::fs::File)> {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = format!("nasheed-{what}-{}-{nanos}-{n}", std::process::id());
        let path = std::env::temp_dir().join(file);
        let mut options = std::fs::OpenOptions::new();
        // A new file only: never follow a link or reuse a file someone left there.
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let f = options.open(&path)?;
        Ok((Spool(path), f))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Copies at most `cap` bytes of `from` into a new spool; a longer input, or one that
    /// cannot be read, is an error naming it (`name`).
    pub fn copy_from(
        from: &mut dyn std::io::Read,
        name: &str,
        cap: u64,
    ) -> Result<Spool, InputError> {
        use std::io::Read;
        let (spool, mut f) = Spool::create("stdin").map_err(|e| {
            InputError::new(
                ErrorKind::Unreadable,
                format!(
                    "{name}: cannot spool to {}: {e}",
                    std::env::temp_dir().display()
                ),
            )
        })?;
        let copied = std::io::copy(&mut from.take(cap.saturating_add(1)), &mut f)
            .and_then(|n| f.flush().map(|_| n))
            .map_err(|e| {
                InputError::new(ErrorKind::Unreadable, format!("{name}: cannot read: {e}"))
            })?;
        if copied > cap {
            return Err(InputError::new(
                ErrorKind::OverBudget,
                format!(
                    "{name}: longer than {cap} bytes, the limit for a stream (--max-stream-bytes)"
                ),
            ));
        }
        Ok(spool)
    }
}

/// Inputs ready to scan, with the spooled copies they read (removed when this is dropped).
pub struct Prepared {
    /// The inputs, in the order given.
    pub inputs: Vec<ScanInput>,
    _spools: Vec<Spool>,
}

/// The scan inputs of `expanded`: files as they are, streams and stdin spooled (at most
/// `max_stream_bytes` each), entries that could not be read as inputs whose record carries the
/// error.
pub fn prepare(expanded: Vec<Result<Input, Error>>, max_stream_bytes: u64) -> Prepared {
    let mut spools = Vec::new();
    let inputs = spool_streams(expanded, max_stream_bytes, &mut spools);
    Prepared {
        inputs,
        _spools: spools,
    }
}

fn spool_streams(
    expanded: Vec<Result<Input, Error>>,
    max_stream_bytes: u64,
    spools: &mut Vec<Spool>,
) -> Vec<ScanInput> {
    let mut keep = |spool: Result<Spool, InputError>| {
        spool.map(|s| {
            let path = s.path().to_path_buf();
            spools.push(s);
            path
        })
    };
    let mut inputs = Vec::with_capacity(expanded.len());
    for item in expanded {
        let (name, file) = match item {
            Ok(Input::File(f)) => (f.clone(), Ok(f)),
            Ok(Input::Stdin) => {
                let read = keep(Spool::copy_from(
                    &mut std::io::stdin().lock(),
                    "-",
                    max_stream_bytes,
                ));
                (PathBuf::from("-"), read)
            }
            Ok(Input::Stream(f)) => {
                let name = f.display().to_string();
                let read = std::fs::File::open(&f)
                    .map_err(|e| {
                        InputError::new(ErrorKind::Unreadable, format!("{name}: cannot read: {e}"))
                    })
                    .and_then(|mut r| Spool::copy_from(&mut r, &name, max_stream_bytes));
                let read = keep(read);
                (f, read)
            }
            Err(e) => {
                let name = match &e {
                    Error::Io { path, .. } | Error::Audio { path, .. } => path.clone(),
                    _ => String::new(),
                };
                let kind = e.input_kind();
                (
                    PathBuf::from(name),
                    Err(InputError::new(kind, e.to_string())),
                )
            }
        };
        inputs.push(ScanInput { name, file });
    }
    inputs
}
