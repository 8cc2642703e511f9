//! Keeps a long-running shim small. Creating a container runs a lot of code (libcontainer,
//! libseccomp, serde) that the event loop never needs again; once the container exists the
//! shim gives those pages back: its own untouched text pages are unmapped (they refault from
//! the page cache if ever needed), free heap is returned to the kernel, and the stack below
//! the current frame is released.
use std::os::unix::ffi::OsStrExt;

/// One mapping of `/proc/self/smaps`.
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    anonymous_kb: u64,
}

fn mappings() -> Vec<Mapping> {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or("").to_owned();
                let path = f.nth(3).unwrap_or("").to_owned();
                out.push(Mapping {
                    start,
                    end,
                    perms,
                    path,
                    anonymous_kb: 0,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let (Some(m), Some(v)) = (out.last_mut(), f.next().and_then(|v| v.parse().ok())) {
                m.anonymous_kb = v;
            }
        }
    }
    out
}

/// Drops what container creation left behind (see the module docs).
pub fn shrink() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let exe = exe.as_ref().map(|p| p.as_os_str().as_bytes());
    let local = 0u8;
    let sp = std::ptr::addr_of!(local) as usize;
    let page = 4096usize;
    for m in mappings() {
        if exe == Some(m.path.as_bytes()) && !m.perms.contains('w') && m.anonymous_kb == 0 {
            // Clean, never-written pages of our own executable (text, rodata): unmapping
            // them is invisible to the program, a later access reads them in again.
            // SAFETY: the range is a read-only private file mapping without modified pages.
            unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_DONTNEED,
                )
            };
        } else if m.path == "[stack]" && m.start < sp && sp < m.end {
            // Everything more than a few pages below the current frame is dead.
            let top = (sp & !(page - 1)).saturating_sub(4 * page);
            if top > m.start {
                // SAFETY: anonymous stack memory below the live frames (and below the red
                // zone and any signal frame margin): no live data is there.
                unsafe {
                    libc::madvise(
                        m.start as *mut libc::c_void,
                        top - m.start,
                        libc::MADV_DONTNEED,
                    )
                };
            }
        }
    }
}
