//! The library version, as a string for `la_version()` and as the
//! `LA_VERSION_MAJOR/MINOR/PATCH` macros that build.rs writes into the header.

use core::ffi::c_char;

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version as "MAJOR.MINOR.PATCH" (compare with the
/// LA_VERSION_MAJOR/MINOR/PATCH macros to detect a header/library mismatch).
///
/// Parameters: none.
///
/// Returns: a static NUL-terminated string; never NULL, never freed.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_matches_cargo() {
        // SAFETY: la_version returns a static NUL-terminated string.
        let v = unsafe { core::ffi::CStr::from_ptr(super::la_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn checked_in_header_is_fresh() {
        let generated = std::fs::read_to_string(env!("LIBALLOC_GENERATED_HEADER")).unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/liballoc.h");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            generated == checked_in,
            "include/liballoc.h is stale: run `make header` and commit it"
        );
    }
}
