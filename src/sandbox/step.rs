//! A step of the helper that failed: what was being done, and the OS error.

use nix::errno::Errno;

/// A failed step of the helper.
pub struct Failure {
    /// What was being done.
    pub step: String,
    /// Why it failed.
    pub errno: Errno,
}

/// `r`, its error as the failure of `step`.
pub fn at<T>(step: &str, r: Result<T, impl Into<Errno>>) -> Result<T, Failure> {
    r.map_err(|e| Failure { step: step.to_owned(), errno: e.into() })
}

/// The errno of an I/O error (EIO when it has none).
pub fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// [`at`] for an I/O result.
pub fn io_at<T>(step: &str, r: std::io::Result<T>) -> Result<T, Failure> {
    r.map_err(|e| Failure { step: step.to_owned(), errno: io_errno(&e) })
}
