//! The memory of an init that waits for `start`. It runs berth's code in a child of the
//! create process, so once `create` has exited it alone maps the pages of berth's
//! read-only segments it touched (about 2 MB of text and rodata): a created container
//! would keep them for as long as it waits. They are clean file pages, so the init can
//! drop them from its page tables and fault back in the few it needs after `start`.

extern "C" {
    // Both defined by the linker (GNU ld's and lld's default scripts): the first byte of
    // the image (its ELF header, start of the first, read-only segment) and the end of
    // the executable text.
    static __executable_start: u8;
    static etext: u8;
}

/// Unmaps (MADV_DONTNEED) berth's read-only segments from this process: the ELF
/// headers, rodata and text, up to the last whole page before `etext`. Nothing there is
/// ever written (relocations go to .data.rel.ro, after the text), so what faults back
/// in is the same bytes, from the page cache. Best effort: a failure changes nothing.
pub fn release_binary_pages() {
    // Only the symbols' addresses are taken; they are never read.
    let (start, end) = (std::ptr::addr_of!(__executable_start) as usize, std::ptr::addr_of!(etext) as usize);
    // SAFETY: sysconf with a constant name.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let start = start.next_multiple_of(page);
    let end = end & !(page - 1);
    if end > start {
        // SAFETY: [start, end) lies in this binary's read-only, file-backed mappings
        // (private and never written, see above), which MADV_DONTNEED only unmaps; the
        // code running now faults back in on return.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}
