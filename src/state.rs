//! The state directory: overrides, the cost ledger and the audit log as JSON files.
//!
//! Every write goes to a temporary file in the same directory, is fsynced, renamed over the
//! old file and the directory fsynced, so a kill -9 at any moment leaves either the old or the
//! new content, never a torn file. A file that does not parse stops start-up with its path and
//! what is wrong; it is never silently reset.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

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
        let path = self.file(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
            Err(source) => return Err(Error::Io { path, source }),
        };
        serde_json::from_str(&text).map_err(|err| Error::Corrupt {
            path,
            detail: err.to_string(),
        })
    }

    /// Writes state file `name` atomically.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|err| Error::Serialise {
            name: name.to_string(),
            detail: err.to_string(),
        })?;
        write_atomically(&self.file(name), &bytes)
    }
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
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
        let mut file = File::create(&temp).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
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
}
