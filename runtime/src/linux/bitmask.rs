//! CPU and NUMA node lists as config.json writes them ("0-3,7") and as the kernel
//! takes them: bitmasks of unsigned longs (sched_setaffinity, set_mempolicy).

/// The set bits of `list`, or a message saying what is wrong with it. Empty is no bits.
pub fn parse(list: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("{part:?} is not a number or a range a-b"));
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        // The kernel's limit on CPUs (CONFIG_NR_CPUS) and NUMA nodes is far below this.
        if lo > hi || hi >= 8192 {
            return Err(format!("{part:?} is not a range from low to high below 8192"));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// `bits` as the kernel's mask: unsigned longs, bit n of word n/64.
pub fn to_mask(bits: &[usize]) -> Vec<libc::c_ulong> {
    let bits_per = libc::c_ulong::BITS as usize;
    let words = bits.iter().max().map_or(1, |m| m / bits_per + 1);
    let mut mask = vec![0 as libc::c_ulong; words];
    for b in bits {
        mask[b / bits_per] |= 1 << (b % bits_per);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_with_ranges_read_as_their_bits() {
        assert_eq!(parse("0-3,7").unwrap(), [0, 1, 2, 3, 7]);
        assert_eq!(parse(" 1 , 65").unwrap(), [1, 65]);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("3-1").is_err());
        assert!(parse("a").is_err());
        assert!(parse("0-99999").is_err());
    }

    #[test]
    fn masks_put_bit_n_in_word_n_over_64() {
        assert_eq!(to_mask(&[0, 1, 65]), [3, 2]);
        assert_eq!(to_mask(&[]), [0]);
    }
}
