//! Files written whole or not at all: the report `--output` names, a guided session, a
//! scenario's JUnit results, a scaffold, a compiled plugin in the cache. A crash or a full
//! disk never leaves half a file where a reader (a bot, a CI system, the next start) expects
//! a whole one.
//!
//! And files read whole: the hand-written ones (a runbook, a policy, a config, a patterns
//! file) are read by [`read_text`], which refuses a FIFO, a device or a flood in one line.

use std::io::Write;
use std::path::Path;

/// The largest runbook, policy, config or patterns file read. The biggest built-in runbook
/// is under 40 KiB; a 10 MB one took half a minute to parse and check, so a file that size
/// is a mistake (or a flood) and is refused before it is parsed.
pub const MAX_TEXT_FILE_BYTES: u64 = 1 << 20;

/// A hand-written text file, whole: a regular file (links followed; a FIFO would block and
/// `/dev/zero` never ends) of at most [`MAX_TEXT_FILE_BYTES`], in UTF-8. The error finishes
/// a sentence that starts with the path ("is a FIFO…", "is 10485760 bytes, over…").
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use crate::target::files::{open_resolved, read_whole, resolve};
    let real = resolve(path)?;
    let bytes = open_resolved(&real)
        .and_then(|file| read_whole(file, MAX_TEXT_FILE_BYTES))
        .map_err(|e| match e {
            crate::target::files::FileError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        })?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced, then
/// renamed over `path` (a rename within one filesystem is atomic).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_is_refused_when_it_is_a_flood_a_fifo_a_device_or_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("runbook.yaml");
        std::fs::write(&ok, "id: x\n").unwrap();
        assert_eq!(read_text(&ok).unwrap(), "id: x\n");

        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_TEXT_FILE_BYTES as usize + 1]).unwrap();
        let e = read_text(&big).unwrap_err().to_string();
        assert!(e.contains("over the 1048576-byte limit"), "{e}");

        let fifo = dir.path().join("fifo.yaml");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        let e = read_text(&fifo).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");

        let e = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");

        let latin1 = dir.path().join("latin1.yaml");
        std::fs::write(&latin1, b"name: caf\xe9\n").unwrap();
        let e = read_text(&latin1).unwrap_err().to_string();
        assert_eq!(e, "is not UTF-8 text");
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself: {names:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/report.json");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(!path.exists());
    }
}
