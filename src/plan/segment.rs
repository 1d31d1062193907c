//! The one rule that splits work between threads and machines.
//!
//! Every countable thing in a run — arrivals, closed-model users, rendezvous headcounts, rows of
//! a `unique` data set — is numbered 0, 1, 2, … and item `k` belongs to segment `k mod n`.
//! Segments nest: thread `t` of `T` inside process segment `i/n` is segment `i + n·t` of `n·T`,
//! so threads and processes use the same arithmetic and the totals over all segments are exactly
//! those of a single run.

use std::fmt;

/// Segment `index` of `count`, 0-based (`--segment 1/3` is index 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl Segment {
    /// The whole run: one segment.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Segment, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "segment {}/{count} does not exist: expected i/n with 1 <= i <= n",
                index + 1
            ));
        }
        Ok(Segment { index, count })
    }

    /// Parses the 1-based form used on the command line: `1/3`, `2/3`, `3/3`.
    pub fn parse(s: &str) -> Result<Segment, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a segment: expected i/n, like 1/3"))?;
        let i: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a segment: expected i/n, like 1/3"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a segment: expected i/n, like 1/3"))?;
        if i == 0 {
            return Err(format!("`{s}`: segments count from 1 (1/{n} … {n}/{n})"));
        }
        Segment::new(i - 1, n)
    }

    /// Does item `k` belong to this segment?
    #[inline]
    pub fn owns(&self, k: u64) -> bool {
        k % self.count as u64 == self.index as u64
    }

    /// How many of items `0..total` belong to this segment.
    pub fn share_of(&self, total: u64) -> u64 {
        let n = self.count as u64;
        let i = self.index as u64;
        if total <= i {
            0
        } else {
            (total - i - 1) / n + 1
        }
    }

    /// The `k`-th item (0-based) owned by this segment, as a global item number.
    #[inline]
    pub fn global(&self, k: u64) -> u64 {
        k * self.count as u64 + self.index as u64
    }

    /// Sub-segment `t` of `parts` inside this segment (threads inside a process segment).
    pub fn split(&self, t: u32, parts: u32) -> Segment {
        debug_assert!(t < parts);
        Segment {
            index: self.index + self.count * t,
            count: self.count * parts,
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_exactly_to_the_whole_for_any_n() {
        for total in [0u64, 1, 2, 7, 100, 1001, 2_000_003] {
            for n in 1..=17u32 {
                let sum: u64 = (0..n)
                    .map(|i| Segment::new(i, n).unwrap().share_of(total))
                    .sum();
                assert_eq!(sum, total, "total {total} n {n}");
            }
        }
    }

    #[test]
    fn share_of_matches_counting_owned_items() {
        for n in 1..=6u32 {
            for i in 0..n {
                let s = Segment::new(i, n).unwrap();
                for total in 0..40u64 {
                    let counted = (0..total).filter(|k| s.owns(*k)).count() as u64;
                    assert_eq!(s.share_of(total), counted);
                }
            }
        }
    }

    #[test]
    fn nested_split_equals_flat_split() {
        let proc_seg = Segment::parse("2/3").unwrap();
        let threads = 4;
        for k in 0..1000u64 {
            let owners: Vec<u32> = (0..threads)
                .filter(|t| proc_seg.split(*t, threads).owns(k))
                .collect();
            if proc_seg.owns(k) {
                assert_eq!(owners.len(), 1, "item {k} has exactly one thread");
            } else {
                assert!(owners.is_empty());
            }
        }
    }

    #[test]
    fn parse_is_one_based_and_checked() {
        assert_eq!(
            Segment::parse("1/3").unwrap(),
            Segment { index: 0, count: 3 }
        );
        assert_eq!(Segment::parse("3/3").unwrap().to_string(), "3/3");
        assert!(Segment::parse("0/3").is_err());
        assert!(Segment::parse("4/3").is_err());
        assert!(Segment::parse("x").is_err());
    }

    #[test]
    fn global_numbers_are_owned() {
        let s = Segment::new(2, 5).unwrap();
        for k in 0..10 {
            assert!(s.owns(s.global(k)));
        }
    }
}
