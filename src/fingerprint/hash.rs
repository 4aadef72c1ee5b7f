//! Landmark hashes: pairs of peaks (anchor, target) packed into one `u32`, stamped with the
//! anchor's frame.
//!
//! Layout (23 bits): anchor bin (9) | bin difference + 128 (8) | frame difference (6).
//! The pair's absolute time is not in the hash: the matcher recovers alignment by voting on
//! `reference frame − query frame` over all hashes found in both.

use super::peaks::Peak;

/// One landmark hash and the frame of its anchor peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Landmark {
    /// Packed pair description (see the module docs).
    pub hash: u32,
    /// Anchor frame.
    pub frame: u32,
}

/// Packs an (anchor, target) pair. `dt` in 1..=63, `df` in -127..=127, `bin` < 512.
pub fn pack(bin: u16, df: i32, dt: u32) -> u32 {
    ((bin as u32 & 0x1ff) << 14) | (((df + 128) as u32 & 0xff) << 6) | (dt & 0x3f)
}

/// Inverse of [`pack`]: (anchor bin, bin difference, frame difference).
pub fn unpack(hash: u32) -> (u16, i32, u32) {
    (
        ((hash >> 14) & 0x1ff) as u16,
        ((hash >> 6) & 0xff) as i32 - 128,
        hash & 0x3f,
    )
}

/// Pairs each anchor whose frame is in `anchors` with up to `fan_out` later peaks, nearest in
/// time first, that lie within `max_dt` frames and `max_df` bins. `peaks` sorted by (frame, bin).
pub fn pair_peaks(
    peaks: &[Peak],
    anchors: std::ops::Range<u32>,
    max_dt: u32,
    max_df: u32,
    fan_out: usize,
    out: &mut Vec<Landmark>,
) {
    let max_dt = max_dt.min(63);
    let max_df = max_df.min(127) as i32;
    for (i, a) in peaks.iter().enumerate() {
        if !anchors.contains(&a.frame) {
            continue;
        }
        let mut taken = 0;
        for b in &peaks[i + 1..] {
            let dt = b.frame - a.frame;
            if dt > max_dt || taken >= fan_out {
                break;
            }
            let df = b.bin as i32 - a.bin as i32;
            if dt == 0 || df.abs() > max_df {
                continue;
            }
            out.push(Landmark {
                hash: pack(a.bin, df, dt),
                frame: a.frame,
            });
            taken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        for &(b, df, dt) in &[(0u16, -127, 1u32), (511, 127, 63), (100, 0, 17), (7, -1, 2)] {
            assert_eq!(unpack(pack(b, df, dt)), (b, df, dt));
        }
    }

    #[test]
    fn pairs_respect_zone_and_fan_out() {
        let p = |frame, bin| Peak {
            frame,
            bin,
            salience: 1.0,
            sub: [0, 0],
        };
        let peaks = vec![
            p(0, 50),
            p(0, 60),
            p(3, 55),
            p(5, 200),
            p(10, 52),
            p(80, 50),
        ];
        let mut out = Vec::new();
        pair_peaks(&peaks, 0..1, 63, 63, 2, &mut out);
        // Same-frame peaks are skipped, (5,200) is too far in frequency, (80,50) too late.
        assert_eq!(
            out,
            vec![
                Landmark {
                    hash: pack(50, 5, 3),
                    frame: 0
                },
                Landmark {
                    hash: pack(50, 2, 10),
                    frame: 0
                },
                Landmark {
                    hash: pack(60, -5, 3),
                    frame: 0
                },
                Landmark {
                    hash: pack(60, -8, 10),
                    frame: 0
                },
            ]
        );
    }
}
