//! Reading files that someone else controls (a bundle's side files, a log on the target)
//! without being led elsewhere by them.
//!
//! The path is resolved first (every link followed) and the caller checks the real path
//! (inside the bundle; allowed by the policy). Then that real path is opened refusing any
//! link (`openat2` with `RESOLVE_NO_SYMLINKS`), so a link swapped in after the check is
//! refused rather than followed. Only regular files are read: a FIFO would block the read
//! forever and a device (`/dev/zero`) never ends. At most the bytes asked for are read,
//! whatever the file's size (a 4 GB sparse file costs nothing).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Why a file was not read; the messages finish a sentence that starts with the path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("is not a regular file ({0}); only regular files are read")]
    NotRegular(&'static str),
    #[error("is {size} bytes, over the {cap}-byte limit")]
    TooLarge { size: u64, cap: u64 },
}

/// The real path of `path`: absolute, every link followed, no `.` or `..`.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

fn kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// Opens a path returned by [`resolve`] (so it holds no links), for reading, if it is a
/// regular file. Never blocks: a FIFO or device is refused before it is opened, and opened
/// non-blocking in case one was swapped in since.
pub fn open_resolved(real: &Path) -> Result<File, FileError> {
    let meta = std::fs::symlink_metadata(real)?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(kind(meta.file_type())));
    }
    let file = open_no_links(real)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(kind(meta.file_type())));
    }
    Ok(file)
}

#[cfg(target_os = "linux")]
fn open_no_links(real: &Path) -> io::Result<File> {
    use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
    let flags =
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NOFOLLOW;
    match rustix::fs::openat2(
        CWD,
        real,
        flags,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(File::from(fd)),
        // Kernels before 5.6 (or a seccomp filter) lack openat2: open refusing a link in
        // the last component, then check that the file opened is the one resolved.
        Err(rustix::io::Errno::NOSYS) => {
            let file = File::from(rustix::fs::open(real, flags, Mode::empty())?);
            let opened = std::fs::read_link(format!("/proc/self/fd/{}", {
                use std::os::fd::AsRawFd;
                file.as_raw_fd()
            }))?;
            if opened != real {
                return Err(io::Error::other(format!(
                    "changed while it was opened (now {})",
                    opened.display()
                )));
            }
            Ok(file)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_no_links(real: &Path) -> io::Result<File> {
    File::open(real)
}

/// At most `max` bytes from the start of an opened regular file. The file's length only
/// sizes the buffer: some files (those in /proc) report 0, and a file may grow while read.
pub fn read_at_most(file: File, max: u64) -> io::Result<Vec<u8>> {
    let hint = file.metadata().map_or(0, |m| m.len()).min(max);
    let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    #[cfg(target_os = "linux")]
    crate::hugepages::advise_buffer(out.spare_capacity_mut());
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// At most the last `max` bytes of an opened regular file, and the offset they end at (the
/// file's length as read; a file that grows while read gives bytes past its old end, never
/// more than `max`). Only the tail is read: seeking costs nothing, however large the file.
pub fn read_tail(mut file: File, max: u64) -> io::Result<(Vec<u8>, u64)> {
    let len = file.metadata()?.len();
    if len == 0 {
        return read_tail_unsized(file, max);
    }
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let bytes = read_at_most(file, max)?;
    let end = start + bytes.len() as u64;
    Ok((bytes, end))
}

/// Files that report no length (those in /proc) are read from the start, keeping the
/// last `max` bytes; no more than this is read through, so a file that keeps growing
/// as it is read still ends.
const MAX_UNSIZED_SCAN: u64 = 1 << 30;

fn read_tail_unsized(file: File, max: u64) -> io::Result<(Vec<u8>, u64)> {
    let keep = usize::try_from(max).unwrap_or(usize::MAX);
    let mut reader = file.take(MAX_UNSIZED_SCAN);
    let mut window: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        window.extend_from_slice(&buf[..n]);
        // Drop the front in big pieces, not on every read.
        if window.len() > keep.saturating_mul(2).max(1 << 20) {
            window.drain(..window.len() - keep);
        }
    }
    if window.len() > keep {
        window.drain(..window.len() - keep);
    }
    Ok((window, total))
}

/// A whole regular file, refused when it is larger than `cap` (an answer cut short would
/// be a wrong answer, so nothing is returned instead).
pub fn read_whole(file: File, cap: u64) -> Result<Vec<u8>, FileError> {
    let size = file.metadata()?.len();
    if size > cap {
        return Err(FileError::TooLarge { size, cap });
    }
    let bytes = read_at_most(file, cap + 1)?;
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_and_no_links_after_resolving() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        std::fs::write(&real, "hello world").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        // A link is refused as given; its resolved path opens.
        assert!(open_resolved(&link).is_err());
        let resolved = resolve(&link).unwrap();
        let file = open_resolved(&resolved).unwrap();
        assert_eq!(read_at_most(file, 5).unwrap(), b"hello");

        // A link in a directory component is refused too.
        let sub = dir.path().join("sub");
        std::os::unix::fs::symlink(dir.path(), &sub).unwrap();
        assert!(open_resolved(&sub.join("real.txt")).is_err());

        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = open_resolved(&fifo).unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");
        let err = open_resolved(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a character device"), "{err}");

        let file = open_resolved(&resolved).unwrap();
        assert_eq!(read_tail(file, 5).unwrap(), (b"world".to_vec(), 11));
        let file = open_resolved(&resolved).unwrap();
        assert_eq!(read_tail(file, 100).unwrap(), (b"hello world".to_vec(), 11));
        let file = open_resolved(&resolved).unwrap();
        assert_eq!(read_tail(file, 0).unwrap(), (Vec::new(), 11));
        // /proc files say they are empty: read through, keeping the end.
        let status = resolve(Path::new("/proc/self/status")).unwrap();
        let file = open_resolved(&status).unwrap();
        let (tail, size) = read_tail(file, 16).unwrap();
        assert!(size > 16 && tail.len() == 16, "{size} {tail:?}");
        assert_eq!(tail.last(), Some(&b'\n'));

        let file = open_resolved(&resolved).unwrap();
        assert!(matches!(
            read_whole(file, 4),
            Err(FileError::TooLarge { size: 11, cap: 4 })
        ));
    }
}
