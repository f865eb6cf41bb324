//! Writing and loading result files, with one clear sentence for every way a file is wrong.

use std::path::{Path, PathBuf};

use super::{RunResult, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {reason}")]
    NotJson { path: PathBuf, reason: String },
    #[error("{path} is not a syncstorm result (it has no schema_version)")]
    NotAResult { path: PathBuf },
    #[error(
        "{path} has result schema version {found}, but this syncstorm reads version {expected}; re-run it or use a matching syncstorm"
    )]
    WrongVersion {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
    #[error("{path} is a damaged syncstorm result: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("{0}")]
    Metrics(#[from] syncstorm_metrics::MetricsError),
    #[error("cannot merge these results: {0}")]
    Merge(String),
}

impl RunResult {
    /// The file name: `<scenario>-<UTC start, %Y%m%dT%H%M%SZ>[-shard<i>of<n>].json`.
    pub fn file_name(&self) -> String {
        let name: String = self
            .scenario
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = if name.is_empty() {
            "run".to_owned()
        } else {
            name
        };
        let stamp = self.started_at.format("%Y%m%dT%H%M%SZ");
        match self.shard {
            Some(s) => format!("{name}-{stamp}-shard{}of{}.json", s.index, s.count),
            None => format!("{name}-{stamp}.json"),
        }
    }

    /// Writes the result into `dir` (created if missing) and returns the file's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ResultError> {
        let path = dir.join(self.file_name());
        self.write_to(&path)?;
        Ok(path)
    }

    /// Writes the result to exactly `path` (through a temporary file, so a reader never sees
    /// half a result).
    pub fn write_to(&self, path: &Path) -> Result<(), ResultError> {
        let write_err = |source| ResultError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| ResultError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, json).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    /// Loads a result file, refusing anything that is not a result of this schema version.
    pub fn load(path: &Path) -> Result<RunResult, ResultError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultError::Read {
            path: path.to_owned(),
            source,
        })?;
        RunResult::from_json(path, &text)
    }

    /// Reads a result from its JSON text; `path` names the source in error messages.
    pub fn from_json(path: &Path, text: &str) -> Result<RunResult, ResultError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ResultError::NotJson {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| ResultError::NotAResult {
                path: path.to_owned(),
            })?;
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ResultError::WrongVersion {
                path: path.to_owned(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| ResultError::Damaged {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }
}
