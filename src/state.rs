//! Where state lives: the state directory (overrides, the cost ledger and the audit log as
//! JSON files) or, for several replicas, the cluster ([`configmaps`]).
//!
//! The audit log and the cost ledger are documents in a [`DocumentStore`]: a file each in a
//! [`StateDir`], or a ConfigMap each in a namespace. A write names the version it was based
//! on, so two replicas writing the same document cannot overwrite each other unnoticed.
//!
//! Every write goes to a temporary file in the same directory, is fsynced, renamed over the
//! old file and the directory fsynced, so a kill -9 at any moment leaves either the old or the
//! new content, never a torn file. A file that does not parse stops start-up with its path and
//! what is wrong; it is never silently reset.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "kubernetes")]
pub mod configmaps;
pub mod dry_run;
pub mod versioned;

#[cfg(feature = "kubernetes")]
pub use self::configmaps::ConfigMapStore;
pub use self::dry_run::DryRunStore;

/// What can go wrong with the state directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or the directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A state file exists but does not hold what it should.
    #[error("{path} is corrupt: {detail} (fix or move the file away; curfew never resets it)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A Kubernetes API request on a state ConfigMap failed.
    #[cfg(feature = "kubernetes")]
    #[error("configmap {namespace}/{name}: {source}")]
    Kubernetes {
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A versioned write kept meeting newer versions written by someone else.
    #[error("{path}: kept changing while being written")]
    Contended {
        /// The document.
        path: PathBuf,
    },
    /// Another replica stored a newer document; this one is not written over it.
    #[error("{path}: another replica keeps a newer one; not overwriting it")]
    Superseded {
        /// The document.
        path: PathBuf,
    },
    /// A write on a blocking thread did not finish: the thread panicked or the runtime shut
    /// down under it.
    #[error("{path}: the write did not finish: {source}")]
    Unfinished {
        /// The file.
        path: PathBuf,
        /// Why the thread ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// A value could not be serialised.
    #[error("cannot serialise {name}: {detail}")]
    Serialise {
        /// The file name.
        name: String,
        /// What went wrong.
        detail: String,
    },
}

/// Result type of state operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Corrupt { .. } => "corrupt",
            #[cfg(feature = "kubernetes")]
            Error::Kubernetes { .. } => "kubernetes",
            Error::Contended { .. } => "contended",
            Error::Superseded { .. } => "superseded",
            Error::Unfinished { .. } => "unfinished",
            Error::Serialise { .. } => "serialise",
        }
    }
}

/// A document as read: its text (`None` when it does not exist yet) and the version a write
/// must name to replace it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned {
    /// The JSON text.
    pub text: Option<String>,
    /// The version it was read at; `None` for a store without versions or a new document.
    pub version: Option<String>,
}

/// What a versioned write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Stored; the document's new version.
    Stored(Option<String>),
    /// Someone else wrote the document since the version named: read it again.
    Conflict,
}

/// A document to write: its compact JSON text, made as a store writes it. A state file is
/// written straight from the value, so a large document (the audit log after a boundary is
/// megabytes of text) is never held whole in memory beside the value it is made from.
#[derive(Clone)]
pub struct Document(Arc<WriteText>);

/// What writes a document's text.
type WriteText = dyn Fn(&mut dyn Write) -> std::io::Result<()> + Send + Sync;

impl Document {
    /// The document of `value`, serialised compactly when it is written.
    pub fn of<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        Document(Arc::new(move |out| {
            serde_json::to_writer(out, &value).map_err(std::io::Error::from)
        }))
    }

    /// Writes its text to `out`.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        (self.0)(out)
    }

    /// Its text, for a store that keeps text (a ConfigMap, memory); `name` names the document
    /// in an error.
    pub fn to_text(&self, name: &str) -> Result<String> {
        let mut text = Vec::new();
        self.write_to(&mut text)
            .map_err(|err| serialise_error(name, err))?;
        // serde_json writes UTF-8 only, and so does `From<String>`.
        String::from_utf8(text).map_err(|err| serialise_error(name, err))
    }
}

impl From<String> for Document {
    fn from(text: String) -> Self {
        Document(Arc::new(move |out| out.write_all(text.as_bytes())))
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Document")
    }
}

/// Named JSON documents (the audit log, the cost ledger) with optimistic concurrency.
#[async_trait]
pub trait DocumentStore: Send + Sync + std::fmt::Debug {
    /// Reads document `name` (a file name such as `audit.json`).
    async fn read(&self, name: &str) -> Result<Versioned>;

    /// Replaces document `name` with `document` if it is still at `version`.
    async fn write(&self, name: &str, document: Document, version: Option<&str>)
    -> Result<Written>;

    /// Where document `name` lives, for error messages.
    fn location(&self, name: &str) -> PathBuf;

    /// The largest document the store holds, in bytes, if it has a limit.
    fn max_bytes(&self) -> Option<usize> {
        None
    }

    /// Whether other processes write the same documents (so a cached copy can be stale).
    fn is_shared(&self) -> bool {
        false
    }
}

/// Documents in memory, with versions like a ConfigMap's: for tests of code that shares a
/// [`DocumentStore`] between replicas.
#[derive(Debug, Default)]
pub struct MemoryStore {
    documents: parking_lot::Mutex<std::collections::HashMap<String, (String, u64)>>,
    max_bytes: Option<usize>,
}

impl MemoryStore {
    /// An empty store shared between replicas, limiting documents to `max_bytes`.
    pub fn shared(max_bytes: Option<usize>) -> Self {
        MemoryStore {
            documents: parking_lot::Mutex::default(),
            max_bytes,
        }
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn read(&self, name: &str) -> Result<Versioned> {
        let documents = self.documents.lock();
        Ok(match documents.get(name) {
            Some((text, version)) => Versioned {
                text: Some(text.clone()),
                version: Some(version.to_string()),
            },
            None => Versioned::default(),
        })
    }

    async fn write(
        &self,
        name: &str,
        document: Document,
        version: Option<&str>,
    ) -> Result<Written> {
        let text = document.to_text(name)?;
        let mut documents = self.documents.lock();
        let current = documents.get(name).map(|(_, v)| v.to_string());
        if current.as_deref() != version {
            return Ok(Written::Conflict);
        }
        if self.max_bytes.is_some_and(|max| text.len() > max) {
            return Err(Error::Serialise {
                name: name.to_string(),
                detail: format!("{} bytes is more than the store holds", text.len()),
            });
        }
        let next = documents.get(name).map_or(0, |(_, v)| *v) + 1;
        documents.insert(name.to_string(), (text, next));
        Ok(Written::Stored(Some(next.to_string())))
    }

    fn location(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("memory:{name}"))
    }

    fn max_bytes(&self) -> Option<usize> {
        self.max_bytes
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// Parses a document's text; `where_` names it in the error.
pub fn parse<T: DeserializeOwned + Default>(text: Option<&str>, where_: &Path) -> Result<T> {
    let Some(text) = text else {
        return Ok(T::default());
    };
    serde_json::from_str(text).map_err(|err| Error::Corrupt {
        path: where_.to_path_buf(),
        detail: err.to_string(),
    })
}

/// Serialises a document compactly.
pub fn to_text<T: Serialize>(name: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| serialise_error(name, err))
}

/// The length of `value`'s compact text, counted without keeping the text.
pub fn text_len<T: Serialize>(name: &str, value: &T) -> Result<usize> {
    /// Counts what is written to it.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).map_err(|err| serialise_error(name, err))?;
    Ok(counter.0)
}

fn serialise_error(name: &str, err: impl std::fmt::Display) -> Error {
    Error::Serialise {
        name: name.to_string(),
        detail: err.to_string(),
    }
}

/// A directory of JSON state files.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

// === impl StateDir ===

impl StateDir {
    /// Opens (creating if needed) the state directory at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(StateDir { path })
    }

    /// The state directory at `path` for reading only (a dry run): unlike [`StateDir::open`]
    /// it does not create the directory; a missing one reads as empty.
    pub fn existing(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of state file `name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Reads state file `name`; a missing file gives `T::default()`, a corrupt one an error.
    pub fn load<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        let text = self.read_text(name)?;
        parse(text.as_deref(), &self.file(name))
    }

    fn read_text(&self, name: &str) -> Result<Option<String>> {
        let path = self.file(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Writes state file `name` atomically.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        write_atomically(&self.file(name), &to_pretty_bytes(name, value)?)
    }
}

/// Serialises document `name` for people to read.
pub fn to_pretty_bytes<T: Serialize>(name: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|err| Error::Serialise {
        name: name.to_string(),
        detail: err.to_string(),
    })
}

/// [`write_atomically`] on a blocking thread, so that a slow disk never holds up the threads
/// that answer requests.
pub async fn write_atomically_off_thread(path: PathBuf, bytes: Vec<u8>) -> Result<()> {
    write_off_thread(path, move |out| out.write_all(&bytes)).await
}

/// [`write_atomically_with`] on a blocking thread.
async fn write_off_thread(
    path: PathBuf,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
) -> Result<()> {
    let written = path.clone();
    tokio::task::spawn_blocking(move || write_atomically_with(&path, write))
        .await
        .map_err(|source| Error::Unfinished {
            path: written,
            source,
        })?
}

/// One process owns a state directory: files carry no versions and writes never conflict.
#[async_trait]
impl DocumentStore for StateDir {
    async fn read(&self, name: &str) -> Result<Versioned> {
        Ok(Versioned {
            text: self.read_text(name)?,
            version: None,
        })
    }

    /// Writes the file from the document as it is made, on a blocking thread.
    async fn write(
        &self,
        name: &str,
        document: Document,
        _version: Option<&str>,
    ) -> Result<Written> {
        write_off_thread(self.file(name), move |out| document.write_to(out)).await?;
        Ok(Written::Stored(None))
    }

    fn location(&self, name: &str) -> PathBuf {
        self.file(name)
    }

    /// Documents are rewritten whole: keeping them below 4 MiB keeps each write cheap.
    fn max_bytes(&self) -> Option<usize> {
        Some(STATE_DIR_DOCUMENT_BYTES)
    }
}

/// The largest document (the audit log) kept in a state directory.
pub const STATE_DIR_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |out| out.write_all(bytes))
}

/// Writes to `path` what `write` writes, through a buffered temporary file, fsync and rename.
fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut out = BufWriter::new(File::create(&temp).map_err(io)?);
        write(&mut out).map_err(io)?;
        let file = out.into_inner().map_err(|err| io(err.into_error()))?;
        file.sync_all().map_err(io)?;
    }
    fs::rename(&temp, path).map_err(io)?;
    // Make the rename itself durable.
    if let Ok(dir) = File::open(dir) {
        dir.sync_all().map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_loads_as_default_and_saved_value_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("state")).unwrap();
        let empty: Vec<String> = state.load("things.json").unwrap();
        assert!(empty.is_empty());
        state.save("things.json", &vec!["a".to_string()]).unwrap();
        let loaded: Vec<String> = state.load("things.json").unwrap();
        assert_eq!(loaded, vec!["a".to_string()]);
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        std::fs::write(state.file("overrides.json"), "{ not json").unwrap();
        let err = state.load::<Vec<String>>("overrides.json").unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
        assert!(err.to_string().contains("overrides.json"), "{err}");
    }

    #[test]
    fn save_leaves_no_temporary_files_behind() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.save("a.json", &1).unwrap();
        state.save("a.json", &2).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[tokio::test]
    async fn a_document_is_written_to_its_file_as_it_is_serialised_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let numbers: Vec<u32> = (0..100_000).collect();
        let document = Document::of(numbers.clone());
        let written = state.write("n.json", document.clone(), None).await;
        assert_eq!(written.unwrap(), Written::Stored(None));
        let text = state.read("n.json").await.unwrap().text.unwrap();
        assert_eq!(text, document.to_text("n.json").unwrap());
        assert_eq!(state.load::<Vec<u32>>("n.json").unwrap(), numbers);
        let text = String::from("[1,2]");
        state.write("t.json", text.into(), None).await.unwrap();
        assert_eq!(state.load::<Vec<u32>>("t.json").unwrap(), [1, 2]);
    }
}
