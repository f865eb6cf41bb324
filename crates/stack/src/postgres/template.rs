//! A cache of `initdb`'d data directories, so a cluster starts from a copy instead of a fresh
//! `initdb` (most of a boot's cost). Test runners start one process per test, and each boots
//! its own cluster, so the saving is paid back on every test.
//!
//! One template per (server version, binaries directory, initdb options, our user) lives in
//! the system temp dir as `syncstorm-pgtemplate-<hash>`. It is built under a private temporary
//! name and renamed into place only once initdb has succeeded, so a template that exists is
//! complete; concurrent builders race harmlessly (the loser's rename fails and it removes its
//! copy). Templates are never modified after the rename. Any failure of the cache falls back
//! to a plain `initdb` into the cluster's own directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{LaunchError, Prepared, process};

/// Set (to anything) to skip the cache and always run `initdb`, e.g. to measure the difference.
pub const NO_TEMPLATE_ENV: &str = "SYNCSTORM_PG_NO_TEMPLATE";

/// The options every data directory is initialised with; part of the template's key.
pub(crate) const INITDB_ARGS: [&str; 8] = [
    "-U",
    super::SUPERUSER,
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--no-locale",
    "--no-sync",
];

const TEMPLATE_PREFIX: &str = "syncstorm-pgtemplate-";
const BUILD_PREFIX: &str = ".syncstorm-pgtemplate-build-";
/// A build directory older than this belongs to a builder that died; it is removed.
const STALE_BUILD: Duration = Duration::from_secs(600);

/// Fills `prepared.dir/data`: a copy of the cached template when possible, else `initdb`.
pub(crate) fn init_data(prepared: &Prepared) -> Result<(), LaunchError> {
    // Copying as root would succeed where the server's user cannot even enter the directory;
    // say so now, as initdb would have.
    if let Some(run_as) = prepared.run_as
        && !reachable_by(&prepared.dir, run_as)
    {
        return Err(super::unreachable(prepared));
    }
    if std::env::var_os(NO_TEMPLATE_ENV).is_none()
        && let Ok(template) = ensure_template(prepared)
        && copy_data(&template, prepared).is_ok()
    {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(prepared.dir.join("data"));
    super::run_initdb(prepared)
}

/// The template's path for these binaries and options, built first if it does not exist.
fn ensure_template(prepared: &Prepared) -> Result<PathBuf, LaunchError> {
    let parent = std::env::temp_dir();
    let template = parent.join(format!("{TEMPLATE_PREFIX}{}", template_key(prepared)?));
    if template.join("data/PG_VERSION").is_file() {
        return Ok(template);
    }
    sweep_stale_builds(&parent);
    let build = tempfile::Builder::new()
        .prefix(BUILD_PREFIX)
        .tempdir_in(&parent)
        .map_err(|source| dir_error(&parent, source))?;
    process::chown_tree(build.path(), prepared.run_as)
        .map_err(|source| dir_error(build.path(), source))?;
    let builder = Prepared {
        bins: prepared.bins.clone(),
        dir: build.path().to_path_buf(),
        run_as: prepared.run_as,
    };
    super::run_initdb(&builder)?;
    // Fails when another process renamed its template first; then ours is simply dropped.
    let _ = std::fs::rename(build.path(), &template);
    if template.join("data/PG_VERSION").is_file() {
        Ok(template)
    } else {
        Err(dir_error(&template, std::io::ErrorKind::NotFound.into()))
    }
}

/// Hash of everything that makes two data directories differ.
fn template_key(prepared: &Prepared) -> Result<String, LaunchError> {
    let postgres = prepared.bins.postgres();
    let version = Command::new(&postgres)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LaunchError::Spawn {
            program: postgres.clone(),
            source,
        })?;
    let mut hash = Sha256::new();
    hash.update(&version.stdout);
    hash.update(prepared.bins.bindir.as_os_str().as_encoded_bytes());
    for arg in INITDB_ARGS {
        hash.update(arg.as_bytes());
        hash.update([0]);
    }
    hash.update(nix::unistd::geteuid().as_raw().to_le_bytes());
    Ok(hex::encode(&hash.finalize()[..8]))
}

/// Copies the template's `data` into the cluster directory and hands it to the server's user.
fn copy_data(template: &Path, prepared: &Prepared) -> std::io::Result<()> {
    let data = prepared.dir.join("data");
    copy_tree(&template.join("data"), &data)?;
    process::chown_tree(&data, prepared.run_as)
}

/// Recursive copy keeping permission bits (PostgreSQL insists on a 0700/0750 data dir).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else {
            std::fs::copy(&source, &target)?;
        }
    }
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())
}

/// Whether `run_as` may search every directory from the root down to `dir` (permission bits
/// only: owner, then group, then others, as the kernel checks them; ACLs are not read).
pub(crate) fn reachable_by(dir: &Path, run_as: process::RunAs) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().all(|ancestor| {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            return false;
        };
        let mode = meta.mode();
        let bit = if meta.uid() == run_as.uid {
            0o100
        } else if meta.gid() == run_as.gid {
            0o010
        } else {
            0o001
        };
        mode & bit != 0
    })
}

/// Removes build directories left by builders that died mid-way.
fn sweep_stale_builds(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_BUILD));
        if name.to_string_lossy().starts_with(BUILD_PREFIX) && stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn dir_error(path: &Path, source: std::io::Error) -> LaunchError {
    LaunchError::Dir {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_modes_and_contents() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let from = root.path().join("from");
        std::fs::create_dir_all(from.join("base/1")).unwrap();
        std::fs::write(from.join("base/1/rel"), b"page").unwrap();
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o700)).unwrap();
        let to = root.path().join("to");
        copy_tree(&from, &to).unwrap();
        assert_eq!(std::fs::read(to.join("base/1/rel")).unwrap(), b"page");
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // The target must not exist yet: a copy never merges into a half-made directory.
        assert!(copy_tree(&from, &to).is_err());
    }

    #[test]
    fn reachability_follows_owner_group_other_bits() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let root = tempfile::tempdir().unwrap();
        let inner = root.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let meta = std::fs::metadata(root.path()).unwrap();
        let owner = process::RunAs {
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let stranger = process::RunAs {
            uid: meta.uid().wrapping_add(4242),
            gid: meta.gid().wrapping_add(4242),
        };
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(reachable_by(&inner, owner));
        assert!(!reachable_by(&inner, stranger));
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o701)).unwrap();
        assert!(reachable_by(&inner, stranger));
    }
}
