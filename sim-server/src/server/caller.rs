//! The client process as the simulated kernel sees it during one ioctl: only the memory the
//! request carries and the fds it attached. Anything else is `EFAULT` / `EBADF`, so a client
//! can reach neither the server's memory nor another client's files.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use agx_sim::uaccess::{check_range, Caller};
use agx_sim::Errno;

use crate::msg::Segment;
use crate::wire::{seg, FD_PLACEHOLDER, MAX_FDS};

/// Most separate writes one reply carries (adjacent writes merge into one).
pub(crate) const MAX_WRITES: usize = 16;

pub(crate) struct RemoteCaller<'a> {
    segments: &'a [Segment],
    fds: Vec<(RawFd, OwnedFd)>,
    killed: &'a AtomicBool,
    writes: RefCell<Vec<(u64, Vec<u8>)>>,
    installed: RefCell<Vec<OwnedFd>>,
}

impl<'a> RemoteCaller<'a> {
    pub(crate) fn new(
        segments: &'a [Segment],
        fds: Vec<(RawFd, OwnedFd)>,
        killed: &'a AtomicBool,
    ) -> RemoteCaller<'a> {
        RemoteCaller {
            segments,
            fds,
            killed,
            writes: RefCell::new(Vec::new()),
            installed: RefCell::new(Vec::new()),
        }
    }

    /// What the handler wrote and the fds it installed, for the reply.
    pub(crate) fn finish(self) -> (Vec<(u64, Vec<u8>)>, Vec<OwnedFd>) {
        (self.writes.into_inner(), self.installed.into_inner())
    }

    /// The segment with `flag` that holds all of `[addr, addr + len)`.
    fn segment(&self, addr: u64, len: usize, flag: u32) -> Result<&'a Segment, Errno> {
        check_range(addr, len)?;
        let end = addr + len as u64;
        self.segments
            .iter()
            .find(|s| {
                s.flags & flag != 0 && s.addr <= addr && s.addr.checked_add(s.len) >= Some(end)
            })
            .ok_or(Errno::FAULT)
    }
}

impl Caller for RemoteCaller<'_> {
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Errno> {
        if dst.is_empty() {
            return Ok(());
        }
        let s = self.segment(src, dst.len(), seg::IN)?;
        if s.flags & seg::TOO_BIG != 0 {
            return Err(Errno::NOMEM);
        }
        if s.flags & seg::FAULT != 0 {
            return Err(Errno::FAULT);
        }
        let start = (src - s.addr) as usize;
        let bytes = s.data.get(start..start + dst.len()).ok_or(Errno::FAULT)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Errno> {
        if src.is_empty() {
            return Ok(());
        }
        self.segment(dst, src.len(), seg::OUT)?;
        let mut writes = self.writes.borrow_mut();
        if let Some((addr, data)) = writes.last_mut() {
            if *addr + data.len() as u64 == dst {
                data.extend_from_slice(src);
                return Ok(());
            }
        }
        if writes.len() >= MAX_WRITES {
            return Err(Errno::FAULT);
        }
        writes.push((dst, src.to_vec()));
        Ok(())
    }

    fn fdget(&self, raw: RawFd) -> Result<BorrowedFd<'_>, Errno> {
        self.fds
            .iter()
            .find(|(n, _)| *n == raw && raw >= 0)
            .map(|(_, fd)| fd.as_fd())
            .ok_or(Errno::BADF)
    }

    fn fd_install(&self, fd: OwnedFd) -> Result<RawFd, Errno> {
        let mut installed = self.installed.borrow_mut();
        if installed.len() >= MAX_FDS {
            return Err(Errno::MFILE);
        }
        installed.push(fd);
        Ok(FD_PLACEHOLDER - (installed.len() as RawFd - 1))
    }

    fn signal_pending(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(addr: u64, len: u64, flags: u32, data: &[u8]) -> Segment {
        Segment {
            addr,
            len,
            flags,
            data: data.to_vec(),
        }
    }

    #[test]
    fn only_what_was_sent() {
        let segs = [
            seg(0x1000, 4, seg::IN, &[1, 2, 3, 4]),
            seg(0x2000, 8, seg::OUT, &[]),
            seg(0x3000, 8, seg::IN | seg::FAULT, &[]),
            seg(0x4000, 1 << 40, seg::IN | seg::TOO_BIG, &[]),
        ];
        let killed = AtomicBool::new(false);
        let c = RemoteCaller::new(&segs, Vec::new(), &killed);
        let mut b = [0u8; 2];
        c.copy_from_user(&mut b, 0x1002).unwrap();
        assert_eq!(b, [3, 4]);
        // Past the end, elsewhere, not readable, too big, in the zero page.
        assert_eq!(c.copy_from_user(&mut b, 0x1003), Err(Errno::FAULT));
        assert_eq!(c.copy_from_user(&mut b, 0x2000), Err(Errno::FAULT));
        assert_eq!(c.copy_from_user(&mut b, 0x3000), Err(Errno::FAULT));
        assert_eq!(c.copy_from_user(&mut b, 0x4000), Err(Errno::NOMEM));
        assert_eq!(c.copy_from_user(&mut b, 0x10), Err(Errno::FAULT));
        // Writes only to OUT, adjacent ones merged.
        assert_eq!(c.copy_to_user(0x1000, &[0]), Err(Errno::FAULT));
        c.copy_to_user(0x2000, &[1, 2]).unwrap();
        c.copy_to_user(0x2002, &[3]).unwrap();
        c.copy_to_user(0x2006, &[9, 9]).unwrap();
        assert_eq!(c.copy_to_user(0x2007, &[9, 9]), Err(Errno::FAULT));
        // Fds: only attached numbers; installs get placeholders.
        assert_eq!(c.fdget(0).unwrap_err(), Errno::BADF);
        assert_eq!(c.fdget(-1).unwrap_err(), Errno::BADF);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(c.fd_install(r).unwrap(), FD_PLACEHOLDER);
        let (writes, fds) = c.finish();
        assert_eq!(writes, vec![(0x2000, vec![1, 2, 3]), (0x2006, vec![9, 9])]);
        assert_eq!(fds.len(), 1);
    }

    #[test]
    fn attached_fds_resolve_by_the_callers_number() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let killed = AtomicBool::new(false);
        let c = RemoteCaller::new(&[], vec![(17, r), (3, w)], &killed);
        assert!(c.fdget(17).is_ok() && c.fdget(3).is_ok());
        assert_eq!(c.fdget(4).unwrap_err(), Errno::BADF);
        assert!(!c.signal_pending());
        killed.store(true, Ordering::Relaxed);
        assert!(c.signal_pending());
    }
}
