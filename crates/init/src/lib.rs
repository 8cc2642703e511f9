//! The `--init` executable, embedded: berthd writes [`BINARY`] once into its exec-root and
//! bind-mounts it read-only at `/sbin/docker-init` in containers created with `--init`
//! (Docker's path, so `ps` and scripts inside look the same). The program itself is
//! `init/main.rs`: PID 1 that runs `-- CMD ARGS...` as its child, forwards every signal to
//! it, reaps every zombie re-parented to it, and exits with the child's status (128 + signal
//! when the child was killed), as tini (Docker's `docker-init`) does.

/// The static x86-64 (or host-target) executable built from `init/main.rs`.
pub static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

#[cfg(test)]
mod tests {
    #[test]
    fn is_a_static_elf() {
        assert_eq!(&super::BINARY[..4], b"\x7fELF");
        // No PT_INTERP program header: it needs no dynamic loader inside the container.
        let b = super::BINARY;
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
        let (size, count) = (u16_at(0x36), u16_at(0x38));
        assert!(count > 0);
        for i in 0..count {
            let o = phoff + i * size;
            let p_type = u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            assert_ne!(p_type, 3, "PT_INTERP present: not a static executable");
        }
    }
}
