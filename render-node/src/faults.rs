//! `AGX_RENDER_NODE_FAULTS`: faults of the program's own, for a program that knows nothing of
//! the simulator (Mesa): before its N-th `DRM_IOCTL_ASAHI_SUBMIT` goes to the device, the node
//! asks the simulated GPU to fault (or hang) the next command it starts on that submit's queue.
//! The program's work is then guilty of a fault, as if its own command had gone wrong.
//!
//! ```text
//! plan := term ( "," term )*    blanks around terms are ignored
//! term := "guilty@" N           the next command started on submit N's queue faults
//!       | "hang@" N             ... hangs (the watchdog ends it: a guilty timeout)
//! N    := decimal integer >= 1  SUBMIT ioctls on the node, counted from 1 in this process
//! ```

/// What to make of a submit's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Guilty,
    Hang,
}

/// The plan: which submit gets which fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    terms: Vec<(u64, Fault)>,
}

impl FaultPlan {
    pub fn parse(s: &str) -> Result<FaultPlan, String> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (kind, n) = term
                .split_once('@')
                .ok_or_else(|| format!("{term:?}: expected guilty@N or hang@N"))?;
            let fault = match kind {
                "guilty" => Fault::Guilty,
                "hang" => Fault::Hang,
                _ => return Err(format!("{term:?}: expected guilty@N or hang@N")),
            };
            let n: u64 = n
                .parse()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("{term:?}: N counts submits from 1"))?;
            terms.push((n, fault));
        }
        Ok(FaultPlan { terms })
    }

    /// The fault planned for submit `n` (counted from 1), if any.
    pub fn at(&self, n: u64) -> Option<Fault> {
        self.terms.iter().find(|(m, _)| *m == n).map(|(_, f)| *f)
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let p = FaultPlan::parse(" guilty@3 , hang@10,").unwrap();
        assert_eq!(p.at(3), Some(Fault::Guilty));
        assert_eq!(p.at(10), Some(Fault::Hang));
        assert_eq!(p.at(1), None);
        assert!(FaultPlan::parse("").unwrap().is_empty());
        for bad in ["guilty@0", "guilty", "bogus@1", "hang@x", "guilty@-1"] {
            let e = FaultPlan::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
