//! How the binary asks glibc's allocator to give freed memory back to the system.
//!
//! Left to its defaults, glibc serves an allocation from a process-wide heap once it is
//! smaller than the largest block freed so far (up to 32 MiB), and gives every thread that
//! allocates its own heap, up to eight per core. curfew reads its caches in list pages of
//! several MiB and keeps thousands of small objects from each: the pages' memory then stays in
//! heaps pinned by those objects, and over 10,000 Deployments the process kept 10 to 13 MiB
//! it no longer used (BENCHMARKS.md). So blocks of 128 KiB and more are mapped on
//! their own and unmapped when freed, a heap's free top is returned from 128 KiB, and threads
//! share two heaps.
//!
//! An operator who sets glibc's own variables (`GLIBC_TUNABLES`, `MALLOC_*`) keeps them: the
//! settings here are then left alone. Other C libraries and allocators are not touched.
//!
//! This is the one place in curfew with `unsafe` code, and it belongs to the binary alone: a
//! library must not change the allocator of the process it is linked into.

/// Blocks of this size and larger are mapped on their own, and returned when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAPPED_FROM_BYTES: libc::c_int = 128 * 1024;
/// A heap's free top is returned to the system once it is this large.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIMMED_FROM_BYTES: libc::c_int = 128 * 1024;
/// How many heaps the threads share.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAPS: libc::c_int = 2;

/// Tunes glibc's allocator as the module describes, unless the environment already does.
/// Call first thing in `main`, before any thread starts.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !set_by_operator(std::env::vars_os().map(|(name, _)| name)) {
        for (parameter, value) in [
            (libc::M_MMAP_THRESHOLD, MAPPED_FROM_BYTES),
            (libc::M_TRIM_THRESHOLD, TRIMMED_FROM_BYTES),
            (libc::M_ARENA_MAX, HEAPS),
        ] {
            // SAFETY: `mallopt` only changes the allocator's parameters, which glibc allows
            // at any time and from any thread; a value it refuses (result 0) leaves that
            // parameter as it was.
            #[allow(unsafe_code)]
            let _ = unsafe { libc::mallopt(parameter, value) };
        }
    }
}

/// Whether the environment names one of glibc's allocator settings.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn set_by_operator(names: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    names.into_iter().any(|name| {
        let name = name.to_string_lossy();
        name == "GLIBC_TUNABLES" || name.starts_with("MALLOC_")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_variables_set_by_the_operator_are_left_to_win() {
        let names = |list: &[&str]| {
            list.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert!(!set_by_operator(names(&["PATH", "HOME", "CURFEW_CONFIG"])));
        assert!(set_by_operator(names(&["PATH", "MALLOC_ARENA_MAX"])));
        assert!(set_by_operator(names(&["GLIBC_TUNABLES"])));
        assert!(!set_by_operator(names(&["MY_MALLOC_ARENA"])));
    }
}
