//! Reading files an operator named (config, scenario, key and certificate files): regular files
//! only and size-capped, so a FIFO, a device or a huge file can neither hang a thread nor exhaust
//! memory. Async callers use [`read_text_async`], which reads off the runtime's worker threads.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest file apnsim reads (config, scenario, PEM): far above any real one.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a named file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The operating system refused (missing, no permission, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A FIFO, socket, device or directory: reading it could block forever or never end.
    #[error("{}: not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("{}: larger than {cap} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        cap: u64,
    },
    /// Not UTF-8 text.
    #[error("{}: not UTF-8 text", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8 text (blocking: call from a
/// plain thread or through [`read_text_async`]).
pub fn read_text(path: &Path) -> Result<String, FileError> {
    read_text_capped(path, MAX_FILE_BYTES)
}

/// [`read_text`] with a chosen cap.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    // stat first: opening a FIFO for reading blocks until a writer appears.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // The path may have been swapped for a FIFO since the stat: never block on open.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    String::from_utf8(bytes).map_err(|_| FileError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// [`read_text`] on the blocking pool, so the runtime keeps serving while the disk answers.
pub async fn read_text_async(path: PathBuf) -> Result<String, FileError> {
    let p = path.clone();
    match tokio::task::spawn_blocking(move || read_text(&p)).await {
        Ok(r) => r,
        Err(e) => Err(FileError::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("apnsim-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_regular_files_and_refuses_others() {
        let d = dir("kinds");
        let f = d.join("a.txt");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_text(&f).unwrap(), "hello");
        assert!(matches!(read_text(&d), Err(FileError::NotRegular { .. })));
        assert!(matches!(
            read_text(&d.join("missing")),
            Err(FileError::Io { .. })
        ));
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text(&f), Err(FileError::NotUtf8 { .. })));
        std::fs::write(&f, "x".repeat(11)).unwrap();
        assert!(matches!(
            read_text_capped(&f, 10),
            Err(FileError::TooLarge { cap: 10, .. })
        ));
        assert_eq!(read_text_capped(&f, 11).unwrap().len(), 11);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once() {
        let d = dir("fifo");
        let fifo = d.join("key.p8");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_text(&fifo),
            Err(FileError::NotRegular { .. })
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}
