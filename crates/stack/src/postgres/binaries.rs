//! Finding the PostgreSQL server binaries (`initdb`, `postgres`) on this machine.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming a directory that holds `initdb` and `postgres`; checked first.
pub const BINDIR_ENV: &str = "SYNCSTORM_PG_BINDIR";

/// A directory holding the server binaries the launcher runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub bindir: PathBuf,
}

impl Binaries {
    pub fn initdb(&self) -> PathBuf {
        self.bindir.join("initdb")
    }

    pub fn postgres(&self) -> PathBuf {
        self.bindir.join("postgres")
    }

    /// Looks in `$SYNCSTORM_PG_BINDIR` alone when it is set (a directory the user named is
    /// never silently replaced by another server), else `PATH`, then `pg_config --bindir`,
    /// then `/usr/lib/postgresql/*/bin` (highest major version first).
    pub fn discover() -> Option<Binaries> {
        discover_in(
            std::env::var_os(BINDIR_ENV).map(PathBuf::from),
            std::env::var_os("PATH"),
            Path::new("/usr/lib/postgresql"),
        )
    }
}

/// `discover` with its inputs explicit: the override dir, a `PATH` value (also where
/// `pg_config` is looked for), and the root of the versioned directories.
pub(crate) fn discover_in(
    override_dir: Option<PathBuf>,
    path: Option<OsString>,
    versioned_root: &Path,
) -> Option<Binaries> {
    if let Some(dir) = override_dir {
        return server_dir(&dir).map(|bindir| Binaries { bindir });
    }
    let path_dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    path_dirs
        .iter()
        .find_map(|dir| server_dir(dir))
        .or_else(|| from_pg_config(&path_dirs))
        .or_else(|| from_versioned_dirs(versioned_root))
        .map(|bindir| Binaries { bindir })
}

/// `dir` if it holds both `initdb` and `postgres`, resolved through symlinks so that
/// `initdb` finds its sibling `postgres` of the same version.
fn server_dir(dir: &Path) -> Option<PathBuf> {
    let initdb = dir.join("initdb");
    if !is_executable(&initdb) || !is_executable(&dir.join("postgres")) {
        return None;
    }
    let real_parent = std::fs::canonicalize(&initdb)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|p| is_executable(&p.join("postgres")));
    Some(real_parent.unwrap_or_else(|| dir.to_path_buf()))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn from_pg_config(path_dirs: &[PathBuf]) -> Option<PathBuf> {
    let pg_config = path_dirs
        .iter()
        .map(|d| d.join("pg_config"))
        .find(|p| is_executable(p))?;
    let out = Command::new(pg_config).arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    server_dir(Path::new(dir.trim()))
}

/// The `<root>/<major>/bin` with the highest numeric major version that holds the binaries.
pub(crate) fn from_versioned_dirs(root: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().find_map(|(_, bin)| server_dir(&bin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_bin(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for name in ["initdb", "postgres"] {
            let p = dir.join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn highest_numeric_version_wins_and_incomplete_dirs_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        fake_bin(&root.path().join("9/bin"));
        fake_bin(&root.path().join("15/bin"));
        std::fs::create_dir_all(root.path().join("16/bin")).unwrap(); // no binaries
        std::fs::create_dir_all(root.path().join("common")).unwrap();
        let found = from_versioned_dirs(root.path()).unwrap();
        assert_eq!(found, root.path().join("15/bin").canonicalize().unwrap());
    }

    #[test]
    fn nothing_anywhere_finds_nothing_and_the_override_wins() {
        let root = tempfile::tempdir().unwrap();
        let empty_path = Some(OsString::from(root.path().join("nowhere")));
        assert_eq!(
            discover_in(None, empty_path.clone(), &root.path().join("none")),
            None
        );
        fake_bin(&root.path().join("custom"));
        fake_bin(&root.path().join("versions/15/bin"));
        let found = discover_in(
            Some(root.path().join("custom")),
            empty_path,
            &root.path().join("versions"),
        );
        assert_eq!(found.unwrap().bindir, root.path().join("custom"));
        let named_but_empty = discover_in(
            Some(root.path().join("empty")),
            None,
            &root.path().join("versions"),
        );
        assert_eq!(
            named_but_empty, None,
            "the named directory is the only one tried"
        );
    }

    #[test]
    fn a_dir_without_postgres_is_not_a_server_dir() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("initdb");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(server_dir(root.path()), None);
    }
}
