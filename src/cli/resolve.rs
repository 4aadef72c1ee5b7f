//! Resolution: what the parsed arguments mean, built once before a command runs. The index is
//! opened here (read, inspect or write, with the messages that say which file and why not), the
//! token read, and the output writer and its presentation chosen. Commands get these ready-made
//! and only drive the engine.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context};
use nasheed::fingerprint::FingerprintParams;
use nasheed::index::{self as store_index, Access, IndexError, Store};
use nasheed::pack;

use super::args::Color;
use super::output::{self, Presentation, Writer};

/// The writer for `--format NAME` on stdout, with its presentation.
pub fn writer(format: &str, how: Presentation) -> Box<dyn Writer> {
    let out: Box<dyn std::io::Write> = Box::new(std::io::BufWriter::new(std::io::stdout()));
    (output::format(format).new)(out, how)
}

/// Where scans read the index `db`: the index itself, or for a PostgreSQL index its local
/// replica, brought up to date first (index::replica): scans never wait on the database.
pub fn scan_location(db: &Path, params: &FingerprintParams) -> anyhow::Result<std::path::PathBuf> {
    if !store_index::postgres::is_url(db) {
        return Ok(db.to_path_buf());
    }
    let url = db.to_str().unwrap_or_default();
    let (path, _) = store_index::replica::update(url, &params.id(), None)?;
    Ok(path)
}

/// Whether text output is coloured: `--color`, and for `auto` a terminal on stdout and no
/// `NO_COLOR` (https://no-color.org: a set, non-empty NO_COLOR turns colour off).
pub fn color(choice: Color) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Refuses a pack or a folder as the index of a command that writes.
pub fn refuse_pack(db: &Path) -> anyhow::Result<()> {
    if db.is_dir() {
        bail!(
            "--db {} is a folder: index, import and remove write to an index database file",
            db.display()
        );
    }
    if pack::is_pack_source(db) {
        bail!(
            "--db {} is a fingerprint pack, which is read-only: index into a database file, or `import` the pack into one",
            db.display()
        );
    }
    Ok(())
}

/// The write endpoints' bearer token: from `--token-file`, else `$NASHEED_TOKEN`, else none.
/// Never from a command-line value, which any user can read in the process list.
pub fn read_token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let (token, source) = match file {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("--token-file {}: cannot read", p.display()))?,
            format!("--token-file {}", p.display()),
        ),
        None => match std::env::var("NASHEED_TOKEN") {
            Ok(t) => (t, "NASHEED_TOKEN".to_string()),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => bail!("NASHEED_TOKEN is not valid UTF-8"),
        },
    };
    let token = token.trim();
    if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{source}: the token must be at least 16 characters, without spaces or control characters");
    }
    Ok(Some(token.to_string()))
}

/// Why a scan against an index without references is refused, and what to do.
pub fn empty_index_message(db: &Path) -> String {
    let what = if db.is_dir() {
        format!(
            "--db {} is a folder with no fingerprint pack (*.{}) in it",
            db.display(),
            pack::EXTENSION
        )
    } else {
        format!("the index {} holds no references", db.display())
    };
    format!(
        "{what}: scanning against it would report every upload clean; fill it with `nasheed index` or `nasheed import`, or pass --allow-empty to scan anyway"
    )
}

/// The index (a database, a pack or a folder of packs) to scan against.
pub fn open_for_reading(
    db: &Path,
    params: &FingerprintParams,
) -> anyhow::Result<Box<dyn Store + Send>> {
    Ok(store_index::open(db, &params.id(), Access::Read)?)
}

/// Like [`open_for_reading`], but an index or pack built with other fingerprint parameters is
/// opened too (read-only, with a note on stderr): it can be listed, counted and exported.
pub fn open_to_inspect(
    db: &Path,
    params: &FingerprintParams,
) -> anyhow::Result<Box<dyn Store + Send>> {
    let store = store_index::open(db, &params.id(), Access::Inspect)?;
    if store.params_id() != params.id() {
        eprintln!(
            "note: {} was built with fingerprint parameters {}, this build uses {}: it can be listed and exported, not scanned",
            db.display(),
            store.params_id(),
            params.id()
        );
    }
    Ok(store)
}

/// An index database opened for writing (`Create`: made when missing; `Modify`: must exist).
pub fn open_for_writing(
    db: &Path,
    params: &FingerprintParams,
    access: Access,
) -> anyhow::Result<Box<dyn Store + Send>> {
    store_index::open(db, &params.id(), access).map_err(|e| match e {
        // SQLite's own messages do not always say which file.
        IndexError::Backend(_) => {
            anyhow::Error::new(e).context(format!("opening index {}", db.display()))
        }
        // These name the file already.
        other => other.into(),
    })
}
